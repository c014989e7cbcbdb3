// avgpool2d.wgsl: average pooling (count_include_pad = true, floor mode) and adaptive average pooling
// over NCHW, forward and backward.
// Bindings: 1 A (read: x, or dy in backward), 2 OUT (read_write, contiguous: y, or dx).
// Dispatch: one workgroup per (channel c, image n) = workgroup_id (x, y); its invocations walk the plane's
//   elements p = li, li + WG, ... (forward: the OH*OW outputs; backward: the H*W inputs, each a gather over
//   the windows that hold it, so no atomics), stepping the row and column without a division per element.
//   avg_pool_fwd/bwd:      windows start at o*s - p and span k; the divisor is kh*kw (in floor mode with
//                          p <= k/2 no window reaches past the padding).
//   adaptive_avg_fwd/bwd:  window i spans [floor(i*H/OH), ceil((i+1)*H/OH)) (PyTorch); the divisor is
//                          the window's size. In backward, input h lies in windows
//                          floor(h*OH/H) .. ceil((h+1)*OH/H) - 1 (each checked).
// Parameters: 0 N  1 C  2 H  3 W  4 OH  5 OW  6 kh  7 kw  8 sh  9 sw  10 ph  11 pw
//   12 A offset  13 A stride n  14 A stride c  15 A stride h  16 A stride w
override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;

// Walks a plane of width `width`: (row, col) of element p = li, li + WG, ... (see the header).
// x / d for small x (< 2^22) without an integer division (scalarised on CPU adapters): a float estimate
// with rcp = 1/d, corrected by one step either way.
fn div_small(x: u32, d: u32, rcp: f32) -> u32 {
  var q = u32(f32(x) * rcp);
  q = select(q, q - 1u, q * d > x);
  return select(q, q + 1u, (q + 1u) * d <= x);
}
struct Walk { row: u32, col: u32, drow: u32, dcol: u32, width: u32 }
fn walk_start(li: u32, width: u32) -> Walk {
  let r = li / width;
  let d = WG / width;
  return Walk(r, li - r * width, d, WG - d * width, width);
}
fn walk_next(w: ptr<function, Walk>) {
  (*w).col += (*w).dcol; (*w).row += (*w).drow;
  if ((*w).col >= (*w).width) { (*w).col -= (*w).width; (*w).row += 1u; }
}
@compute @workgroup_size(WG)
fn avg_pool_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x; let n = wg.y;
  let H = pi(2u); let W = pi(3u); let OW = pu(5u);
  let plane = pu(4u) * OW;
  let st_h = pu(8u); let st_w = pu(9u); let kh = pi(6u); let kw = pi(7u); let ph = pi(10u); let pw = pi(11u);
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let obase = (n * pu(1u) + c) * plane;
  let inv = 1.0 / f32(kh * kw);
  var at = walk_start(li, OW);
  for (var p = li; p < plane; p += WG) {
    let hs = i32(at.row * st_h) - ph;
    let ws = i32(at.col * st_w) - pw;
    let h0 = u32(max(hs, 0)); let h1 = u32(min(hs + kh, H));
    let w0 = u32(max(ws, 0)); let w1 = u32(min(ws + kw, W));
    var acc = 0.0;
    for (var h = h0; h < h1; h++) {
      for (var w = w0; w < w1; w++) { acc += A[base + h * sh + w * sw]; }
    }
    OUT[obase + p] = acc * inv;
    walk_next(&at);
  }
}

@compute @workgroup_size(WG)
fn avg_pool_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x; let n = wg.y;
  let H = pu(2u); let W = pu(3u); let OH = pu(4u); let OW = pu(5u);
  let st_h = pu(8u); let st_w = pu(9u);
  let kh = pi(6u); let kw = pi(7u); let ph = pu(10u); let pw = pu(11u);
  let rh = 1.0 / f32(st_h); let rw = 1.0 / f32(st_w);
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let xbase = (n * pu(1u) + c) * H * W;
  let inv = 1.0 / f32(kh * kw);
  var at = walk_start(li, W);
  for (var p = li; p < H * W; p += WG) {
    let lh = i32(at.row + ph) - kh + 1;
    let lw = i32(at.col + pw) - kw + 1;
    let oh0 = select(0u, div_small(u32(lh) + st_h - 1u, st_h, rh), lh > 0);
    let ow0 = select(0u, div_small(u32(lw) + st_w - 1u, st_w, rw), lw > 0);
    let oh1 = min(div_small(at.row + ph, st_h, rh) + 1u, OH);
    let ow1 = min(div_small(at.col + pw, st_w, rw) + 1u, OW);
    var acc = 0.0;
    for (var oh = oh0; oh < oh1; oh++) {
      for (var ow = ow0; ow < ow1; ow++) { acc += A[base + oh * sh + ow * sw]; }
    }
    OUT[xbase + p] = acc * inv;
    walk_next(&at);
  }
}

@compute @workgroup_size(WG)
fn adaptive_avg_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x; let n = wg.y;
  let H = pu(2u); let W = pu(3u); let OH = pu(4u); let OW = pu(5u);
  let plane = OH * OW;
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let obase = (n * pu(1u) + c) * plane;
  var at = walk_start(li, OW);
  for (var p = li; p < plane; p += WG) {
    let h0 = at.row * H / OH; let h1 = ((at.row + 1u) * H + OH - 1u) / OH;
    let w0 = at.col * W / OW; let w1 = ((at.col + 1u) * W + OW - 1u) / OW;
    var acc = 0.0;
    for (var h = h0; h < h1; h++) {
      for (var w = w0; w < w1; w++) { acc += A[base + h * sh + w * sw]; }
    }
    OUT[obase + p] = acc / f32((h1 - h0) * (w1 - w0));
    walk_next(&at);
  }
}

@compute @workgroup_size(WG)
fn adaptive_avg_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x; let n = wg.y;
  let H = pu(2u); let W = pu(3u); let OH = pu(4u); let OW = pu(5u);
  let base = pu(12u) + n * pu(13u) + c * pu(14u);
  let sh = pu(15u); let sw = pu(16u);
  let xbase = (n * pu(1u) + c) * H * W;
  var at = walk_start(li, W);
  for (var p = li; p < H * W; p += WG) {
    let h = at.row; let w = at.col;
    let oh0 = h * OH / H; let oh1 = min(((h + 1u) * OH + H - 1u) / H, OH);
    let ow0 = w * OW / W; let ow1 = min(((w + 1u) * OW + W - 1u) / W, OW);
    var acc = 0.0;
    for (var oh = oh0; oh < oh1; oh++) {
      let a0 = oh * H / OH; let a1 = ((oh + 1u) * H + OH - 1u) / OH;
      if (h < a0 || h >= a1) { continue; }
      for (var ow = ow0; ow < ow1; ow++) {
        let b0 = ow * W / OW; let b1 = ((ow + 1u) * W + OW - 1u) / OW;
        if (w < b0 || w >= b1) { continue; }
        acc += A[base + oh * sh + ow * sw] / f32((a1 - a0) * (b1 - b0));
      }
    }
    OUT[xbase + p] = acc;
    walk_next(&at);
  }
}
