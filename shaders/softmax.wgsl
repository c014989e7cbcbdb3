// softmax.wgsl: softmax and log-softmax over the rows of a contiguous [R, C] tensor, and their gradients.
// Bindings: 1 X (read: the input in forward, the output y in backward), 2 G (read: the output's gradient;
//   unused in forward), 3 OUT (read_write: y [R, C] in forward, dx [R, C] in backward).
// Dispatch: 1-D (grid1d), one invocation per row (C is a class count: a row is short).
// softmax_fwd: m = max of the row (NaN if the row has a NaN, so the row's outputs are NaN, as PyTorch's),
//   s = sum exp(x - m); y = exp(x - m) / s, or with LOG = 1, y = x - m - log(s) (numerically stable).
// softmax_bwd: dx = y * (g - sum(g * y)); with LOG = 1, dx = g - exp(y) * sum(g).
// Parameters: 0 R  1 C  2 X offset  3 G offset  4 OUT offset
override WG: u32 = 256u;
override LOG: u32 = 0u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

@compute @workgroup_size(WG)
fn softmax_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = flat_wg(wg, nwg) * WG + li;
  let C = pu(1u);
  if (r >= pu(0u)) { return; }
  let xb = pu(2u) + r * C;
  let ob = pu(4u) + r * C;
  var m = X[xb];
  for (var j = 1u; j < C; j++) {
    let v = X[xb + j];
    if (is_nan(v) || v > m) { m = v; }
    if (is_nan(m)) { break; }
  }
  var s = 0.0;
  for (var j = 0u; j < C; j++) { s += exp(X[xb + j] - m); }
  let ls = log(s);
  for (var j = 0u; j < C; j++) {
    let z = X[xb + j] - m;
    if (LOG == 1u) { OUT[ob + j] = z - ls; } else { OUT[ob + j] = exp(z) / s; }
  }
}

@compute @workgroup_size(WG)
fn softmax_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = flat_wg(wg, nwg) * WG + li;
  let C = pu(1u);
  if (r >= pu(0u)) { return; }
  let yb = pu(2u) + r * C;
  let gb = pu(3u) + r * C;
  let ob = pu(4u) + r * C;
  var s = 0.0;
  for (var j = 0u; j < C; j++) {
    if (LOG == 1u) { s += G[gb + j]; } else { s += G[gb + j] * X[yb + j]; }
  }
  for (var j = 0u; j < C; j++) {
    let y = X[yb + j];
    let g = G[gb + j];
    if (LOG == 1u) { OUT[ob + j] = g - exp(y) * s; } else { OUT[ob + j] = y * (g - s); }
  }
}
