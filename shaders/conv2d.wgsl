// conv2d.wgsl: 2-D convolution (NCHW, groups 1) as three implicit GEMMs written once, the split-K
// reduction of the weight gradient, and the stem's input gradient by stride phase. Arithmetic is
// float32; the activation bindings X, G and O are stored as float32 or float16, each its own role
// (X_T, G_T, O_T: engine/storage.ts; loads f32(X[i]), stores X_st(v)), the rest are float32.
// engine/ops/conv.ts composes this body with the snippet of a variant, which says how the tile's 32 rows
// (the operand the whole workgroup shares) reach the lanes: conv2d_lanes_own.wgsl (each lane loads all
// 32 itself), conv2d_lanes_sg8.wgsl (8 lanes each load 4 and share them with subgroupBroadcast),
// conv2d_lanes_quad.wgsl (the 4 lanes of a quad each load 8 and share them with quadBroadcast). The
// workgroup-memory variants (wg*) also compose conv2d_wgmem.wgsl, whose entry points (conv2d_fwd_wg,
// conv2d_dgrad_wg, conv2d_wgrad_wg) compute the same GEMMs as tiles staged in workgroup memory with this
// body's loads, prologue and per-element stores (put_y, put_dx, put_dw). A lanes snippet declares
//   struct Lane: the GEMM entry points' per-invocation builtins (li = local_invocation_index, and the
//     subgroup lane where it broadcasts);
//   RowAddr and row_addr(lane, row0, last, stride, off): where this lane's rows lie (row row0 + r, clamped
//     to `last`, at element off + row * stride);
//   rows_w(a, k) and rows_g(a, k) -> array<vec4f, 8>: the 32 rows at column offset k, from Wt or from G,
//     as r[t] = rows t, t+8, t+16, t+24.
//
// Bindings (the same for every entry point; engine/ops/conv.ts binds a dummy where one is unused):
//   1 X     read        X_T: x, the input (conv2d_fwd, conv2d_wgrad), or the mask source (conv2d_dgrad,
//                       MASK); conv2d_wgrad_reduce: the split-K partial sums (float32)
//   2 Wt    read        f32: weights [Cout, Cin, KH, KW], contiguous (conv2d_fwd, conv2d_dgrad)
//   3 G     read_write  G_T: conv2d_fwd: the output y;  conv2d_dgrad, conv2d_wgrad: the output gradient dy
//   4 O     read_write  O_T: conv2d_dgrad: dx;  conv2d_wgrad: dw, or split-K partial sums (float32);
//                       reduce: dw (float32)
//   5 Bias  6 Scale  7 Shift   read, f32 per-channel vectors
//   8 DB    read_write  f32: conv2d_wgrad (and its reduce): the bias gradient db [Cout]
// WebGPU forbids binding one buffer twice when one binding is writable, but the dense block reads a
// channel prefix of the buffer its conv writes (fwd) and keeps dy and dx in one gradient buffer (dgrad):
// XALIAS reads x from G, GALIAS writes dx into G.
//
// Parameters (u32 words; tensors are views: an element offset, a batch stride and a channel stride,
// with rows and columns contiguous):
//   0 N  1 Cin  2 H  3 W  4 Cout  5 OH  6 OW  7 KH  8 KW  9 stride  10 padding
//   11 x offset  12 x batch stride  13 x channel stride      14 w offset
//   15 G offset  16 G batch stride  17 G channel stride
//   18 O offset  19 O batch stride (conv2d_wgrad: stride between split-K slices)  20 O channel stride
//   21 bias offset (conv2d_wgrad, reduce: db offset)  22 scale offset  23 shift offset
//   24 GEMM columns: N*OH*OW (fwd), N*H*W (dgrad); Cin*KH*KW = CK (wgrad, reduce: the columns of dw)
//   25 conv2d_wgrad: (n, oh) rows per split; reduce: number of splits  26 conv2d_wgrad: N*OH
//   27 flags: 1 BIAS, 2 MASK, 4 ACC, 8 GALIAS, 16 PARTIAL (below); conv2d_wgmem.wgsl only: 32 VECW,
//      64 PRO and 128 XAL (PROLOGUE and XALIAS as run-time bits)
//   28 conv2d_wgrad, reduce: GEMM columns, CK, or CK + 1 with the bias gradient as column CK
//
// What an invocation computes: a 32 x 4 tile of its GEMM, in a RegTile of eight mat4x4 accumulators
// (m_t column p holds rows t, t+8, t+16, t+24 of column p), or with WIDE a 32 x 8 tile as two RegTiles
// (two groups of 4 columns; the 32 rows, loaded once, serve both). The columns are its own, loaded
// with the im2col coordinates computed on the fly (no divisions in the loop); the 32 rows are the same
// for every lane of a row tile and come through the snippet (rows_w, rows_g). With stride 1 and a
// group's four columns four consecutive pixels of one row (conv2d_fwd: OW, conv2d_dgrad: W a multiple
// of 4), the loop over a kernel row slides them: one new load per tap instead of four.
//   conv2d_fwd:   y[n, co, oh, ow]  rows co, columns output pixels, k = (ci, kh, kw)
//   conv2d_dgrad: dx[n, ci, ih, iw] rows ci, columns input pixels, k = (co, kh, kw): the transposed conv
//   conv2d_wgrad: dw[co, ci, kh, kw] rows co, columns (ci, kh, kw), k = (n, oh, ow) over this split
//   conv2d_wgrad_reduce: one element of dw = the sum of its split-K partials (WG per workgroup)
// Dispatch: fwd and dgrad: (x, y) = grid1d(ceil(columns / (cols() * WG))), z = ceil(rows / 32);
//           wgrad: x = ceil(word 28 / (cols() * WG)), y = ceil(Cout / 32), z = splits;
//           reduce: (x, y) = grid1d(ceil(elements / WG)).
// Options: PROLOGUE (override constant) the conv reads relu(x * scale[c] + shift[c]) (padding stays 0);
//   flags: BIAS adds bias[co] (fwd); MASK multiplies dx by (x * scale[c] + shift[c] > 0) (dgrad);
//   ACC adds into the output instead of overwriting it (dgrad, wgrad, reduce); PARTIAL: wgrad writes
//   split-K partial sums (rows of word-28 columns) into O at slice wg.z.
override WG: u32 = 64u;
override PROLOGUE: bool = false;
override XALIAS: bool = false;
// WIDE: the GEMM entry points compute 32 x 8 tiles (two groups of 4 columns): the subgroup-wide variant.
override WIDE: bool = false;
// The columns of a lane's tile.
fn cols() -> u32 { return select(4u, 8u, WIDE); }

// Flags in parameter word 27 (checked outside the loops, so they need no pipeline of their own).
fn flag(bit: u32) -> bool { return (pu(27u) & bit) != 0u; }
const BIAS = 1u;
const MASK = 2u;
const ACC = 4u;
const GALIAS = 8u;
const PARTIAL = 16u;
const VECW = 32u;
const PRO = 64u;
const XAL = 128u;

@group(0) @binding(1) var<storage, read> X: array<X_T>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> G: array<G_T>;
@group(0) @binding(4) var<storage, read_write> O: array<O_T>;
@group(0) @binding(5) var<storage, read> Bias: array<f32>;
@group(0) @binding(6) var<storage, read> Scale: array<f32>;
@group(0) @binding(7) var<storage, read> Shift: array<f32>;
@group(0) @binding(8) var<storage, read_write> DB: array<f32>;

fn load_x(i: u32) -> f32 {
  if (XALIAS) { return f32(G[i]); }
  return f32(X[i]);
}
fn load_x4(a: vec4u) -> vec4f { return vec4f(load_x(a.x), load_x(a.y), load_x(a.z), load_x(a.w)); }
fn load_w4(a: vec4u) -> vec4f { return vec4f(Wt[a.x], Wt[a.y], Wt[a.z], Wt[a.w]); }
fn load_g4(a: vec4u) -> vec4f { return vec4f(f32(G[a.x]), f32(G[a.y]), f32(G[a.z]), f32(G[a.w])); }

// acc column p += r * v[p]
fn outer(acc: mat4x4f, r: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(fma(r, vec4f(v.x), acc[0]), fma(r, vec4f(v.y), acc[1]), fma(r, vec4f(v.z), acc[2]), fma(r, vec4f(v.w), acc[3]));
}

// A lane's 32 x 4 register tile: row r is m{r % 8} element r / 8, column p column p of it. Eight named
// matrices, not an array: llvmpipe keeps those out of memory better than an array indexed in the loop.
struct RegTile { m0: mat4x4f, m1: mat4x4f, m2: mat4x4f, m3: mat4x4f, m4: mat4x4f, m5: mat4x4f, m6: mat4x4f, m7: mat4x4f }

// The tile plus the outer product of the 32 rows (8 vec4s: rows i, i + 8, i + 16, i + 24) and the lane's 4 columns v.
fn accumulate(t: RegTile, r: array<vec4f, 8>, v: vec4f) -> RegTile {
  return RegTile(outer(t.m0, r[0], v), outer(t.m1, r[1], v), outer(t.m2, r[2], v), outer(t.m3, r[3], v),
              outer(t.m4, r[4], v), outer(t.m5, r[5], v), outer(t.m6, r[6], v), outer(t.m7, r[7], v));
}

// The next tap (kh, kw) of a kernel KW wide: kw + 1, or at the row's end kw = 0 and kh + 1.
fn next_tap(kh: ptr<function, u32>, kw: ptr<function, u32>, KW: u32) {
  let wrap = *kw + 1u == KW;
  *kw = select(*kw + 1u, 0u, wrap);
  *kh = select(*kh, *kh + 1u, wrap);
}

// The tile as an array, for the stores (which index it).
fn tile_array(t: RegTile) -> array<mat4x4f, 8> { return array<mat4x4f, 8>(t.m0, t.m1, t.m2, t.m3, t.m4, t.m5, t.m6, t.m7); }

// NOTE: relu as the elementwise table writes it, not max(y, 0): WGSL's max() may drop a NaN operand
// (lavapipe does), and relu(NaN) is NaN as in PyTorch. The mask (dgrad) is relu's gradient, 0 at NaN.
fn bn_relu(v: vec4f, sc: vec4f, sh: vec4f) -> vec4f {
  let y = fma(v, sc, sh);
  return select(y, vec4f(0.0), y <= vec4f(0.0));
}

// The prologue's scale and shift of input channel c (1 and 0 without PROLOGUE), as vec4s for a group.
fn pro_scale(c: u32) -> vec4f {
  if (PROLOGUE) { return vec4f(Scale[pu(22u) + c]); }
  return vec4f(1.0);
}
fn pro_shift(c: u32) -> vec4f {
  if (PROLOGUE) { return vec4f(Shift[pu(23u) + c]); }
  return vec4f(0.0);
}

fn prologue(v: vec4f, sc: vec4f, sh: vec4f) -> vec4f {
  if (PROLOGUE) { return bn_relu(v, sc, sh); }
  return v;
}

// Column q of a GEMM over pixels, as (n, row, column) of images h x w.
fn pixel(q: u32, h: u32, w: u32) -> vec3u {
  let n = q / (h * w); let r = q - n * h * w; let y = r / w;
  return vec3u(n, y, r - y * w);
}

// The register tiles' column order: row-major over the batch, q = (row * N + n) * w + column, as
// (n, row, column). A workgroup whose columns all lie in one row (N * w a multiple of its columns: the
// small workgroups CPU adapters get) then knows which rows of a kernel fall on padding for all its
// lanes, and skips them (one_row, row_of_wg).
fn pixel_rows(q: u32, w: u32) -> vec3u {
  let N = pu(0u);
  let y = q / (N * w); let r = q - y * N * w; let n = r / w;
  return vec3u(n, y, r - n * w);
}
// Whether this workgroup's columns (from col_wg, WG * cols() of them) all lie in one row of images
// w wide, and which row that is.
fn one_row(w: u32) -> bool { return (pu(0u) * w) % (WG * cols()) == 0u; }
fn row_of_wg(col_wg: u32, w: u32) -> u32 { return col_wg / (pu(0u) * w); }

fn tile_rows(row0: u32, rows: u32) -> u32 { return min(32u, rows - row0); }
fn tile_cols(col0: u32, cols: u32) -> u32 { return min(4u, cols - min(col0, cols)); }

fn put_o(i: u32, v: f32) {
  if (flag(GALIAS)) {
    if (flag(ACC)) { G[i] = G_st(f32(G[i]) + v); } else { G[i] = G_st(v); }
  } else {
    if (flag(ACC)) { O[i] = O_st(f32(O[i]) + v); } else { O[i] = O_st(v); }
  }
}

fn put_db(i: u32, v: f32) {
  if (flag(ACC)) { DB[i] += v; } else { DB[i] = v; }
}

// One element of each GEMM's output, as every GEMM tile stores it (here and conv2d_wgmem.wgsl).
// The bias of output channel co (0 without BIAS), and the mask's batch-norm scale and shift of input
// channel ci: loaded once per row by the register tiles (loads are what costs on CPU adapters).
fn bias_of(co: u32) -> f32 {
  if (flag(BIAS)) { return Bias[pu(21u) + co]; }
  return 0.0;
}
fn mask_of(ci: u32) -> vec2f {
  if (flag(MASK)) { return vec2f(Scale[pu(22u) + ci], Shift[pu(23u) + ci]); }
  return vec2f(1.0, 0.0);
}

// conv2d_fwd: y[co] of the output pixel at G offset o, plus the bias b = bias_of(co).
fn put_y(co: u32, o: u32, v: f32, b: f32) {
  G[o + co * pu(17u)] = G_st(v + b);
}

// conv2d_dgrad: dx[ci] of the input pixel at O offset o (x offset x for the mask, bn = mask_of(ci)).
fn put_dx(ci: u32, o: u32, x: u32, v: f32, bn: vec2f) {
  var u = v;
  if (flag(MASK)) { u = select(0.0, v, fma(f32(X[x + ci * pu(13u)]), bn.x, bn.y) > 0.0); }
  put_o(o + ci * pu(20u), u);
}

// conv2d_wgrad: dw[row, col] of the split at O offset base. Column CK (present when word 28 is CK + 1)
// is the bias gradient: it goes to DB, or with split-K into the partials with the rest.
fn put_dw(row: u32, col: u32, base: u32, v: f32) {
  let CK = pu(24u);
  if (flag(PARTIAL)) { put_o(base + row * pu(28u) + col, v); }
  else if (col < CK) { put_o(base + row * CK + col, v); }
  else { put_db(pu(21u) + row, v); }
}

// The stores walk the tile in loops with run-time bounds (the rows and columns that exist) and read the
// accumulators by index: unrolled, the 128 guarded stores with their flag branches took lavapipe's LLVM
// minutes to compile (the GEMM loop itself takes well under a second).
fn store_y(t: RegTile, row0: u32, col0: u32, ob: vec4u) {
  var m = tile_array(t);
  var o = ob;
  let nr = tile_rows(row0, pu(4u));
  let nc = tile_cols(col0, pu(24u));
  for (var r = 0u; r < nr; r++) {
    let b = bias_of(row0 + r);
    for (var p = 0u; p < nc; p++) { put_y(row0 + r, o[p], m[r % 8u][p][r / 8u], b); }
  }
}

fn store_dx(t: RegTile, row0: u32, col0: u32, oo: vec4u, xo: vec4u) {
  var m = tile_array(t);
  var o = oo;
  var x = xo;
  let nr = tile_rows(row0, pu(1u));
  let nc = tile_cols(col0, pu(24u));
  for (var r = 0u; r < nr; r++) {
    let bn = mask_of(row0 + r);
    for (var p = 0u; p < nc; p++) { put_dx(row0 + r, o[p], x[p], m[r % 8u][p][r / 8u], bn); }
  }
}

fn store_dw(t: RegTile, row0: u32, col0: u32, base: u32) {
  var m = tile_array(t);
  let nr = tile_rows(row0, pu(4u));
  let nc = tile_cols(col0, pu(28u));
  for (var r = 0u; r < nr; r++) {
    for (var p = 0u; p < nc; p++) { put_dw(row0 + r, col0 + p, base, m[r % 8u][p][r / 8u]); }
  }
}

// ---- conv2d_fwd ---------------------------------------------------------------------------------
// A group of 4 of the lane's columns: output pixels col .. col + 3 (clamped to the last one; stores
// skip the extra ones), each as the input row and column of tap (0, 0), the x offset of that tap and
// the offset of y.
struct FwdCols { ih0: vec4i, iw0: vec4i, xb: vec4i, ob: vec4u }
fn fwd_cols(col: u32) -> FwdCols {
  let OH = pu(5u); let OW = pu(6u); let S = pu(9u); let pad = pi(10u); let W = pi(3u); let NP = pu(24u);
  var c: FwdCols;
  for (var p = 0u; p < 4u; p++) {
    let px = pixel_rows(min(col + p, NP - 1u), OW); let n = px.x; let oh = px.y; let ow = px.z;
    c.ih0[p] = i32(oh * S) - pad;
    c.iw0[p] = i32(ow * S) - pad;
    c.xb[p] = i32(pu(11u) + n * pu(12u)) + c.ih0[p] * W + c.iw0[p];
    c.ob[p] = pu(15u) + n * pu(16u) + oh * OW + ow;
  }
  return c;
}
// The group's inputs at tap (kh, kw) of the channel at x offset xc (0 where the tap falls on padding).
fn fwd_tap(c: FwdCols, xc: i32, kh: u32, kw: u32, sc: vec4f, sh: vec4f) -> vec4f {
  let H = pi(2u); let W = pi(3u);
  let ih = c.ih0 + vec4i(i32(kh));
  let iw = c.iw0 + vec4i(i32(kw));
  let ok = (ih >= vec4i(0)) & (ih < vec4i(H)) & (iw >= vec4i(0)) & (iw < vec4i(W));
  let at = vec4u(select(vec4i(0), c.xb + vec4i(xc + i32(kh) * W + i32(kw)), ok));
  return select(vec4f(0.0), prologue(load_x4(at), sc, sh), ok);
}
// Stride 1, the group's 4 pixels consecutive in one row: at kw = 0 the row's first 4 inputs, after
// that the previous ones shifted by one and one new input (xc: this channel's x offset of tap (0, 0)).
fn fwd_slide(v: vec4f, c: FwdCols, xc: i32, kh: u32, kw: u32, sc: vec4f, sh: vec4f) -> vec4f {
  let H = pi(2u); let W = pi(3u);
  let ih = c.ih0.x + i32(kh);
  let rok = ih >= 0 && ih < H;
  let row = xc + i32(kh) * W;
  if (kw == 0u) {
    let iw = vec4i(c.iw0.x) + vec4i(0, 1, 2, 3);
    let ok = vec4<bool>(rok) & (iw >= vec4i(0)) & (iw < vec4i(W));
    return select(vec4f(0.0), prologue(load_x4(vec4u(select(vec4i(0), vec4i(row) + vec4i(0, 1, 2, 3), ok))), sc, sh), ok);
  }
  let iw = c.iw0.x + 3 + i32(kw);
  let ok = rok && iw >= 0 && iw < W;
  let n = select(0.0, prologue(vec4f(load_x(u32(select(0, row + 3 + i32(kw), ok)))), sc, sh).x, ok);
  return vec4f(v.yzw, n);
}

@compute @workgroup_size(WG)
fn conv2d_fwd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, lane: Lane) {
  let Cin = pu(1u); let H = pi(2u); let W = pi(3u); let Cout = pu(4u);
  let OW = pu(6u); let KH = pu(7u); let KW = pu(8u); let S = pu(9u);
  let col_wg = flat_wg(wg, nwg) * WG * cols();
  let col0 = col_wg + lane.li * cols();
  let row0 = wg.z * 32u;
  let c0 = fwd_cols(col0);
  let c1 = fwd_cols(col0 + 4u);
  let K = Cin * KH * KW;
  let KK = KH * KW;
  let wa = row_addr(lane, row0, Cout - 1u, K, pu(14u));
  var t0 = RegTile();
  var t1 = RegTile();
  // 1x1 kernels get a loop of their own: one loop level less is worth more than the code size.
  if (KK == 1u) {
    for (var k = 0u; k < Cin; k++) {
      let sc = pro_scale(k); let sh = pro_shift(k);
      let xc = i32(k * pu(13u));
      let r = rows_w(wa, k);
      t0 = accumulate(t0, r, fwd_tap(c0, xc, 0u, 0u, sc, sh));
      if (WIDE) { t1 = accumulate(t1, r, fwd_tap(c1, xc, 0u, 0u, sc, sh)); }
    }
  } else if (S == 1u && OW % 4u == 0u) {
    // Stride 1 with OW a multiple of 4 (a group's 4 pixels in one row): the loop over a kernel row slides
    // them, one new load per tap instead of four (measured on lavapipe: 0.85-0.95x the time of the
    // general loop below). With WIDE and OW a multiple of 8 the two groups are 8 consecutive pixels:
    // the first takes its new input from the second.
    let chain = WIDE && OW % 8u == 0u;
    // With all its columns in one output row, the workgroup skips the kernel rows that fall on padding
    // (the first and last output rows' top and bottom kernel rows).
    let skip = one_row(OW);
    let ih_wg = i32(row_of_wg(col_wg, OW)) - pi(10u);
    var k = 0u;
    for (var ci = 0u; ci < Cin; ci++) {
      let sc = pro_scale(ci); let sh = pro_shift(ci);
      let xc = i32(ci * pu(13u));
      var kh = 0u; var kw = 0u;
      var v0 = vec4f(0.0); var v1 = vec4f(0.0);
      for (var kk = 0u; kk < KK; kk++) {
        if (skip && kw == 0u && u32(ih_wg + i32(kh)) >= u32(H)) { k += KW; kk += KW - 1u; kh++; continue; }
        if (chain && kw != 0u) { v0 = vec4f(v0.yzw, v1.x); } else { v0 = fwd_slide(v0, c0, c0.xb.x + xc, kh, kw, sc, sh); }
        let r = rows_w(wa, k);
        t0 = accumulate(t0, r, v0);
        if (WIDE) {
          v1 = fwd_slide(v1, c1, c1.xb.x + xc, kh, kw, sc, sh);
          t1 = accumulate(t1, r, v1);
        }
        k++;
        next_tap(&kh, &kw, KW);
      }
    }
  } else {
    var k = 0u;
    for (var ci = 0u; ci < Cin; ci++) {
      let sc = pro_scale(ci); let sh = pro_shift(ci);
      let xc = i32(ci * pu(13u));
      // (kh, kw) in one loop: a loop level costs llvmpipe more than the index arithmetic.
      var kh = 0u; var kw = 0u;
      for (var kk = 0u; kk < KK; kk++) {
        let r = rows_w(wa, k);
        t0 = accumulate(t0, r, fwd_tap(c0, xc, kh, kw, sc, sh));
        if (WIDE) { t1 = accumulate(t1, r, fwd_tap(c1, xc, kh, kw, sc, sh)); }
        k++;
        next_tap(&kh, &kw, KW);
      }
    }
  }
  store_y(t0, row0, col0, c0.ob);
  if (WIDE) { store_y(t1, row0, col0 + 4u, c1.ob); }
}

// ---- conv2d_dgrad -------------------------------------------------------------------------------
// Input pixel (n, ih, iw) meets output pixel oh = (ih + pad - kh) / S when S divides it: a group keeps
// that quotient and remainder per pixel (q*0, r*0 at tap (0, 0)) and steps them as kh and kw grow (no
// division in the loop), with the offsets of dy's image, of dx and of x (the mask).
struct DgCols { qh0: vec4i, rh0: vec4i, qw0: vec4i, rw0: vec4i, gb: vec4i, oo: vec4u, xo: vec4u }
fn dg_cols(col: u32) -> DgCols {
  let H = pu(2u); let W = pu(3u); let S = pu(9u); let pad = pu(10u); let NP = pu(24u);
  var c: DgCols;
  for (var p = 0u; p < 4u; p++) {
    let px = pixel_rows(min(col + p, NP - 1u), W); let n = px.x; let ih = px.y; let iw = px.z;
    c.qh0[p] = i32((ih + pad) / S); c.rh0[p] = i32((ih + pad) % S);
    c.qw0[p] = i32((iw + pad) / S); c.rw0[p] = i32((iw + pad) % S);
    c.gb[p] = i32(pu(15u) + n * pu(16u));
    c.oo[p] = pu(18u) + n * pu(19u) + ih * W + iw;
    c.xo[p] = pu(11u) + n * pu(12u) + ih * W + iw;
  }
  return c;
}
// Where a group stands in the general loop: the quotients and remainders at the current tap.
struct DgStep { qh: vec4i, rh: vec4i, qw: vec4i, rw: vec4i }
fn dg_start(c: DgCols) -> DgStep { return DgStep(c.qh0, c.rh0, c.qw0, c.rw0); }
// The group's dy at the current tap of output channel at G offset gc + its image's (0 where no
// output pixel meets it).
fn dg_tap(s: DgStep, c: DgCols, gc: i32) -> vec4f {
  let OH = pi(5u); let OW = pi(6u);
  let ok = (s.rh == vec4i(0)) & (s.qh >= vec4i(0)) & (s.qh < vec4i(OH)) & (s.rw == vec4i(0)) & (s.qw >= vec4i(0)) & (s.qw < vec4i(OW));
  return select(vec4f(0.0), load_g4(vec4u(select(vec4i(0), c.gb + vec4i(gc) + s.qh * OW + s.qw, ok))), ok);
}
// The next tap: kw + 1, or (wk: the row's end) kw = 0 and kh + 1.
fn dg_next(s: DgStep, c: DgCols, wk: bool) -> DgStep {
  let Si = vec4i(pi(9u));
  var n = s;
  n.rw -= vec4i(1);
  let ww = n.rw < vec4i(0);
  n.rw = select(select(n.rw, n.rw + Si, ww), c.rw0, wk);
  n.qw = select(select(s.qw, s.qw - vec4i(1), ww), c.qw0, wk);
  let rh1 = s.rh - vec4i(1);
  let wh = rh1 < vec4i(0);
  n.rh = select(s.rh, select(rh1, rh1 + Si, wh), wk);
  n.qh = select(s.qh, select(s.qh, s.qh - vec4i(1), wh), wk);
  return n;
}
// Stride 1, the group's 4 pixels consecutive in one row: pixel iw reads dy column iw + pad - kw, so at
// kw = 0 the row's 4 values, after that the previous ones shifted by one and one new value
// (gc: this output channel's G offset).
fn dg_slide(v: vec4f, c: DgCols, gc: i32, kh: u32, kw: u32) -> vec4f {
  let OH = pi(5u); let OW = pi(6u);
  let qh = c.qh0.x - i32(kh);
  let rok = qh >= 0 && qh < OH;
  let row = c.gb.x + gc + qh * OW;
  if (kw == 0u) {
    let qw = vec4i(c.qw0.x) + vec4i(0, 1, 2, 3);
    let ok = vec4<bool>(rok) & (qw >= vec4i(0)) & (qw < vec4i(OW));
    return select(vec4f(0.0), load_g4(vec4u(select(vec4i(0), vec4i(row) + qw, ok))), ok);
  }
  let qw = c.qw0.x - i32(kw);
  let ok = rok && qw >= 0 && qw < OW;
  return vec4f(select(0.0, f32(G[u32(select(0, row + qw, ok))]), ok), v.xyz);
}

@compute @workgroup_size(WG)
fn conv2d_dgrad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, lane: Lane) {
  let Cin = pu(1u); let W = pu(3u); let Cout = pu(4u);
  let KH = pu(7u); let KW = pu(8u); let S = pu(9u);
  let col_wg = flat_wg(wg, nwg) * WG * cols();
  let col0 = col_wg + lane.li * cols();
  let row0 = wg.z * 32u;
  let c0 = dg_cols(col0);
  let c1 = dg_cols(col0 + 4u);
  let KK = KH * KW;
  let wa = row_addr(lane, row0, Cin - 1u, KK, pu(14u));
  var t0 = RegTile();
  var t1 = RegTile();
  // 1x1 kernels get a loop of their own (see conv2d_fwd).
  if (KK == 1u) {
    for (var co = 0u; co < Cout; co++) {
      let gc = i32(co * pu(17u));
      let r = rows_w(wa, co * Cin);
      t0 = accumulate(t0, r, dg_tap(dg_start(c0), c0, gc));
      if (WIDE) { t1 = accumulate(t1, r, dg_tap(dg_start(c1), c1, gc)); }
    }
  } else if (S == 1u && W % 4u == 0u) {
    // Stride 1 with W a multiple of 4 (a group's 4 pixels in one row): the loop over a kernel row slides
    // them, one new load per tap instead of four (measured on lavapipe: 0.75-0.87x the general loop's
    // time). With WIDE and W a multiple of 8 the two groups are 8 consecutive pixels: the second takes
    // its new value from the first.
    let chain = WIDE && W % 8u == 0u;
    // With all its columns in one input row, the workgroup skips the kernel rows that meet no output
    // row (dy row ih + pad - kh outside the image: the first and last input rows' bottom and top ones).
    let skip = one_row(W);
    let qh_wg = i32(row_of_wg(col_wg, W) + pu(10u));
    for (var co = 0u; co < Cout; co++) {
      let gc = i32(co * pu(17u));
      var k = co * Cin * KK;
      var kh = 0u; var kw = 0u;
      var v0 = vec4f(0.0); var v1 = vec4f(0.0);
      for (var kk = 0u; kk < KK; kk++) {
        if (skip && kw == 0u && u32(qh_wg - i32(kh)) >= pu(5u)) { k += KW; kk += KW - 1u; kh++; continue; }
        let r = rows_w(wa, k);
        if (WIDE) {
          if (chain && kw != 0u) { v1 = vec4f(v0.w, v1.xyz); } else { v1 = dg_slide(v1, c1, gc, kh, kw); }
          t1 = accumulate(t1, r, v1);
        }
        v0 = dg_slide(v0, c0, gc, kh, kw);
        t0 = accumulate(t0, r, v0);
        k++;
        next_tap(&kh, &kw, KW);
      }
    }
  } else {
    for (var co = 0u; co < Cout; co++) {
      let gc = i32(co * pu(17u));
      var k = co * Cin * KK;
      // (kh, kw) in one loop: a loop level costs llvmpipe more than the index arithmetic.
      var s0 = dg_start(c0); var s1 = dg_start(c1);
      var kw = 0u;
      for (var kk = 0u; kk < KK; kk++) {
        let r = rows_w(wa, k);
        t0 = accumulate(t0, r, dg_tap(s0, c0, gc));
        if (WIDE) { t1 = accumulate(t1, r, dg_tap(s1, c1, gc)); }
        k++;
        kw++;
        let wk = kw == KW;
        kw = select(kw, 0u, wk);
        s0 = dg_next(s0, c0, wk);
        if (WIDE) { s1 = dg_next(s1, c1, wk); }
      }
    }
  }
  store_dx(t0, row0, col0, c0.oo, c0.xo);
  if (WIDE) { store_dx(t1, row0, col0 + 4u, c1.oo, c1.xo); }
}

// ---- conv2d_wgrad -------------------------------------------------------------------------------
// A group of 4 of the lane's columns (ci, kh, kw): their input offsets relative to (oh * S, ow * S),
// the prologue's scale and shift of their channels, and which is column CK, the bias gradient's (when
// there is one), which reads ones: dw[co, CK] = sum of dy[co].
struct WgCols { dh: vec4i, dw: vec4i, xcol: vec4i, sc: vec4f, sh: vec4f, isb: vec4<bool> }
fn wg_cols(col: u32) -> WgCols {
  let W = pi(3u); let KH = pu(7u); let KW = pu(8u); let pad = pi(10u); let CK = pu(24u);
  var c: WgCols;
  c.sc = vec4f(1.0);
  for (var p = 0u; p < 4u; p++) {
    let q = min(col + p, CK - 1u);
    let ci = q / (KH * KW); let r = q - ci * KH * KW; let kh = r / KW; let kw = r - kh * KW;
    c.dh[p] = i32(kh) - pad;
    c.dw[p] = i32(kw) - pad;
    c.xcol[p] = i32(ci * pu(13u)) + c.dh[p] * W + c.dw[p];
    if (PROLOGUE) { c.sc[p] = Scale[pu(22u) + ci]; c.sh[p] = Shift[pu(23u) + ci]; }
  }
  c.isb = vec4u(col) + vec4u(0u, 1u, 2u, 3u) == vec4u(CK);
  return c;
}
// The group's inputs at output pixel (ih0, iw0) = (oh * S, ow * S) of the image at x offset xb + its pixel's.
fn wg_tap(c: WgCols, ih0: i32, iw0: i32, xa: i32) -> vec4f {
  let H = pi(2u); let W = pi(3u);
  let ih = vec4i(ih0) + c.dh;
  let iw = vec4i(iw0) + c.dw;
  let ok = (ih >= vec4i(0)) & (ih < vec4i(H)) & (iw >= vec4i(0)) & (iw < vec4i(W));
  let at = vec4u(select(vec4i(0), vec4i(xa) + c.xcol, ok));
  return select(select(vec4f(0.0), prologue(load_x4(at), c.sc, c.sh), ok), vec4f(1.0), c.isb);
}

@compute @workgroup_size(WG)
fn conv2d_wgrad(@builtin(workgroup_id) wg: vec3u, lane: Lane) {
  let W = pu(3u); let Cout = pu(4u);
  let OH = pu(5u); let OW = pu(6u); let S = pu(9u);
  let col0 = (wg.x * WG + lane.li) * cols();
  let row0 = wg.y * 32u;
  let c0 = wg_cols(col0);
  let c1 = wg_cols(col0 + 4u);
  let ga = row_addr(lane, row0, Cout - 1u, pu(17u), pu(15u));
  let r0 = wg.z * pu(25u);
  let r1 = min(r0 + pu(25u), pu(26u));
  var n = r0 / OH;
  var oh = r0 - n * OH;
  var t0 = RegTile();
  var t1 = RegTile();
  // (n, oh, ow) in one loop: a loop level costs llvmpipe more than the index arithmetic, and the late
  // stages' rows are short (OW = 6, 3).
  var ow = 0u;
  for (var j = (r1 - min(r0, r1)) * OW; j > 0u; j--) {
    let xa = i32(pu(11u) + n * pu(12u) + (oh * W + ow) * S);
    let r = rows_g(ga, n * pu(16u) + oh * OW + ow);
    t0 = accumulate(t0, r, wg_tap(c0, i32(oh * S), i32(ow * S), xa));
    if (WIDE) { t1 = accumulate(t1, r, wg_tap(c1, i32(oh * S), i32(ow * S), xa)); }
    ow++;
    let wrap = ow == OW;
    ow = select(ow, 0u, wrap);
    oh = select(oh, oh + 1u, wrap);
    let wrap2 = oh == OH;
    oh = select(oh, 0u, wrap2);
    n = select(n, n + 1u, wrap2);
  }
  let base = pu(18u) + wg.z * pu(19u);
  store_dw(t0, row0, col0, base);
  if (WIDE) { store_dw(t1, row0, col0 + 4u, base); }
}

@compute @workgroup_size(WG)
fn conv2d_wgrad_reduce(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  let CK = pu(24u); let ld = pu(28u);
  let count = pu(4u) * ld;
  if (i >= count) { return; }
  var s = 0.0;
  for (var z = 0u; z < pu(25u); z++) { s += f32(X[z * count + i]); }
  let row = i / ld; let c = i - row * ld;
  if (c < CK) { put_o(pu(18u) + row * CK + c, s); } else { put_db(pu(21u) + row, s); }
}

// conv2d_dgrad_phase: the input gradient as a gather over input pixels that visits only the taps that
// hit, for few input channels (the stem: Cin = 1 or 3, where the 32-row GEMM tile would be mostly
// empty) and any stride. Input pixel ih meets output row oh = (ih + pad - kh) / S only when
// kh = (ih + pad) % S (mod S), so pixels are grouped by their stride phase (rh, rw) = ((ih + pad) % S,
// (iw + pad) % S) (workgroup z): all of a phase's pixels use the same taps kh = rh + S*th, kw = rw + S*tw
// at output (qh - th, qw - tw), where qh = (ih + pad) / S. Each invocation computes a run of 16 pixels
// (consecutive qw) of PR adjacent phase rows qh .. qh + PR - 1 for every input channel, sliding a window
// of dy along each dy row (one new load per tap; 16 measured about 1.5x faster than 8 on lavapipe). A dy
// row serves every phase row of the group, so 4x4 taps read 7 dy rows for 4 pixel rows, not 16 (on the
// stem, 2 rows measured 0.68x the time of 1, 4 rows 0.56x, 8 rows no better than 4; interleaved runs).
// Rows of a group past the phase's last are computed and not stored. Same bindings, parameters and
// flags (MASK, ACC, GALIAS) as conv2d_dgrad, plus
//   28 groups of PR phase rows per image (the largest over phases)  29 runs of 16 per phase row
// Dispatch: (x, y) = grid1d(ceil(N * groups * runs / WG)), z = S * S. PR must match PHASE_ROWS in
// engine/ops/conv.ts.
const PR = 4;
fn phase_lo(r: i32, pad: i32, S: i32) -> i32 { return max(0, (pad - r + S - 1) / S); }
fn phase_hi(r: i32, pad: i32, S: i32, size: i32) -> i32 { return max(0, (size + pad - r + S - 1) / S); }
fn g_at(base: i32, ow: i32, OW: i32) -> f32 {
  let ok = ow >= 0 && ow < OW;
  return select(0.0, f32(G[u32(select(0, base + ow, ok))]), ok);
}

@compute @workgroup_size(WG)
fn conv2d_dgrad_phase(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) li: u32) {
  let N = pu(0u); let Cin = pu(1u); let H = pi(2u); let W = pi(3u); let Cout = pu(4u);
  let OH = pi(5u); let OW = pi(6u); let KH = pi(7u); let KW = pi(8u); let S = pi(9u); let pad = pi(10u);
  let rh = i32(wg.z) / S; let rw = i32(wg.z) % S;
  let qh_lo = phase_lo(rh, pad, S); let qw_lo = phase_lo(rw, pad, S);
  let ph = phase_hi(rh, pad, S, H) - qh_lo;
  let pw = phase_hi(rw, pad, S, W) - qw_lo;
  let runs = pu(29u);
  let lane = flat_wg(wg, nwg) * WG + li;
  let run = lane % runs;
  let t = lane / runs;
  let n = t / pu(28u);
  let qr = PR * i32(t % pu(28u));
  if (n >= N || qr >= ph || i32(run * 16u) >= pw) { return; }
  let qh = qh_lo + qr;
  let rows = min(PR, ph - qr);
  let qw0 = qw_lo + i32(run * 16u);
  let npx = min(16, pw - i32(run * 16u));
  for (var ci = 0u; ci < Cin; ci++) {
    // Zeroed explicitly: a bare `var acc: array<...>;` here kept the previous channel's sums on lavapipe.
    var acc = array<vec4f, 4 * PR>();
    for (var co = 0u; co < Cout; co++) {
      let wbase = pu(14u) + (co * Cin + ci) * u32(KH * KW);
      let gc = i32(pu(15u) + n * pu(16u) + co * pu(17u));
      // dy row oh = qh + PR - 1 - th meets row qh + r at kh = rh + S * (th - (PR - 1 - r)).
      for (var th = 0; rh + S * (th - (PR - 1)) < KH; th++) {
        let oh = qh + PR - 1 - th;
        if (oh < 0) { break; }
        if (oh >= OH) { continue; }
        let gr = gc + oh * OW;
        var d0 = vec4f(g_at(gr, qw0, OW), g_at(gr, qw0 + 1, OW), g_at(gr, qw0 + 2, OW), g_at(gr, qw0 + 3, OW));
        var d1 = vec4f(g_at(gr, qw0 + 4, OW), g_at(gr, qw0 + 5, OW), g_at(gr, qw0 + 6, OW), g_at(gr, qw0 + 7, OW));
        var d2 = vec4f(g_at(gr, qw0 + 8, OW), g_at(gr, qw0 + 9, OW), g_at(gr, qw0 + 10, OW), g_at(gr, qw0 + 11, OW));
        var d3 = vec4f(g_at(gr, qw0 + 12, OW), g_at(gr, qw0 + 13, OW), g_at(gr, qw0 + 14, OW), g_at(gr, qw0 + 15, OW));
        var tw = 0;
        for (var kw = rw; kw < KW; kw += S) {
          if (tw > 0) {
            d3 = vec4f(d2.w, d3.x, d3.y, d3.z);
            d2 = vec4f(d1.w, d2.x, d2.y, d2.z);
            d1 = vec4f(d0.w, d1.x, d1.y, d1.z);
            d0 = vec4f(g_at(gr, qw0 - tw, OW), d0.x, d0.y, d0.z);
          }
          for (var r = 0; r < PR; r++) {
            let kh = rh + S * (th - (PR - 1 - r));
            if (kh >= rh && kh < KH) {
              let wv = vec4f(Wt[wbase + u32(kh * KW + kw)]);
              acc[4 * r] = fma(d0, wv, acc[4 * r]); acc[4 * r + 1] = fma(d1, wv, acc[4 * r + 1]);
              acc[4 * r + 2] = fma(d2, wv, acc[4 * r + 2]); acc[4 * r + 3] = fma(d3, wv, acc[4 * r + 3]);
            }
          }
          tw++;
        }
      }
    }
    var sc = 1.0; var sh = 0.0;
    if (flag(MASK)) { sc = Scale[pu(22u) + ci]; sh = Shift[pu(23u) + ci]; }
    for (var r = 0; r < rows; r++) {
      let row = ((qh + r) * S + rh - pad) * W + rw - pad;
      for (var j = 0; j < npx; j++) {
        let iw = (qw0 + j) * S;
        var v = acc[r * 4 + j / 4][j % 4];
        if (flag(MASK)) { v = select(0.0, v, fma(f32(X[pu(11u) + n * pu(12u) + ci * pu(13u) + u32(row + iw)]), sc, sh) > 0.0); }
        put_o(pu(18u) + n * pu(19u) + ci * pu(20u) + u32(row + iw), v);
      }
    }
  }
}
