// conv2d_wgmem.wgsl: conv2d.wgsl's three implicit GEMMs as workgroup-memory tiles (the GPU-shaped
// variants wg32x32, wg64x64, wg32x128, wg32x32k2, ... of engine/variants.ts): entry points conv2d_fwd_wg,
// conv2d_dgrad_wg and conv2d_wgrad_wg, with the bindings, parameters and flags (BIAS, MASK, ACC, GALIAS,
// PARTIAL) of conv2d_fwd, conv2d_dgrad and conv2d_wgrad, and the body's BN-ReLU (bn_relu) and
// per-element stores (put_y, put_dx, put_dw), and its storage types (X, G and O float32 or float16,
// staged as float32). The body's override constants PROLOGUE and XALIAS come
// as the flags PRO and XAL instead (checked while staging, outside the register-tile loop), so each
// entry point is one pipeline: fewer compiles when the tuner tries these variants. Composed
// (engine/ops/conv.ts) after the body, conv2d_lanes_own.wgsl (the body's own entry points need a lanes
// snippet to compile; these variants do not run them) and the tile constants BM BN BK TM TN KS.
//
// A workgroup computes a BM x BN block of the GEMM (the GEMMs' rows, columns and k as in conv2d.wgsl)
// with KS slices of NT = (BM / TM) (BN / TN) invocations each (KS > 1 splits K inside the workgroup, for
// GEMMs too small to give the device more than a few blocks). K is walked in chunks of BKS = KS BK: per
// chunk the workgroup stages the BM x BKS slice of the row operand (the weights; conv2d_wgrad: dy) and
// the BKS x BN slice of im2col columns (gathered on the fly, with the fused prologue applied) in
// workgroup memory, meets at a barrier, and every invocation accumulates its TM x TN register tile over
// its slice's BK of the chunk (slice s = li / NT: k s BK .. s BK + BK - 1; lane l = li % NT =
// ty (BN / TN) + tx: rows ty TM.., columns tx TN..), reading both slices as vec4s. Invocation li stages
// column li % BN of the column slice (every (KS NT / BN)-th k), so its column's coordinates are computed
// once (col_of), and elements e = li, li + KS NT, .. of the row slice (k = e % BKS: consecutive lanes
// read consecutive weights; with flag VECW, conv2d_fwd's weights four k at a time through Wt4). After
// the last chunk, slices 1 .. KS - 1 leave their tiles in workgroup memory and slice 0 adds them to its
// own and runs the epilogue (the stores). Rows and columns past the end load clamped addresses and are
// never stored; k past the end stages zeros on both sides (so a NaN there cannot reach a sum). Every
// invocation runs every step until the stores (no early return before them): the barriers stay in
// uniform control flow.
// Dispatch: conv2d_fwd_wg, conv2d_dgrad_wg: (x, y) = grid1d(ceil(columns / BN)), z = ceil(rows / BM);
//           conv2d_wgrad_wg: x = ceil(word 28 / BN), y = ceil(Cout / BM), z = splits.
const NT = (BM / TM) * (BN / TN); // invocations per K slice
const NW = KS * NT; // the workgroup
const BKS = KS * BK; // k per staged chunk

// Binding 9: the weights again, as vec4s (flag VECW: conv2d_fwd with K = Cin KH KW and the weights'
// offset multiples of 4, so that every row starts on a vec4).
@group(0) @binding(9) var<storage, read> Wt4: array<vec4f>;

// Workgroup memory: the staged slices, As [k][row] (A_VECS vec4s) then Bs [k][column]: element (k, r)
// of As is component r % 4 of Sm[(k BM + r) / 4] (Bs: of Sm[A_VECS + (k BN + c) / 4]). After the last
// chunk (KS > 1) it holds slices 1 .. KS - 1's register tiles instead (red_at).
const A_VECS = BKS * BM / 4u;
const B_VECS = BKS * BN / 4u;
var<workgroup> Sm: array<vec4f, max(A_VECS + B_VECS, (KS - 1u) * BM * BN / 4u)>;
// Where lane l of slice s > 0 leaves vector (i, j) of its tile: consecutive lanes, consecutive vectors.
fn red_at(s: u32, i: u32, j: u32, l: u32) -> u32 { return (((s - 1u) * TM + i) * (TN / 4u) + j) * NT + l; }

// Which GEMM a tile computes: the entry points pass a constant, so the compiler can fold the switches.
const FWD = 0u;
const DGRAD = 1u;
const WGRAD = 2u;

alias Acc = array<array<vec4f, TN / 4u>, TM>;

/** What an invocation needs to gather its staged column (col_of). */
struct Col {
  // fwd: the pixel's top-left input row and column (oh S - pad, ow S - pad); dgrad: ih + pad, iw + pad;
  // wgrad: kh - pad, kw - pad.
  h: i32,
  w: i32,
  // fwd: x offset of the pixel's image; dgrad: dy offset of its image; wgrad: x offset of channel ci.
  base: i32,
  // wgrad: the prologue's scale and shift of channel ci, and whether this is the bias column CK.
  sc: f32,
  sh: f32,
  bias: bool,
}

// k = (c, kh, kw) over channels c and kernel taps: (c, kh, kw) with no division for 1x1 kernels.
fn split_k(k: u32) -> vec3u {
  let KW = pu(8u); let KK = pu(7u) * KW;
  if (KK == 1u) { return vec3u(k, 0u, 0u); }
  let c = k / KK; let kk = k - c * KK; let kh = kk / KW;
  return vec3u(c, kh, kk - kh * KW);
}

fn col_of(kind: u32, c: u32) -> Col {
  let S = pu(9u); let pad = pu(10u);
  var o = Col(0, 0, 0, 1.0, 0.0, false);
  switch kind {
    case FWD: {
      let px = pixel(c, pu(5u), pu(6u));
      o.h = i32(px.y * S) - i32(pad); o.w = i32(px.z * S) - i32(pad); o.base = i32(pu(11u) + px.x * pu(12u));
    }
    case DGRAD: {
      let px = pixel(c, pu(2u), pu(3u));
      o.h = i32(px.y + pad); o.w = i32(px.z + pad); o.base = i32(pu(15u) + px.x * pu(16u));
    }
    default: {
      let t = split_k(min(c, pu(24u) - 1u));
      let ci = t.x;
      o.h = i32(t.y) - i32(pad); o.w = i32(t.z) - i32(pad); o.base = i32(pu(11u) + ci * pu(13u));
      if (flag(PRO)) { o.sc = Scale[pu(22u) + ci]; o.sh = Shift[pu(23u) + ci]; }
      o.bias = c == pu(24u);
    }
  }
  return o;
}

// x (from G where the output shares its buffer: XAL) and the prologue (PRO), as the body's load_x and
// prologue with run-time flags.
fn x_at(i: u32) -> f32 {
  if (flag(XAL)) { return f32(G[i]); }
  return f32(X[i]);
}
fn prologue1(v: f32, sc: f32, sh: f32) -> f32 {
  if (flag(PRO)) { return bn_relu(vec4f(v), vec4f(sc), vec4f(sh)).x; }
  return v;
}

// Element (row, k) of the row operand.
fn a_at(kind: u32, row: u32, k: u32) -> f32 {
  let KK = pu(7u) * pu(8u);
  switch kind {
    case FWD: { return Wt[pu(14u) + row * pu(1u) * KK + k]; }
    case DGRAD: {
      let t = split_k(k);
      return Wt[pu(14u) + (t.x * pu(1u) + row) * KK + t.y * pu(8u) + t.z];
    }
    default: {
      let OHW = pu(5u) * pu(6u); let n = k / OHW;
      return f32(G[pu(15u) + n * pu(16u) + row * pu(17u) + k - n * OHW]);
    }
  }
}

// Element (k, column c) of the im2col columns (0 where the tap falls in the padding).
fn b_at(kind: u32, c: Col, k: u32) -> f32 {
  let H = pi(2u); let W = pi(3u);
  switch kind {
    case FWD: {
      let t = split_k(k);
      let ci = t.x;
      let ih = c.h + i32(t.y); let iw = c.w + i32(t.z);
      let ok = ih >= 0 && ih < H && iw >= 0 && iw < W;
      var sc = 1.0; var sh = 0.0;
      if (flag(PRO)) { sc = Scale[pu(22u) + ci]; sh = Shift[pu(23u) + ci]; }
      return select(0.0, prologue1(x_at(u32(select(0, c.base + i32(ci * pu(13u)) + ih * W + iw, ok))), sc, sh), ok);
    }
    case DGRAD: {
      // Input pixel (ih, iw) meets output pixel ((ih + pad - kh) / S, (iw + pad - kw) / S) where S divides.
      let S = pi(9u); let OW = pi(6u);
      let t = split_k(k);
      let co = t.x;
      let th = c.h - i32(t.y); let tw = c.w - i32(t.z);
      var oh = th; var ow = tw;
      if (S != 1) { oh = th / S; ow = tw / S; }
      let ok = th >= 0 && tw >= 0 && oh * S == th && ow * S == tw && oh < pi(5u) && ow < OW;
      return select(0.0, f32(G[u32(select(0, c.base + i32(co * pu(17u)) + oh * OW + ow, ok))]), ok);
    }
    default: {
      if (c.bias) { return 1.0; }
      let S = pu(9u); let OW = pu(6u); let OHW = pu(5u) * OW;
      let n = k / OHW; let p = k - n * OHW; let oh = p / OW; let ow = p - oh * OW;
      let ih = i32(oh * S) + c.h; let iw = i32(ow * S) + c.w;
      let ok = ih >= 0 && ih < H && iw >= 0 && iw < W;
      return select(0.0, prologue1(x_at(u32(select(0, c.base + i32(n * pu(12u)) + ih * W + iw, ok))), c.sc, c.sh), ok);
    }
  }
}

// The invocation's TM x TN tile of the block at (row0, col0) of a rows x cols GEMM, k in [k0, k1): its
// slice's sum; slice 0's (li < NT) with every slice's added.
fn gemm_tile(kind: u32, li: u32, row0: u32, col0: u32, rows: u32, cols: u32, k0: u32, k1: u32) -> Acc {
  let col = col_of(kind, min(col0 + li % BN, cols - 1u));
  let l = li % NT;
  let tx = l % (BN / TN); let ty = l / (BN / TN);
  let ks = li / NT % KS * BK; // this slice's first k in a chunk (0 when KS = 1)
  var acc: Acc;
  for (var kc = k0; kc < k1; kc += BKS) {
    if (kind == FWD && flag(VECW)) {
      let K = k1;
      for (var e = li; e < BM * BKS / 4u; e += NW) {
        let r = e / (BKS / 4u); let kk = 4u * (e % (BKS / 4u));
        let k = kc + kk;
        let v = select(vec4f(0.0), Wt4[(pu(14u) + min(row0 + r, rows - 1u) * K + min(k, K - 4u)) / 4u], k < K);
        for (var q = 0u; q < 4u; q++) { Sm[((kk + q) * BM + r) / 4u][r % 4u] = v[q]; }
      }
    } else {
      for (var e = li; e < BM * BKS; e += NW) {
        let r = e / BKS; let kk = e % BKS;
        let k = kc + kk;
        Sm[(kk * BM + r) / 4u][r % 4u] = select(0.0, a_at(kind, min(row0 + r, rows - 1u), min(k, k1 - 1u)), k < k1);
      }
    }
    let c = li % BN;
    for (var kk = li / BN; kk < BKS; kk += NW / BN) {
      let k = kc + kk;
      Sm[A_VECS + (kk * BN + c) / 4u][c % 4u] = select(0.0, b_at(kind, col, min(k, k1 - 1u)), k < k1);
    }
    workgroupBarrier();
    for (var kk = ks; kk < ks + BK; kk++) {
      var a: array<vec4f, TM / 4u>;
      var b: array<vec4f, TN / 4u>;
      for (var i = 0u; i < TM / 4u; i++) { a[i] = Sm[(kk * BM + ty * TM) / 4u + i]; }
      for (var j = 0u; j < TN / 4u; j++) { b[j] = Sm[A_VECS + (kk * BN + tx * TN) / 4u + j]; }
      for (var i = 0u; i < TM; i++) {
        let x = vec4f(a[i / 4u][i % 4u]);
        for (var j = 0u; j < TN / 4u; j++) { acc[i][j] = fma(x, b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  if (KS > 1u) {
    // The slices' sums: slices 1.. leave their tiles in Sm (free since the last barrier), slice 0 adds them.
    let s = li / NT;
    if (s > 0u) {
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN / 4u; j++) { Sm[red_at(s, i, j, l)] = acc[i][j]; }
      }
    }
    workgroupBarrier();
    if (s == 0u) {
      for (var t = 1u; t < KS; t++) {
        for (var i = 0u; i < TM; i++) {
          for (var j = 0u; j < TN / 4u; j++) { acc[i][j] += Sm[red_at(t, i, j, l)]; }
        }
      }
    }
  }
  return acc;
}

// The first row and column of the invocation's tile in its block.
fn tile_row(li: u32) -> u32 { return li / (BN / TN) * TM; }
fn tile_col(li: u32) -> u32 { return li % (BN / TN) * TN; }

@compute @workgroup_size(NW)
fn conv2d_fwd_wg(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let Cout = pu(4u); let OH = pu(5u); let OW = pu(6u); let NP = pu(24u);
  let row0 = wg.z * BM; let col0 = flat_wg(wg, nwg) * BN;
  var acc = gemm_tile(FWD, li, row0, col0, Cout, NP, 0u, pu(1u) * pu(7u) * pu(8u));
  if (li >= NT) { return; } // slice 0 stores
  let r0 = row0 + tile_row(li); let c0 = col0 + tile_col(li);
  for (var j = 0u; j < TN && c0 + j < NP; j++) {
    let px = pixel(c0 + j, OH, OW);
    let ob = pu(15u) + px.x * pu(16u) + px.y * OW + px.z;
    for (var i = 0u; i < TM && r0 + i < Cout; i++) { put_y(r0 + i, ob, acc[i][j / 4u][j % 4u], bias_of(r0 + i)); }
  }
}

@compute @workgroup_size(NW)
fn conv2d_dgrad_wg(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let Cin = pu(1u); let H = pu(2u); let W = pu(3u); let NP = pu(24u);
  let row0 = wg.z * BM; let col0 = flat_wg(wg, nwg) * BN;
  var acc = gemm_tile(DGRAD, li, row0, col0, Cin, NP, 0u, pu(4u) * pu(7u) * pu(8u));
  if (li >= NT) { return; } // slice 0 stores
  let r0 = row0 + tile_row(li); let c0 = col0 + tile_col(li);
  for (var j = 0u; j < TN && c0 + j < NP; j++) {
    let px = pixel(c0 + j, H, W);
    let p = px.y * W + px.z;
    let oo = pu(18u) + px.x * pu(19u) + p;
    let xo = pu(11u) + px.x * pu(12u) + p;
    for (var i = 0u; i < TM && r0 + i < Cin; i++) { put_dx(r0 + i, oo, xo, acc[i][j / 4u][j % 4u], mask_of(r0 + i)); }
  }
}

@compute @workgroup_size(NW)
fn conv2d_wgrad_wg(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let Cout = pu(4u); let OW = pu(6u); let LD = pu(28u);
  let row0 = wg.y * BM; let col0 = wg.x * BN;
  // This split's k: the (n, oh, ow) of rows (n, oh) r0 .. r1.
  let r0 = wg.z * pu(25u);
  let r1 = min(r0 + pu(25u), pu(26u));
  var acc = gemm_tile(WGRAD, li, row0, col0, Cout, LD, r0 * OW, r1 * OW);
  if (li >= NT) { return; } // slice 0 stores
  let base = pu(18u) + wg.z * pu(19u);
  let m0 = row0 + tile_row(li); let c0 = col0 + tile_col(li);
  for (var j = 0u; j < TN && c0 + j < LD; j++) {
    for (var i = 0u; i < TM && m0 + i < Cout; i++) { put_dw(m0 + i, c0 + j, base, acc[i][j / 4u][j % 4u]); }
  }
}
