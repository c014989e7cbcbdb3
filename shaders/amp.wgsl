// amp.wgsl: dynamic loss scaling (PyTorch's GradScaler kernels) without reading anything back.
// The scaler keeps its state in one small buffer S of f32 words: 0 scale, 1 growth tracker (an integer
// count of clean steps), 2 skipped iterations (an integer count), 3 unused, 4.. one found-inf flag per
// optimiser (0 or 1).
// Bindings: 1 X (read_write: the packed gradients for amp_unscale; any other buffer for amp_update),
//   2 S (read_write: the scaler's state words).
//
// amp_unscale: 1-D (grid1d), 4 consecutive elements per invocation over X[0, n):
//   a gradient that is inf or NaN sets S[found] = 1 (tested on the bits, before scaling, as PyTorch's
//   _amp_foreach_non_finite_check_and_unscale_); every gradient is multiplied by 1 / S[0].
//   Parameters: 0 n  1 found (the word of this optimiser's flag)
// amp_update: one invocation (PyTorch's _amp_update_scale_): found = any flag in S[4, 4 + m);
//   found:     scale *= backoff, tracker = 0, skipped += 1
//   otherwise: tracker += 1; when tracker reaches the interval, scale *= growth (only if that is
//              finite) and tracker = 0
//   then every flag is cleared for the next iteration.
//   Parameters: 0 m (flags)  1 growth factor (f32)  2 backoff factor (f32)  3 growth interval (u32)
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read_write> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;

fn non_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(WG)
fn amp_unscale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let inv = 1.0 / S[0];
  var found = false;
  for (var k = 0u; k < 4u; k++) {
    let i = base + k;
    if (i >= n) { break; }
    let g = X[i];
    found = found || non_finite(g);
    X[i] = g * inv;
  }
  // Every writer stores the same value, so concurrent stores are harmless.
  if (found) { S[pu(1u)] = 1.0; }
}

@compute @workgroup_size(1)
fn amp_update() {
  var found = false;
  for (var k = 0u; k < pu(0u); k++) {
    found = found || S[4u + k] != 0.0;
    S[4u + k] = 0.0;
  }
  if (found) {
    S[0] = S[0] * pf(2u);
    S[1] = 0.0;
    S[2] = S[2] + 1.0;
    return;
  }
  let tracker = S[1] + 1.0;
  if (tracker >= f32(pu(3u))) {
    let grown = S[0] * pf(1u);
    if (!non_finite(grown)) { S[0] = grown; }
    S[1] = 0.0;
  } else {
    S[1] = tracker;
  }
}
