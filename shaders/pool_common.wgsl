// pool_common.wgsl: helpers shared by maxpool2d.wgsl and avgpool2d.wgsl (composed after each body by
// engine/ops/pool2d.ts). Both files declare `override WG` and OUT (array<OUT_T>, which store_cell writes), and
// read the pooling parameter layout:
//   0 N  1 C  2 H  3 W  4 OH  5 OW  6 kh  7 kw  8 sh  9 sw  10 ph  11 pw
//   12 A offset  13 A stride n  14 A stride c  15 A stride h  16 A stride w
//   17 cell rows CH  18 cells per row CW  19 cell row shift ah  20 cell column shift aw (backward kernels)
//   21 images per workgroup G  22, 23 max_pool_fwd's prologue: scale and shift offsets (maxpool2d.wgsl)

// x / d for small x (< 2^22) without an integer division (scalarised on CPU adapters): a float estimate
// with rcp = 1/d, corrected by one step either way.
fn div_small(x: u32, d: u32, rcp: f32) -> u32 {
  var q = u32(f32(x) * rcp);
  q = select(q, q - 1u, q * d > x);
  return select(q, q + 1u, (q + 1u) * d <= x);
}

// Dispatch of every kernel: workgroup (x, y) = (channel c, group g of G = word 21 images); its
// invocations walk the (image n, row, col) positions of images [g*G, min(N, g*G + G)) of the channel
// (outputs in forward, 2x2 cells of dx in backward), position f = li, li + WG, ..., stepping the image,
// row and column without a division per position.
struct Walk { n: u32, row: u32, col: u32, n1: u32, dn: u32, drow: u32, dcol: u32, rows: u32, cols: u32 }
fn walk_start(wg: vec3<u32>, li: u32, rows: u32, cols: u32) -> Walk {
  let G = pu(21u); let plane = rows * cols;
  let n0 = wg.y * G;
  let r = li % plane;
  let dr = WG % plane;
  return Walk(n0 + li / plane, r / cols, r % cols, min(n0 + G, pu(0u)), WG / plane, dr / cols, dr % cols, rows, cols);
}
fn walk_more(w: Walk) -> bool { return w.n < w.n1; }
fn walk_next(w: ptr<function, Walk>) {
  (*w).col += (*w).dcol; (*w).row += (*w).drow; (*w).n += (*w).dn;
  if ((*w).col >= (*w).cols) { (*w).col -= (*w).cols; (*w).row += 1u; }
  if ((*w).row >= (*w).rows) { (*w).row -= (*w).rows; (*w).n += 1u; }
}

// Backward kernels walk the CH*CW cells of 2x2 dx pixels of each image. Cell (cy, cx) holds input rows r0, r0 + 1 with
// r0 = 2*cy - ah and columns q0, q0 + 1 with q0 = 2*cx - aw; the shift (1 for stride 2 with odd padding,
// else 0) lines cells up with stride-2 windows, so each window overlapping a cell is read once for its
// four pixels.
fn cell_origin(at: Walk) -> vec2<i32> { return vec2<i32>(i32(2u * at.row) - pi(19u), i32(2u * at.col) - pi(20u)); }

// Writes the cell's four sums into the contiguous dx plane at `xbase` (OUT, of either storage type),
// skipping pixels outside it.
fn store_cell(xbase: u32, rq: vec2<i32>, v: vec4<f32>) {
  let H = pi(2u); let W = pi(3u);
  let rok0 = rq.x >= 0; let rok1 = rq.x + 1 < H; let qok0 = rq.y >= 0; let qok1 = rq.y + 1 < W;
  let o = i32(xbase) + rq.x * W + rq.y;
  if (rok0 && qok0) { OUT[o] = OUT_st(v.x); }
  if (rok0 && qok1) { OUT[o + 1] = OUT_st(v.y); }
  if (rok1 && qok0) { OUT[o + W] = OUT_st(v.z); }
  if (rok1 && qok1) { OUT[o + W + 1] = OUT_st(v.w); }
}

// The windows [first, end) of a stride-`s`, size-`k`, padding-`p` pooling with `O` outputs along one axis
// that overlap input positions x0 and x0 + 1 (x0 >= -1): those with o*s - p <= x0 + 1 and o*s - p + k > x0.
fn window_range(x0: i32, k: i32, s: u32, p: i32, O: u32) -> vec2<u32> {
  let rcp = 1.0 / f32(s);
  let lo = x0 + p - k + 1;
  let first = select(0u, div_small(u32(lo) + s - 1u, s, rcp), lo > 0);
  return vec2<u32>(first, min(div_small(u32(x0 + 1 + p), s, rcp) + 1u, O));
}
