// bn_moments.wgsl: one channel's batch moments, composed after batchnorm_stats.wgsl (bn_stats) and
// batchnorm_update.wgsl (bn_stats_update). The body declares X (array<vec4<X_T>>), `override VEC` and
// `override WG`, and the workgroup array `part` that wg_sum (a lane-summing snippet) uses.
// channel_moments: the workgroup's invocations walk N planes of HW elements at element offsets
// cbase + n * sn (vec4s when VEC: cbase, sn and HW multiples of 4), the partial of each plane added into
// its running total; returns (mean, biased variance) to invocation 0. The sums are of x - K, K = the
// channel's first element (a shift that keeps E[(x-K)^2] - E[x-K]^2 free of cancellation when
// |mean| >> std).
fn channel_moments(cbase: u32, N: u32, HW: u32, sn: u32, li: u32) -> vec2<f32> {
  let K = f32(X[cbase >> 2u][cbase & 3u]);
  var s = 0.0; var q = 0.0;
  for (var n = 0u; n < N; n++) {
    let base = cbase + n * sn;
    if (VEC) {
      var ps = vec4<f32>(); var pq = vec4<f32>();
      let b4 = base >> 2u;
      for (var j = li; j < (HW >> 2u); j += WG) {
        let v = vec4<f32>(X[b4 + j]) - K;
        ps += v; pq += v * v;
      }
      s += (ps.x + ps.y) + (ps.z + ps.w); q += (pq.x + pq.y) + (pq.z + pq.w);
    } else {
      var ps = 0.0; var pq = 0.0;
      for (var j = li; j < HW; j += WG) {
        let i = base + j;
        let v = f32(X[i >> 2u][i & 3u]) - K;
        ps += v; pq += v * v;
      }
      s += ps; q += pq;
    }
  }
  let t = wg_sum(vec2<f32>(s, q), li);
  let inv = 1.0 / f32(N * HW);
  let m = t.x * inv;
  return vec2<f32>(K + m, max(t.y * inv - m * m, 0.0));
}
