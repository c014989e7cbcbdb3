// batchnorm_stats.wgsl: batch norm's per-channel kernels: its reductions, its backward and its apply.
// How the lanes of a workgroup are summed, wg_sum(v, li) (the total returned to invocation 0), is a
// snippet composed with this body (engine/ops/batchnorm.ts): batchnorm_stats_tree.wgsl (a
// workgroup-memory tree with barriers) or batchnorm_stats_subgroup.wgsl (subgroupAdd, then one
// workgroup-memory step; needs `subgroups`); bn_stats's reduction is bn_moments.wgsl's, composed too.
// Bindings: 1 X (read), 2 DY (read), 3 ST (read, stats [3, *]: mean, invstd, var), 4 OUT (read_write),
//   5 GAMMA, 6 BETA (read), 7 DX (read_write: dx, or bn_apply's output), 8 DGAMMA (read_write). Unused
//   bindings get any buffers of their element type (distinct ones for the writable bindings).
//   X, DY and DX (the activations) are float32 or float16 (X_T, DY_T, DX_T: engine/storage.ts); every
//   other binding, and all arithmetic and sums, are float32.
// Dispatch: one workgroup of WG invocations per channel (workgroup_id.x = channel c of the view; for
//   bn_apply and bn_backward's PHASE 2, workgroup_id.y = a group of images).
//   bn_stats walks the planes as bn_moments.wgsl says; bn_backward and bn_apply walk the channel's
//   planes as one flat range (see Walk) so that small planes fill the lanes, folding partial sums every
//   FOLD steps. Then the workgroup sums the lanes.
//   bn_stats:    OUT[oc + c] = mean, OUT[oc + rs + c] = 1/sqrt(var + eps), OUT[oc + 2rs + c] = var (biased).
//   bn_backward: batch norm's backward for the channel, with d = dy (RELU = 0), or d = dy where
//                x * scale + shift > 0 (RELU = 1: the gradient through a ReLU after the batch norm,
//                scale = invstd * gamma and shift = beta - mean * scale as bn_apply computes them):
//                first the sums OUT[oc + c] = sum(d), OUT[oc + rs + c] = sum(d * (x - mean)) * invstd
//                (the gradients of beta and gamma; also into DGAMMA[dg] when word 21 is 1), then
//                DX = gamma * invstd * (d - sum(d)/M - xhat * sum(d xhat)/M), M = N*HW (TRAIN = 1), or
//                gamma * invstd * d with the statistics held fixed (TRAIN = 0); with ACC added to what
//                DX holds (the dense block's gradient buffer). PHASE 0 does both in one workgroup per
//                channel (G = N); PHASE 1 only the sums; PHASE 2 only dx, from the sums in OUT, with
//                workgroup (x, y) = (channel, group y of G images) (engine/variants.ts bnBackward).
// Parameters: 0 N  1 HW  2 x offset  3 x stride n  4 x stride c  5 out column offset oc  6 out row stride rs
//   7 eps (f32)  8 dy offset  9 dy stride n  10 dy stride c  11 stats column offset  12 stats row stride
//   13 gamma offset  14 gamma stride  15 beta offset  16 beta stride  17 dx offset  18 dx stride n
//   19 dx stride c  20 1/M (f32)  21 1: write DGAMMA  22 its offset (dg)  23 images per workgroup G
//   Offsets and strides are in elements; with VEC they are multiples of 4 and HW too.
override WG: u32 = 64u;
override VEC: bool = true;
override TRAIN: bool = true;
override ACC: bool = false;
override RELU: bool = false;
override PHASE: u32 = 0u;

@group(0) @binding(1) var<storage, read> X: array<vec4<X_T>>;
@group(0) @binding(2) var<storage, read> DY: array<vec4<DY_T>>;
@group(0) @binding(3) var<storage, read> ST: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(5) var<storage, read> GAMMA: array<f32>;
@group(0) @binding(6) var<storage, read> BETA: array<f32>;
@group(0) @binding(7) var<storage, read_write> DX: array<vec4<DX_T>>;
@group(0) @binding(8) var<storage, read_write> DGAMMA: array<f32>;

var<workgroup> part: array<vec2<f32>, WG>;

fn xs(i: u32) -> f32 { return f32(X[i >> 2u][i & 3u]); }
fn dys(i: u32) -> f32 { return f32(DY[i >> 2u][i & 3u]); }

// A channel's N planes walked as one flat range of units (a vec4 when VEC, else one element in .x with
// .yzw = 0), so small planes still fill the lanes: unit f = li, li + WG, ... is (image n, unit j of its
// plane), stepped without a division. Partial sums are folded into the totals every FOLD steps.
const FOLD = 32u;
struct Walk { n: u32, j: u32, dn: u32, dj: u32, q: u32 }
fn walk_start(li: u32, q: u32, n0: u32) -> Walk {
  let n = li / q;
  let d = WG / q;
  return Walk(n0 + n, li - n * q, d, WG - d * q, q);
}
fn walk_next(w: ptr<function, Walk>) {
  (*w).j += (*w).dj; (*w).n += (*w).dn;
  if ((*w).j >= (*w).q) { (*w).j -= (*w).q; (*w).n += 1u; }
}
fn units(HW: u32) -> u32 { return select(HW, HW >> 2u, VEC); }
// Unit j of the plane at element offset `base` of X or DY.
fn ld_x(base: u32, j: u32) -> vec4<f32> {
  if (VEC) { return vec4<f32>(X[(base >> 2u) + j]); }
  return vec4<f32>(xs(base + j), 0.0, 0.0, 0.0);
}
fn ld_dy(base: u32, j: u32) -> vec4<f32> {
  if (VEC) { return vec4<f32>(DY[(base >> 2u) + j]); }
  return vec4<f32>(dys(base + j), 0.0, 0.0, 0.0);
}
// The unit at element offset o of DX: a vec4 when VEC, else one element (in .x).
fn ld_dx(o: u32) -> vec4<f32> {
  if (VEC) { return vec4<f32>(DX[o >> 2u]); }
  return vec4<f32>(f32(DX[o >> 2u][o & 3u]), 0.0, 0.0, 0.0);
}
fn st_dx(o: u32, v: vec4<f32>) {
  if (VEC) { DX[o >> 2u] = DX_st4(v); } else { DX[o >> 2u][o & 3u] = DX_st(v.x); }
}
fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }

@compute @workgroup_size(WG)
fn bn_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let mv = channel_moments(pu(2u) + c * pu(4u), pu(0u), pu(1u), pu(3u), li);
  if (li == 0u) {
    let o = pu(5u) + c; let rs = pu(6u);
    OUT[o] = mv.x;
    OUT[o + rs] = inverseSqrt(mv.y + pf(7u));
    OUT[o + 2u * rs] = mv.y;
  }
}

// bn_apply: workgroup (x, y) = (channel c, group y of G = word 23 images): DX = fma(x, scale, shift)
// over images [y*G, min(N, y*G + G)), with scale = invstd * gamma and shift = beta - mean * scale (with
// RELU, max(that, 0); NaN stays NaN), into the view at words 17-19.
@compute @workgroup_size(WG)
fn bn_apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let N = pu(0u); let HW = pu(1u); let G = pu(23u);
  let sc = pu(11u) + c; let srs = pu(12u);
  let scale = ST[sc + srs] * GAMMA[pu(13u) + c * pu(14u)];
  let shift = BETA[pu(15u) + c * pu(16u)] - ST[sc] * scale;
  let xb = pu(2u) + c * pu(4u); let xsn = pu(3u);
  let ob = pu(17u) + c * pu(19u); let osn = pu(18u);
  let Q = units(HW);
  let n0 = wg.y * G;
  var w = walk_start(li, Q, n0);
  for (var f = li; f < (min(N, n0 + G) - n0) * Q; f += WG) {
    var v = fma(ld_x(xb + w.n * xsn, w.j), vec4<f32>(scale), vec4<f32>(shift));
    if (RELU) { v = select(v, vec4<f32>(), v <= vec4<f32>()); }
    st_dx(ob + w.n * osn + select(w.j, 4u * w.j, VEC), v);
    walk_next(&w);
  }
}

// The gradient reaching the batch norm's output: dy, or with RELU dy where the ReLU passed it.
fn masked(d: vec4<f32>, x: vec4<f32>, scale: f32, shift: f32) -> vec4<f32> {
  if (!RELU) { return d; }
  return select(vec4<f32>(), d, fma(x, vec4<f32>(scale), vec4<f32>(shift)) > vec4<f32>());
}

@compute @workgroup_size(WG)
fn bn_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let N = pu(0u); let HW = pu(1u);
  let sc = pu(11u) + c; let srs = pu(12u);
  let mean = ST[sc]; let invstd = ST[sc + srs];
  let gamma = GAMMA[pu(13u) + c * pu(14u)];
  let scale = invstd * gamma;
  let shift = BETA[pu(15u) + c * pu(16u)] - mean * scale;
  let xb = pu(2u) + c * pu(4u); let xsn = pu(3u);
  let db = pu(8u) + c * pu(10u); let dsn = pu(9u);
  let Q = units(HW);
  let o = pu(5u) + c; let rs = pu(6u);
  // g = (sum(d), sum(d * xhat)): computed here (PHASE 0, 1) or read back from OUT (PHASE 2).
  var g = vec2<f32>();
  if (PHASE != 2u) {
    var s = 0.0; var q = 0.0;
    var ps = vec4<f32>(); var pq = vec4<f32>();
    var w = walk_start(li, Q, 0u);
    var k = 0u;
    // d is 0 in the unused components of scalar mode, so they add nothing.
    for (var f = li; f < N * Q; f += WG) {
      let x = ld_x(xb + w.n * xsn, w.j);
      let d = masked(ld_dy(db + w.n * dsn, w.j), x, scale, shift);
      ps += d; pq += d * (x - mean);
      k++;
      if (k == FOLD) { s += hsum(ps); q += hsum(pq); ps = vec4<f32>(); pq = vec4<f32>(); k = 0u; }
      walk_next(&w);
    }
    s += hsum(ps); q += hsum(pq);
    let t = wg_sum(vec2<f32>(s, q), li);
    workgroupBarrier();
    if (li == 0u) {
      OUT[o] = t.x;
      OUT[o + rs] = t.y * invstd;
      if (pu(21u) == 1u) { DGAMMA[pu(22u) + c] = t.y * invstd; }
      part[0] = vec2<f32>(t.x, t.y * invstd);
    }
    workgroupBarrier();
    g = part[0];
    if (PHASE == 1u) { return; }
  } else {
    g = vec2<f32>(OUT[o], OUT[o + rs]);
  }
  // dx = a*d + b*x + k
  let a = gamma * invstd;
  var b = 0.0; var kk = 0.0;
  if (TRAIN) {
    let inv = pf(20u);
    let mdy = g.x * inv;                  // mean of d
    let mdg = g.y * inv;                  // mean of d * xhat
    b = -a * invstd * mdg;
    kk = -a * mdy - b * mean;
  }
  let ob = pu(17u) + c * pu(19u); let osn = pu(18u);
  let n0 = wg.y * pu(23u);
  var w = walk_start(li, Q, n0);
  for (var f = li; f < (min(N, n0 + pu(23u)) - n0) * Q; f += WG) {
    let x = ld_x(xb + w.n * xsn, w.j);
    var v = a * masked(ld_dy(db + w.n * dsn, w.j), x, scale, shift) + b * x + kk;
    let o = ob + w.n * osn + select(w.j, 4u * w.j, VEC);
    if (ACC) { v += ld_dx(o); }
    st_dx(o, v);
    walk_next(&w);
  }
}
