// batchnorm_stats.wgsl: per-channel reductions of batch norm. How the lanes of a workgroup are summed,
// wg_sum(v, li) (the total returned to invocation 0), is a snippet composed with this body
// (engine/ops/batchnorm.ts): batchnorm_stats_tree.wgsl (a workgroup-memory tree with barriers) or
// batchnorm_stats_subgroup.wgsl (subgroupAdd, then one workgroup-memory step; needs `subgroups`).
// Bindings: 1 X (read), 2 DY (read), 3 ST (read, stats [3, *]: mean, invstd, var), 4 OUT (read_write).
// Dispatch: one workgroup of WG invocations per channel (workgroup_id.x = channel c of the view).
//   Each invocation folds elements j = li, li + WG, ... of every (n, c) plane (vec4 when VEC), the
//   partial of each plane added into its running total; then the workgroup sums the lanes.
//   bn_stats:      OUT[oc + c] = mean, OUT[oc + rs + c] = 1/sqrt(var + eps), OUT[oc + 2rs + c] = var (biased).
//                  NOTE: sums are of x - K, K = the channel's first element (a shift that keeps
//                  E[(x-K)^2] - E[x-K]^2 free of cancellation when |mean| >> std).
//   bn_grad_stats: OUT[oc + c] = sum(dy), OUT[oc + rs + c] = sum(dy * (x - mean)) * invstd
//                  (the gradients of beta and gamma).
// Parameters: 0 N  1 HW  2 x offset  3 x stride n  4 x stride c  5 out column offset oc  6 out row stride rs
//   7 eps (f32)  8 dy offset  9 dy stride n  10 dy stride c  11 stats column offset  12 stats row stride
//   Offsets and strides are in floats; with VEC they are multiples of 4 and HW too.
override WG: u32 = 64u;
override VEC: bool = true;

@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> DY: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ST: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;

var<workgroup> part: array<vec2<f32>, WG>;

fn xs(i: u32) -> f32 { return X[i >> 2u][i & 3u]; }
fn dys(i: u32) -> f32 { return DY[i >> 2u][i & 3u]; }

@compute @workgroup_size(WG)
fn bn_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let N = pu(0u); let HW = pu(1u);
  let cbase = pu(2u) + c * pu(4u);
  let K = xs(cbase);
  var s = 0.0; var q = 0.0;
  for (var n = 0u; n < N; n++) {
    let base = cbase + n * pu(3u);
    if (VEC) {
      var ps = vec4<f32>(); var pq = vec4<f32>();
      let b4 = base >> 2u;
      for (var j = li; j < (HW >> 2u); j += WG) {
        let v = X[b4 + j] - K;
        ps += v; pq += v * v;
      }
      s += (ps.x + ps.y) + (ps.z + ps.w); q += (pq.x + pq.y) + (pq.z + pq.w);
    } else {
      var ps = 0.0; var pq = 0.0;
      for (var j = li; j < HW; j += WG) {
        let v = xs(base + j) - K;
        ps += v; pq += v * v;
      }
      s += ps; q += pq;
    }
  }
  let t = wg_sum(vec2<f32>(s, q), li);
  if (li == 0u) {
    let inv = 1.0 / f32(N * HW);
    let m = t.x * inv;
    let v = max(t.y * inv - m * m, 0.0);
    let o = pu(5u) + c; let rs = pu(6u);
    OUT[o] = K + m;
    OUT[o + rs] = inverseSqrt(v + pf(7u));
    OUT[o + 2u * rs] = v;
  }
}

@compute @workgroup_size(WG)
fn bn_grad_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x;
  let N = pu(0u); let HW = pu(1u);
  let sc = pu(11u) + c; let srs = pu(12u);
  let mean = ST[sc]; let invstd = ST[sc + srs];
  var s = 0.0; var q = 0.0;
  for (var n = 0u; n < N; n++) {
    let xb = pu(2u) + c * pu(4u) + n * pu(3u);
    let db = pu(8u) + c * pu(10u) + n * pu(9u);
    if (VEC) {
      var ps = vec4<f32>(); var pq = vec4<f32>();
      let x4 = xb >> 2u; let d4 = db >> 2u;
      for (var j = li; j < (HW >> 2u); j += WG) {
        let d = DY[d4 + j];
        ps += d; pq += d * (X[x4 + j] - mean);
      }
      s += (ps.x + ps.y) + (ps.z + ps.w); q += (pq.x + pq.y) + (pq.z + pq.w);
    } else {
      var ps = 0.0; var pq = 0.0;
      for (var j = li; j < HW; j += WG) {
        let d = dys(db + j);
        ps += d; pq += d * (xs(xb + j) - mean);
      }
      s += ps; q += pq;
    }
  }
  let t = wg_sum(vec2<f32>(s, q), li);
  if (li == 0u) {
    let o = pu(5u) + c; let rs = pu(6u);
    OUT[o] = t.x;
    OUT[o + rs] = t.y * invstd;
  }
}
