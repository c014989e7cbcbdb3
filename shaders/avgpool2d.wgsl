// avgpool2d.wgsl: average pooling (count_include_pad = true, floor mode) and adaptive average pooling
// over NCHW, forward and backward.
// Bindings: 1 A (read: x, or dy in backward), 2 OUT (read_write, contiguous: y, or dx); each float32 or
//   float16 (A_T, OUT_T: engine/storage.ts), the sums float32. 3 PRO (read, f32: the prologue's scale
//   and shift per channel, at words 22 and 23; any buffer without PROLOGUE).
// PROLOGUE (override, avg_pool_fwd): pool relu(x * scale[c] + shift[c]) (a batch norm and ReLU that are
//   never stored: the dense block pools a transition's BN-ReLU output before its 1x1 conv).
// Dispatch (helpers, parameter layout and the walk in pool_common.wgsl, composed after this body): one
//   workgroup per (channel, group of images), its invocations walking the images' planes: forward, one
//   invocation per output; backward, one per 2x2 cell of dx (cell_origin), summing in window order over
//   the windows that overlap the cell, each read once (a gather, so no atomics).
//   avg_pool_fwd/bwd:      windows start at o*s - p and span k; the divisor is kh*kw (in floor mode with
//                          p <= k/2 no window reaches past the padding).
//   adaptive_avg_fwd/bwd:  window i spans [floor(i*H/OH), ceil((i+1)*H/OH)) (PyTorch); the divisor is
//                          the window's size. In backward, input h lies in windows
//                          floor(h*OH/H) .. ceil((h+1)*OH/H) - 1 (each checked).
override WG: u32 = 64u;
override PROLOGUE: bool = false;

@group(0) @binding(1) var<storage, read> A: array<A_T>;
@group(0) @binding(2) var<storage, read_write> OUT: array<OUT_T>;
@group(0) @binding(3) var<storage, read> PRO: array<f32>;

@compute @workgroup_size(WG)
fn avg_pool_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let H = pi(2u); let W = pi(3u); let OH = pu(4u); let OW = pu(5u);
  let st_h = pu(8u); let st_w = pu(9u); let kh = pi(6u); let kw = pi(7u); let ph = pi(10u); let pw = pi(11u);
  let sh = pu(15u); let sw = pu(16u);
  let inv = 1.0 / f32(kh * kw);
  var psc = 1.0; var psh = 0.0;
  if (PROLOGUE) { psc = PRO[pu(22u) + c]; psh = PRO[pu(23u) + c]; }
  for (var at = walk_start(wg, li, OH, OW); walk_more(at); walk_next(&at)) {
    let n = at.n;
    let base = pu(12u) + n * pu(13u) + c * pu(14u);
    let hs = i32(at.row * st_h) - ph;
    let ws = i32(at.col * st_w) - pw;
    let h0 = u32(max(hs, 0)); let h1 = u32(min(hs + kh, H));
    let w0 = u32(max(ws, 0)); let w1 = u32(min(ws + kw, W));
    var acc = 0.0;
    for (var h = h0; h < h1; h++) {
      for (var w = w0; w < w1; w++) {
        var v = f32(A[base + h * sh + w * sw]);
        // relu as the elementwise table writes it (NaN stays NaN), not max(y, 0).
        if (PROLOGUE) { v = fma(v, psc, psh); v = select(v, 0.0, v <= 0.0); }
        acc += v;
      }
    }
    OUT[((n * pu(1u) + c) * OH + at.row) * OW + at.col] = OUT_st(acc * inv);
  }
}

// dx of the cell at rows rq.x, rq.x + 1 and columns rq.y, rq.y + 1 of plane (n, c).
fn avg_bwd_cell(n: u32, c: u32, rq: vec2<i32>) {
  let st_h = pu(8u); let st_w = pu(9u);
  let kh = pi(6u); let kw = pi(7u); let ph = pi(10u); let pw = pi(11u);
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let rows = window_range(rq.x, kh, st_h, ph, pu(4u));
  let cols = window_range(rq.y, kw, st_w, pw, pu(5u));
  let r = vec2<i32>(rq.x, rq.x + 1); let q = vec2<i32>(rq.y, rq.y + 1);
  var acc = vec4<f32>();
  for (var oh = rows.x; oh < rows.y; oh++) {
    let hs = i32(oh * st_h) - ph;
    let rin = (r >= vec2<i32>(hs)) & (r < vec2<i32>(hs + kh));
    for (var ow = cols.x; ow < cols.y; ow++) {
      let ws = i32(ow * st_w) - pw;
      let qin = (q >= vec2<i32>(ws)) & (q < vec2<i32>(ws + kw));
      let d = f32(A[base + oh * sh + ow * sw]);
      acc += select(vec4<f32>(), vec4<f32>(d), vec4<bool>(rin.xx & qin, rin.yy & qin));
    }
  }
  store_cell((n * pu(1u) + c) * pu(2u) * pu(3u), rq, acc * (1.0 / f32(kh * kw)));
}

@compute @workgroup_size(WG)
fn avg_pool_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  for (var at = walk_start(wg, li, pu(17u), pu(18u)); walk_more(at); walk_next(&at)) { avg_bwd_cell(at.n, wg.x, cell_origin(at)); }
}

@compute @workgroup_size(WG)
fn adaptive_avg_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let H = pu(2u); let W = pu(3u); let OH = pu(4u); let OW = pu(5u);
  let sh = pu(15u); let sw = pu(16u);
  for (var at = walk_start(wg, li, OH, OW); walk_more(at); walk_next(&at)) {
    let n = at.n;
    let base = pu(12u) + n * pu(13u) + c * pu(14u);
    let h0 = at.row * H / OH; let h1 = ((at.row + 1u) * H + OH - 1u) / OH;
    let w0 = at.col * W / OW; let w1 = ((at.col + 1u) * W + OW - 1u) / OW;
    var acc = 0.0;
    for (var h = h0; h < h1; h++) {
      for (var w = w0; w < w1; w++) { acc += f32(A[base + h * sh + w * sw]); }
    }
    OUT[((n * pu(1u) + c) * OH + at.row) * OW + at.col] = OUT_st(acc / f32((h1 - h0) * (w1 - w0)));
  }
}

// dx of the cell at rows rq.x, rq.x + 1 and columns rq.y, rq.y + 1 of plane (n, c) (rq >= 0: no shift).
fn adaptive_bwd_cell(n: u32, c: u32, rq: vec2<i32>) {
  let H = pu(2u); let W = pu(3u); let OH = pu(4u); let OW = pu(5u);
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let r0 = u32(rq.x); let q0 = u32(rq.y);
  let r = vec2<u32>(r0, r0 + 1u); let q = vec2<u32>(q0, q0 + 1u);
  // Windows holding rows r0 or r0 + 1 (and the same for columns); each one is checked.
  let oh0 = r0 * OH / H; let oh1 = min(((r0 + 2u) * OH + H - 1u) / H, OH);
  let ow0 = q0 * OW / W; let ow1 = min(((q0 + 2u) * OW + W - 1u) / W, OW);
  var acc = vec4<f32>();
  for (var oh = oh0; oh < oh1; oh++) {
    let a0 = oh * H / OH; let a1 = ((oh + 1u) * H + OH - 1u) / OH;
    let rin = (r >= vec2<u32>(a0)) & (r < vec2<u32>(a1));
    for (var ow = ow0; ow < ow1; ow++) {
      let b0 = ow * W / OW; let b1 = ((ow + 1u) * W + OW - 1u) / OW;
      let qin = (q >= vec2<u32>(b0)) & (q < vec2<u32>(b1));
      let d = f32(A[base + oh * sh + ow * sw]) / f32((a1 - a0) * (b1 - b0));
      acc += select(vec4<f32>(), vec4<f32>(d), vec4<bool>(rin.xx & qin, rin.yy & qin));
    }
  }
  store_cell((n * pu(1u) + c) * H * W, rq, acc);
}

@compute @workgroup_size(WG)
fn adaptive_avg_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  for (var at = walk_start(wg, li, pu(17u), pu(18u)); walk_more(at); walk_next(&at)) { adaptive_bwd_cell(at.n, wg.x, cell_origin(at)); }
}
