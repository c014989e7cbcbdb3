// adam.wgsl: one in-place Adam or AdamW step (PyTorch's torch.optim.Adam / AdamW rule, amsgrad off) over a
// range of packed parameters: parameters, gradients and both moments at the same element offsets of four
// flat buffers, so one dispatch updates every parameter of the range.
// Bindings: 1 G (read: packed gradients), 2 PRM (read_write: parameters), 3 M (read_write: exp_avg),
//   4 V (read_write: exp_avg_sq), 5 SKIP (read: the skip flag, a zero word when there is none),
//   6 STEPS (read_write: skipped-step counts, see below; any other buffer when not counted on the GPU).
// Dispatch: 1-D (grid1d), 4 consecutive elements per invocation, over elements [start, start + n).
//   SKIP[word] != 0 (GradScaler found an inf or NaN gradient): nothing is written, so parameters and
//     moments stay as they were; with flag bit 1 the first invocation adds 1 to STEPS[slot].
//   AdamW (decoupled): p = p * (1 - lr * wd);  Adam: g = g + wd * p
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
//   p = p - stepSize * m / (sqrt(v) / bc2sqrt + eps), stepSize = lr / (1 - beta1^t), bc2sqrt = sqrt(1 - beta2^t)
//   stepSize and bc2sqrt come from the host (words 7, 8), or with flag bit 0 (step counted on the GPU)
//   are computed here for t = word 16 - STEPS[slot], as 1 - beta^t = -expm1(t * ln(beta)).
// Parameters: 0 n  1 start  2 lr  3 weight decay  4 beta1  5 beta2  6 eps  7 stepSize  8 bc2sqrt (f32)
//   9 flags: bit 0 decoupled weight decay (AdamW)  10 decay factor 1 - lr * wd  11 1 - beta1  12 1 - beta2
//   (f32; the differences are computed in float64 on the host, as PyTorch does: 1 - f32(0.999) is 1e-5 off)
//   13 the word of SKIP holding the flag  14 slot  15 flags: bit 0 step counted on the GPU, bit 1 count a
//   skipped step in STEPS[slot]  16 the step number after this step, skips included (u32)
//   17 ln(beta1)  18 ln(beta2) (f32, computed in float64 on the host)
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> PRM: array<f32>;
@group(0) @binding(3) var<storage, read_write> M: array<f32>;
@group(0) @binding(4) var<storage, read_write> V: array<f32>;
@group(0) @binding(5) var<storage, read> SKIP: array<f32>;
@group(0) @binding(6) var<storage, read_write> STEPS: array<f32>;

// 1 - exp(x) for x <= 0, to about 1e-6 relative: a series where exp(x) is close to 1.
fn one_minus_exp(x: f32) -> f32 {
  if (x > -0.1) { return -x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x / 720.0))))); }
  return 1.0 - exp(x);
}

@compute @workgroup_size(WG)
fn adam_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  if (SKIP[pu(13u)] != 0.0) {
    if ((pu(15u) & 2u) != 0u && base == 0u) { STEPS[pu(14u)] += 1.0; }
    return;
  }
  let n = pu(0u);
  let wd = pf(3u); let b1 = pf(4u); let b2 = pf(5u); let eps = pf(6u);
  var stepSize = pf(7u); var bc2sqrt = pf(8u);
  if ((pu(15u) & 1u) != 0u) {
    let t = f32(pu(16u)) - STEPS[pu(14u)];
    stepSize = pf(2u) / one_minus_exp(t * pf(17u));
    bc2sqrt = sqrt(one_minus_exp(t * pf(18u)));
  }
  let decoupled = (pu(9u) & 1u) != 0u;
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
