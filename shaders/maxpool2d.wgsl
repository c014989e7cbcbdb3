// maxpool2d.wgsl: 2-D max pooling over NCHW (PyTorch: padding counts as -inf, floor mode) and its backward.
// Bindings: 1 A (read: x, or dy in backward), 2 OUT (read_write: y, or dx), 3 IDX (read_write: the
//   arg-max of each output as a plane index h*W + w stored as f32; written by forward, read by backward),
//   4 PRO (read, f32: the prologue's scale and shift per channel, at words 22 and 23; any buffer without
//   PROLOGUE). A and OUT are float32 or float16 (A_T, OUT_T: engine/storage.ts); comparisons and sums
//   are float32.
// PROLOGUE (override, max_pool_fwd): pool relu(x * scale[c] + shift[c]) (a batch norm and ReLU that are
//   never stored; padding stays -inf). relu keeps NaN, as the elementwise table's relu does.
// Dispatch (helpers and parameter layout in pool_common.wgsl, composed after this body); OUT and IDX
//   are contiguous.
//   Workgroup (channel, group of images), its invocations walking the images' planes (pool_common.wgsl).
//   max_pool_fwd: one invocation per output; y = max over the window's in-bounds elements, scanning rows
//                 then columns; the first maximum wins, and a NaN wins over everything (as PyTorch's
//                 `val > max || isnan(val)`).
//   max_pool_bwd: one invocation per 2x2 cell of dx (cell_origin): dx[h, w] = sum of dy over the windows
//                 holding (h, w) whose arg-max is (h, w), in window order (a gather: no atomics; each
//                 window overlapping the cell is read once for its four pixels).
override WG: u32 = 64u;
override PROLOGUE: bool = false;

@group(0) @binding(1) var<storage, read> A: array<A_T>;
@group(0) @binding(2) var<storage, read_write> OUT: array<OUT_T>;
@group(0) @binding(3) var<storage, read_write> IDX: array<f32>;
@group(0) @binding(4) var<storage, read> PRO: array<f32>;

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

// Element i of A as the pooling sees it: with PROLOGUE, relu(a * sc + sh).
fn pooled(i: u32, sc: f32, sh: f32) -> f32 {
  let v = f32(A[i]);
  if (!PROLOGUE) { return v; }
  let y = fma(v, sc, sh);
  return select(y, 0.0, y <= 0.0);
}

@compute @workgroup_size(WG)
fn max_pool_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let H = pi(2u); let W = pi(3u); let OH = pu(4u); let OW = pu(5u);
  let st_h = pu(8u); let st_w = pu(9u); let kh = pi(6u); let kw = pi(7u); let ph = pi(10u); let pw = pi(11u);
  let sh = pu(15u); let sw = pu(16u);
  var psc = 1.0; var psh = 0.0;
  if (PROLOGUE) { psc = PRO[pu(22u) + c]; psh = PRO[pu(23u) + c]; }
  for (var at = walk_start(wg, li, OH, OW); walk_more(at); walk_next(&at)) {
    let n = at.n;
    let base = pu(12u) + n * pu(13u) + c * pu(14u);
    let hs = i32(at.row * st_h) - ph;
    let ws = i32(at.col * st_w) - pw;
    let h0 = u32(max(hs, 0)); let h1 = u32(min(hs + kh, H));
    let w0 = u32(max(ws, 0)); let w1 = u32(min(ws + kw, W));
    var best = pooled(base + h0 * sh + w0 * sw, psc, psh);
    var bi = h0 * u32(W) + w0;
    for (var h = h0; h < h1; h++) {
      for (var w = w0; w < w1; w++) {
        let v = pooled(base + h * sh + w * sw, psc, psh);
        if ((v > best) | is_nan(v)) { best = v; bi = h * u32(W) + w; }
      }
    }
    let o = ((n * pu(1u) + c) * OH + at.row) * OW + at.col;
    OUT[o] = OUT_st(best);
    IDX[o] = f32(bi);
  }
}

// dx of the cell at rows rq.x, rq.x + 1 and columns rq.y, rq.y + 1 of plane (n, c).
fn max_bwd_cell(n: u32, c: u32, rq: vec2<i32>) {
  let W = pi(3u); let OW = pu(5u);
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let plane = n * pu(1u) + c;
  let obase = plane * pu(4u) * OW;
  let rows = window_range(rq.x, pi(6u), pu(8u), pi(10u), pu(4u));
  let cols = window_range(rq.y, pi(7u), pu(9u), pi(11u), OW);
  // The plane indices of the cell's four pixels, as the forward pass stored its arg-max.
  let p00 = f32(rq.x * W + rq.y);
  let me = vec4<f32>(p00, p00 + 1.0, p00 + f32(W), p00 + f32(W + 1));
  var acc = vec4<f32>();
  for (var oh = rows.x; oh < rows.y; oh++) {
    for (var ow = cols.x; ow < cols.y; ow++) {
      let d = f32(A[base + oh * sh + ow * sw]);
      acc += select(vec4<f32>(), vec4<f32>(d), vec4<f32>(IDX[obase + oh * OW + ow]) == me);
    }
  }
  store_cell(plane * pu(2u) * u32(W), rq, acc);
}

@compute @workgroup_size(WG)
fn max_pool_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  for (var at = walk_start(wg, li, pu(17u), pu(18u)); walk_more(at); walk_next(&at)) { max_bwd_cell(at.n, wg.x, cell_origin(at)); }
}
