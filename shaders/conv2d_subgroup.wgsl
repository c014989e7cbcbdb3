// conv2d_subgroup.wgsl: 2-D convolution (NCHW, float32, groups 1) as three implicit GEMMs whose
// 32-row operand is loaded cooperatively by a few lanes and shared with subgroup broadcasts.
// Needs the `subgroups` feature. conv2d.wgsl holds the same kernels without subgroups (each lane loads
// all 32 rows itself) and the split-K reduction: keep the two files in step.
//
// Bindings (the same for every entry point; engine/ops/conv.ts binds a dummy where one is unused):
//   1 X     read        x: the input (conv2d_fwd, conv2d_wgrad), or the mask source (conv2d_dgrad, MASK)
//   2 Wt    read        weights [Cout, Cin, KH, KW], contiguous (conv2d_fwd, conv2d_dgrad)
//   3 G     read_write  conv2d_fwd: the output y;  conv2d_dgrad, conv2d_wgrad: the output gradient dy
//   4 O     read_write  conv2d_dgrad: dx;  conv2d_wgrad: dw, or split-K partial sums of dw
//   5 Bias  6 Scale  7 Shift   read, per-channel vectors
//   8 DB    read_write  conv2d_wgrad (and its reduce): the bias gradient db [Cout]
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
//   24 GEMM columns: N*OH*OW (fwd), N*H*W (dgrad); Cin*KH*KW = CK (wgrad: the columns of dw)
//   25 conv2d_wgrad: (n, oh) rows per split  26 conv2d_wgrad: N*OH
//   27 flags: 1 BIAS, 2 MASK, 4 ACC, 8 GALIAS, 16 PARTIAL (below)
//   28 conv2d_wgrad, reduce: GEMM columns, CK, or CK + 1 with the bias gradient as column CK
//
// What an invocation computes: a 32 x 4 tile of its GEMM, in eight mat4x4 accumulators (acc_t column p
// holds rows t, t+8, t+16, t+24 of column p). The four columns are its own (loaded per lane with the
// im2col coordinates computed on the fly, no divisions in the loop); the 32 rows are the same for the
// whole workgroup, so lane s (s = subgroup lane % LANES) loads rows s, s+8, ... and broadcasts them.
//   conv2d_fwd:   y[n, co, oh, ow]  rows co, columns output pixels, k = (ci, kh, kw)
//   conv2d_dgrad: dx[n, ci, ih, iw] rows ci, columns input pixels, k = (co, kh, kw): the transposed conv
//   conv2d_wgrad: dw[co, ci, kh, kw] rows co, columns (ci, kh, kw), k = (n, oh, ow) over this split
// Dispatch: fwd and dgrad: (x, y) = grid1d(ceil(columns / (4 * WG))), z = ceil(rows / 32);
//           wgrad: x = ceil(word 28 / (4 * WG)), y = ceil(Cout / 32), z = splits.
// Options: PROLOGUE (override constant) the conv reads relu(x * scale[c] + shift[c]) (padding stays 0);
//   flags: BIAS adds bias[co] (fwd); MASK multiplies dx by (x * scale[c] + shift[c] > 0) (dgrad);
//   ACC adds into the output instead of overwriting it (dgrad, wgrad); PARTIAL: wgrad writes split-K
//   partial sums (rows of word-28 columns) into O at slice wg.z.
override WG: u32 = 64u;
// Lanes that share the rows: 8 uses subgroupBroadcast from lanes 0..7 (subgroup size >= 8);
// 4 uses quadBroadcast (any subgroup size that is a multiple of 4), loading twice the rows per lane.
override LANES: u32 = 8u;
override PROLOGUE: bool = false;
override XALIAS: bool = false;

// Flags in parameter word 27 (checked outside the loops, so they need no pipeline of their own).
fn flag(bit: u32) -> bool { return (pu(27u) & bit) != 0u; }
const BIAS = 1u;
const MASK = 2u;
const ACC = 4u;
const GALIAS = 8u;
const PARTIAL = 16u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> G: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read> Bias: array<f32>;
@group(0) @binding(6) var<storage, read> Scale: array<f32>;
@group(0) @binding(7) var<storage, read> Shift: array<f32>;
@group(0) @binding(8) var<storage, read_write> DB: array<f32>;

fn load_x(i: u32) -> f32 {
  if (XALIAS) { return G[i]; }
  return X[i];
}
fn load_x4(a: vec4u) -> vec4f { return vec4f(load_x(a.x), load_x(a.y), load_x(a.z), load_x(a.w)); }
fn load_w4(a: vec4u) -> vec4f { return vec4f(Wt[a.x], Wt[a.y], Wt[a.z], Wt[a.w]); }
fn load_g4(a: vec4u) -> vec4f { return vec4f(G[a.x], G[a.y], G[a.z], G[a.w]); }

// Rows that lane `sid` loads: s, s+8, s+16, s+24 (and +4 of those when LANES == 4).
fn lane_rows(sid: u32) -> vec4u { return vec4u(0u, 8u, 16u, 24u) + vec4u(sid % LANES); }

// ra: the rows lane_rows() named for this lane, rb: those + 4 (LANES == 4 only).
// Returns r[t] = rows t, t+8, t+16, t+24.
fn share(ra: vec4f, rb: vec4f) -> array<vec4f, 8> {
  if (LANES == 8u) {
    return array<vec4f, 8>(subgroupBroadcast(ra, 0u), subgroupBroadcast(ra, 1u), subgroupBroadcast(ra, 2u),
      subgroupBroadcast(ra, 3u), subgroupBroadcast(ra, 4u), subgroupBroadcast(ra, 5u), subgroupBroadcast(ra, 6u),
      subgroupBroadcast(ra, 7u));
  }
  return array<vec4f, 8>(quadBroadcast(ra, 0u), quadBroadcast(ra, 1u), quadBroadcast(ra, 2u), quadBroadcast(ra, 3u),
    quadBroadcast(rb, 0u), quadBroadcast(rb, 1u), quadBroadcast(rb, 2u), quadBroadcast(rb, 3u));
}

// acc column p += r * v[p]
fn outer(acc: mat4x4f, r: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(fma(r, vec4f(v.x), acc[0]), fma(r, vec4f(v.y), acc[1]), fma(r, vec4f(v.z), acc[2]), fma(r, vec4f(v.w), acc[3]));
}

// NOTE: relu as the elementwise table writes it, not max(y, 0): WGSL's max() may drop a NaN operand
// (lavapipe does), and relu(NaN) is NaN as in PyTorch. The mask (dgrad) is relu's gradient, 0 at NaN.
fn prologue(v: vec4f, sc: vec4f, sh: vec4f) -> vec4f {
  if (PROLOGUE) {
    let y = fma(v, sc, sh);
    return select(y, vec4f(0.0), y <= vec4f(0.0));
  }
  return v;
}

// The stores walk the tile in loops with run-time bounds (the rows and columns that exist) and read the
// accumulators by index: unrolled, the 128 guarded stores with their flag branches took lavapipe's LLVM
// minutes to compile (the GEMM loop itself takes well under a second). Row r of the tile is
// acc[r % 8] element r / 8.
fn tile_rows(row0: u32, rows: u32) -> u32 { return min(32u, rows - row0); }
fn tile_cols(col0: u32, cols: u32) -> u32 { return min(4u, cols - min(col0, cols)); }

fn store_y(acc: array<mat4x4f, 8>, row0: u32, col0: u32, ob: vec4u) {
  var m = acc;
  var o = ob;
  let nr = tile_rows(row0, pu(4u));
  let nc = tile_cols(col0, pu(24u));
  for (var r = 0u; r < nr; r++) {
    let co = row0 + r;
    var b = 0.0;
    if (flag(BIAS)) { b = Bias[pu(21u) + co]; }
    for (var p = 0u; p < nc; p++) { G[o[p] + co * pu(17u)] = m[r % 8u][p][r / 8u] + b; }
  }
}

fn put_o(i: u32, v: f32) {
  if (flag(GALIAS)) {
    if (flag(ACC)) { G[i] += v; } else { G[i] = v; }
  } else {
    if (flag(ACC)) { O[i] += v; } else { O[i] = v; }
  }
}

fn put_db(i: u32, v: f32) {
  if (flag(ACC)) { DB[i] += v; } else { DB[i] = v; }
}

fn store_dx(acc: array<mat4x4f, 8>, row0: u32, col0: u32, oo: vec4u, xo: vec4u) {
  var m = acc;
  var o = oo;
  var x = xo;
  let nr = tile_rows(row0, pu(1u));
  let nc = tile_cols(col0, pu(24u));
  for (var r = 0u; r < nr; r++) {
    let ci = row0 + r;
    var sc = 1.0; var sh = 0.0;
    if (flag(MASK)) { sc = Scale[pu(22u) + ci]; sh = Shift[pu(23u) + ci]; }
    for (var p = 0u; p < nc; p++) {
      var v = m[r % 8u][p][r / 8u];
      if (flag(MASK)) { v = select(0.0, v, fma(X[x[p] + ci * pu(13u)], sc, sh) > 0.0); }
      put_o(o[p] + ci * pu(20u), v);
    }
  }
}

// Column CK (present when word 28 is CK + 1) is the bias gradient: it goes to DB, or with split-K into
// the partials with the rest.
fn store_dw(acc: array<mat4x4f, 8>, row0: u32, col0: u32, base: u32) {
  var m = acc;
  let CK = pu(24u);
  let ld = select(CK, pu(28u), flag(PARTIAL));
  let nr = tile_rows(row0, pu(4u));
  let nc = tile_cols(col0, pu(28u));
  for (var r = 0u; r < nr; r++) {
    for (var p = 0u; p < nc; p++) {
      let v = m[r % 8u][p][r / 8u];
      if (col0 + p < CK || flag(PARTIAL)) { put_o(base + (row0 + r) * ld + col0 + p, v); } else { put_db(pu(21u) + row0 + r, v); }
    }
  }
}

@compute @workgroup_size(WG)
fn conv2d_fwd(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let Cin = pu(1u); let H = pi(2u); let W = pi(3u); let Cout = pu(4u);
  let OH = pu(5u); let OW = pu(6u); let KH = pu(7u); let KW = pu(8u); let S = pu(9u); let pad = pi(10u);
  let NP = pu(24u);
  let col0 = (flat_wg(wg, nwg) * WG + li) * 4u;
  let row0 = wg.z * 32u;
  // This lane's four output pixels (clamped to the last one; stores skip the extra ones).
  var ih0: vec4i; var iw0: vec4i; var xb: vec4i; var ob: vec4u;
  for (var p = 0u; p < 4u; p++) {
    let q = min(col0 + p, NP - 1u);
    let n = q / (OH * OW); let r = q - n * OH * OW; let oh = r / OW; let ow = r - oh * OW;
    ih0[p] = i32(oh * S) - pad;
    iw0[p] = i32(ow * S) - pad;
    xb[p] = i32(pu(11u) + n * pu(12u)) + ih0[p] * W + iw0[p];
    ob[p] = pu(15u) + n * pu(16u) + oh * OW + ow;
  }
  let K = Cin * KH * KW;
  let KK = KH * KW;
  let rows = row0 + lane_rows(sid);
  let wa = pu(14u) + min(rows, vec4u(Cout - 1u)) * K;
  let wb = pu(14u) + min(rows + vec4u(4u), vec4u(Cout - 1u)) * K;
  var a0 = mat4x4f(); var a1 = mat4x4f(); var a2 = mat4x4f(); var a3 = mat4x4f();
  var a4 = mat4x4f(); var a5 = mat4x4f(); var a6 = mat4x4f(); var a7 = mat4x4f();
  // 1x1 kernels get a loop of their own: one loop level less is worth more than the code size.
  if (KK == 1u) {
    let ok = (ih0 >= vec4i(0)) & (ih0 < vec4i(H)) & (iw0 >= vec4i(0)) & (iw0 < vec4i(W));
    for (var k = 0u; k < Cin; k++) {
      var sc = vec4f(1.0); var sh = vec4f(0.0);
      if (PROLOGUE) { sc = vec4f(Scale[pu(22u) + k]); sh = vec4f(Shift[pu(23u) + k]); }
      let at = vec4u(select(vec4i(0), xb + vec4i(i32(k * pu(13u))), ok));
      let v = select(vec4f(0.0), prologue(load_x4(at), sc, sh), ok);
      let ra = load_w4(wa + vec4u(k));
      var rb = vec4f(0.0);
      if (LANES == 4u) { rb = load_w4(wb + vec4u(k)); }
      let r = share(ra, rb);
      a0 = outer(a0, r[0], v); a1 = outer(a1, r[1], v); a2 = outer(a2, r[2], v); a3 = outer(a3, r[3], v);
      a4 = outer(a4, r[4], v); a5 = outer(a5, r[5], v); a6 = outer(a6, r[6], v); a7 = outer(a7, r[7], v);
    }
  } else {
    var k = 0u;
    for (var ci = 0u; ci < Cin; ci++) {
      var sc = vec4f(1.0); var sh = vec4f(0.0);
      if (PROLOGUE) { sc = vec4f(Scale[pu(22u) + ci]); sh = vec4f(Shift[pu(23u) + ci]); }
      let xc = xb + vec4i(i32(ci * pu(13u)));
      // (kh, kw) in one loop: a loop level costs llvmpipe more than the index arithmetic.
      var kh = 0u; var kw = 0u;
      for (var kk = 0u; kk < KK; kk++) {
        let ih = ih0 + vec4i(i32(kh));
        let iw = iw0 + vec4i(i32(kw));
        let ok = (ih >= vec4i(0)) & (ih < vec4i(H)) & (iw >= vec4i(0)) & (iw < vec4i(W));
        let at = vec4u(select(vec4i(0), xc + vec4i(i32(kh) * W + i32(kw)), ok));
        let v = select(vec4f(0.0), prologue(load_x4(at), sc, sh), ok);
        let ra = load_w4(wa + vec4u(k));
        var rb = vec4f(0.0);
        if (LANES == 4u) { rb = load_w4(wb + vec4u(k)); }
        let r = share(ra, rb);
        a0 = outer(a0, r[0], v); a1 = outer(a1, r[1], v); a2 = outer(a2, r[2], v); a3 = outer(a3, r[3], v);
        a4 = outer(a4, r[4], v); a5 = outer(a5, r[5], v); a6 = outer(a6, r[6], v); a7 = outer(a7, r[7], v);
        k++;
        kw++;
        let wrap = kw == KW;
        kw = select(kw, 0u, wrap);
        kh = select(kh, kh + 1u, wrap);
      }
    }
  }
  store_y(array<mat4x4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7), row0, col0, ob);
}

@compute @workgroup_size(WG)
fn conv2d_dgrad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let Cin = pu(1u); let H = pu(2u); let W = pu(3u); let Cout = pu(4u);
  let OH = i32(pu(5u)); let OW = i32(pu(6u)); let KH = pu(7u); let KW = pu(8u); let S = pu(9u); let pad = pu(10u);
  let NP = pu(24u);
  let col0 = (flat_wg(wg, nwg) * WG + li) * 4u;
  let row0 = wg.z * 32u;
  // Input pixel (n, ih, iw) meets output pixel oh = (ih + pad - kh) / S when S divides it: keep that
  // quotient and remainder per pixel and step them as kh and kw grow (no division in the loop).
  var qh0: vec4i; var rh0: vec4i; var qw0: vec4i; var rw0: vec4i; var gb: vec4i; var oo: vec4u; var xo: vec4u;
  for (var p = 0u; p < 4u; p++) {
    let q = min(col0 + p, NP - 1u);
    let n = q / (H * W); let r = q - n * H * W; let ih = r / W; let iw = r - ih * W;
    qh0[p] = i32((ih + pad) / S); rh0[p] = i32((ih + pad) % S);
    qw0[p] = i32((iw + pad) / S); rw0[p] = i32((iw + pad) % S);
    gb[p] = i32(pu(15u) + n * pu(16u));
    oo[p] = pu(18u) + n * pu(19u) + ih * W + iw;
    xo[p] = pu(11u) + n * pu(12u) + ih * W + iw;
  }
  let KK = KH * KW;
  let rows = row0 + lane_rows(sid);
  let wa = pu(14u) + min(rows, vec4u(Cin - 1u)) * KK;
  let wb = pu(14u) + min(rows + vec4u(4u), vec4u(Cin - 1u)) * KK;
  let Si = vec4i(i32(S));
  var a0 = mat4x4f(); var a1 = mat4x4f(); var a2 = mat4x4f(); var a3 = mat4x4f();
  var a4 = mat4x4f(); var a5 = mat4x4f(); var a6 = mat4x4f(); var a7 = mat4x4f();
  // 1x1 kernels get a loop of their own (see conv2d_fwd).
  if (KK == 1u) {
    let ok = (rh0 == vec4i(0)) & (qh0 >= vec4i(0)) & (qh0 < vec4i(OH)) & (rw0 == vec4i(0)) & (qw0 >= vec4i(0)) & (qw0 < vec4i(OW));
    let g0 = gb + qh0 * OW + qw0;
    for (var co = 0u; co < Cout; co++) {
      let k = co * Cin;
      let v = select(vec4f(0.0), load_g4(vec4u(select(vec4i(0), g0 + vec4i(i32(co * pu(17u))), ok))), ok);
      let ra = load_w4(wa + vec4u(k));
      var rb = vec4f(0.0);
      if (LANES == 4u) { rb = load_w4(wb + vec4u(k)); }
      let r = share(ra, rb);
      a0 = outer(a0, r[0], v); a1 = outer(a1, r[1], v); a2 = outer(a2, r[2], v); a3 = outer(a3, r[3], v);
      a4 = outer(a4, r[4], v); a5 = outer(a5, r[5], v); a6 = outer(a6, r[6], v); a7 = outer(a7, r[7], v);
    }
  } else {
    for (var co = 0u; co < Cout; co++) {
      let gc = gb + vec4i(i32(co * pu(17u)));
      var k = co * Cin * KK;
      // (kh, kw) in one loop: a loop level costs llvmpipe more than the index arithmetic.
      var qh = qh0; var rh = rh0; var qw = qw0; var rw = rw0; var kw = 0u;
      for (var kk = 0u; kk < KK; kk++) {
        let ok = (rh == vec4i(0)) & (qh >= vec4i(0)) & (qh < vec4i(OH)) & (rw == vec4i(0)) & (qw >= vec4i(0)) & (qw < vec4i(OW));
        let v = select(vec4f(0.0), load_g4(vec4u(select(vec4i(0), gc + qh * OW + qw, ok))), ok);
        let ra = load_w4(wa + vec4u(k));
        var rb = vec4f(0.0);
        if (LANES == 4u) { rb = load_w4(wb + vec4u(k)); }
        let r = share(ra, rb);
        a0 = outer(a0, r[0], v); a1 = outer(a1, r[1], v); a2 = outer(a2, r[2], v); a3 = outer(a3, r[3], v);
        a4 = outer(a4, r[4], v); a5 = outer(a5, r[5], v); a6 = outer(a6, r[6], v); a7 = outer(a7, r[7], v);
        k++;
        // Step kw (and at its end, back to kw = 0 and on to kh + 1).
        kw++;
        let wk = kw == KW;
        kw = select(kw, 0u, wk);
        rw -= vec4i(1);
        let ww = rw < vec4i(0);
        rw = select(select(rw, rw + Si, ww), rw0, wk);
        qw = select(select(qw, qw - vec4i(1), ww), qw0, wk);
        let rh1 = rh - vec4i(1);
        let wh = rh1 < vec4i(0);
        rh = select(rh, select(rh1, rh1 + Si, wh), wk);
        qh = select(qh, select(qh, qh - vec4i(1), wh), wk);
      }
    }
  }
  store_dx(array<mat4x4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7), row0, col0, oo, xo);
}

@compute @workgroup_size(WG)
fn conv2d_wgrad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
                @builtin(subgroup_invocation_id) sid: u32) {
  let H = pi(2u); let W = pi(3u); let Cout = pu(4u);
  let OH = pu(5u); let OW = pu(6u); let KH = pu(7u); let KW = pu(8u); let S = pu(9u); let pad = pi(10u);
  let CK = pu(24u);
  let col0 = (wg.x * WG + li) * 4u;
  let row0 = wg.y * 32u;
  // This lane's four columns (ci, kh, kw) and their input offsets relative to (oh * S, ow * S).
  var dh: vec4i; var dw: vec4i; var xcol: vec4i; var sc = vec4f(1.0); var sh = vec4f(0.0);
  for (var p = 0u; p < 4u; p++) {
    let c = min(col0 + p, CK - 1u);
    let ci = c / (KH * KW); let r = c - ci * KH * KW; let kh = r / KW; let kw = r - kh * KW;
    dh[p] = i32(kh) - pad;
    dw[p] = i32(kw) - pad;
    xcol[p] = i32(ci * pu(13u)) + dh[p] * W + dw[p];
    if (PROLOGUE) { sc[p] = Scale[pu(22u) + ci]; sh[p] = Shift[pu(23u) + ci]; }
  }
  // Column CK, the bias gradient's (when there is one), reads ones: dw[co, CK] = sum of dy[co].
  let isb = vec4u(col0) + vec4u(0u, 1u, 2u, 3u) == vec4u(CK);
  let rows = row0 + lane_rows(sid);
  let ga = pu(15u) + min(rows, vec4u(Cout - 1u)) * pu(17u);
  let gb = pu(15u) + min(rows + vec4u(4u), vec4u(Cout - 1u)) * pu(17u);
  let r0 = wg.z * pu(25u);
  let r1 = min(r0 + pu(25u), pu(26u));
  var n = r0 / OH;
  var oh = r0 - n * OH;
  var a0 = mat4x4f(); var a1 = mat4x4f(); var a2 = mat4x4f(); var a3 = mat4x4f();
  var a4 = mat4x4f(); var a5 = mat4x4f(); var a6 = mat4x4f(); var a7 = mat4x4f();
  // (n, oh, ow) in one loop: a loop level costs llvmpipe more than the index arithmetic, and the late
  // stages' rows are short (OW = 6, 3).
  var ow = 0u;
  for (var j = (r1 - min(r0, r1)) * OW; j > 0u; j--) {
    let ih = vec4i(i32(oh * S)) + dh;
    let iw = vec4i(i32(ow * S)) + dw;
    let ok = (ih >= vec4i(0)) & (ih < vec4i(H)) & (iw >= vec4i(0)) & (iw < vec4i(W));
    let at = vec4u(select(vec4i(0), vec4i(i32(pu(11u) + n * pu(12u) + (oh * u32(W) + ow) * S)) + xcol, ok));
    let v = select(select(vec4f(0.0), prologue(load_x4(at), sc, sh), ok), vec4f(1.0), isb);
    let gr = n * pu(16u) + oh * OW + ow;
    let ra = load_g4(ga + vec4u(gr));
    var rb = vec4f(0.0);
    if (LANES == 4u) { rb = load_g4(gb + vec4u(gr)); }
    let r = share(ra, rb);
    a0 = outer(a0, r[0], v); a1 = outer(a1, r[1], v); a2 = outer(a2, r[2], v); a3 = outer(a3, r[3], v);
    a4 = outer(a4, r[4], v); a5 = outer(a5, r[5], v); a6 = outer(a6, r[6], v); a7 = outer(a7, r[7], v);
    ow++;
    let wrap = ow == OW;
    ow = select(ow, 0u, wrap);
    oh = select(oh, oh + 1u, wrap);
    let wrap2 = oh == OH;
    oh = select(oh, 0u, wrap2);
    n = select(n, n + 1u, wrap2);
  }
  let base = pu(18u) + wg.z * pu(19u);
  store_dw(array<mat4x4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7), row0, col0, base);
}
