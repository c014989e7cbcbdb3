// adam.wgsl: one in-place Adam or AdamW step (PyTorch's torch.optim.Adam / AdamW rule, amsgrad off) over a
// range of packed parameters: parameters, gradients and both moments at the same element offsets of four
// flat buffers, so one dispatch updates every parameter of the range.
// Bindings: 1 G (read: packed gradients), 2 PRM (read_write: parameters), 3 M (read_write: exp_avg),
//   4 V (read_write: exp_avg_sq).
// Dispatch: 1-D (grid1d), 4 consecutive elements per invocation, over elements [start, start + n).
//   AdamW (decoupled): p = p * (1 - lr * wd);  Adam: g = g + wd * p
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
//   p = p - stepSize * m / (sqrt(v) / bc2sqrt + eps), stepSize = lr / (1 - beta1^t), bc2sqrt = sqrt(1 - beta2^t)
// Parameters: 0 n  1 start  2 (unused)  3 weight decay  4 beta1  5 beta2  6 eps  7 stepSize  8 bc2sqrt (f32)
//   9 flags: bit 0 decoupled weight decay (AdamW)  10 decay factor 1 - lr * wd  11 1 - beta1  12 1 - beta2
//   (f32; the differences are computed in float64 on the host, as PyTorch does: 1 - f32(0.999) is 1e-5 off)
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> PRM: array<f32>;
@group(0) @binding(3) var<storage, read_write> M: array<f32>;
@group(0) @binding(4) var<storage, read_write> V: array<f32>;

@compute @workgroup_size(WG)
fn adam_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let wd = pf(3u); let b1 = pf(4u); let b2 = pf(5u); let eps = pf(6u);
  let stepSize = pf(7u); let bc2sqrt = pf(8u); let decoupled = (pu(9u) & 1u) != 0u;
  for (var k = 0u; k < 4u; k++) {
    if (base + k >= n) { return; }
    let i = pu(1u) + base + k;
    var p = PRM[i];
    var g = G[i];
    if (decoupled) { p = p * pf(10u); } else { g = g + wd * p; }
    let m = M[i] * b1 + pf(11u) * g;
    let v = V[i] * b2 + pf(12u) * g * g;
    M[i] = m;
    V[i] = v;
    PRM[i] = p - stepSize * (m / (sqrt(v) / bc2sqrt + eps));
  }
}
