// topk.wgsl: the K largest values of each row of a contiguous [R, C] tensor and their indices
// (argmax is K = 1), and the gradient of the values.
// Bindings: 1 X (read: the input; in backward the indices), 2 G (read: the values' gradient in backward;
//   unused in forward), 3 VAL (read_write: values [R, K] in forward; dx [R, C] in backward),
//   4 IDX (read_write: indices [R, K] as f32 in forward; unused in backward).
// Dispatch: 1-D (grid1d), one invocation per row.
// topk_fwd: keeps the K best (value, index) pairs sorted by value, largest first; a NaN counts as larger
//   than any number (as in PyTorch); among equal values the lower index comes first.
// topk_bwd: dx = 0 on the row, then dx[idx[j]] += g[j].
// Parameters: 0 R  1 C  2 X offset  3 G offset  4 K (1..5)
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> VAL: array<f32>;
@group(0) @binding(4) var<storage, read_write> IDX: array<f32>;

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

// Whether a is ranked before b (a came later in the row, so ties keep the earlier index first).
fn better(a: f32, b: f32) -> bool { return (is_nan(a) && !is_nan(b)) || (!is_nan(b) && a > b); }

@compute @workgroup_size(WG)
fn topk_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = flat_wg(wg, nwg) * WG + li;
  let C = pu(1u); let K = pu(4u);
  if (r >= pu(0u)) { return; }
  let xb = pu(2u) + r * C;
  var v: array<f32, 5>;
  var ix: array<u32, 5>;
  var n = 0u;
  for (var j = 0u; j < C; j++) {
    let x = X[xb + j];
    // Insert x if the list is not full or x beats its last entry.
    if (n < K || better(x, v[K - 1u])) {
      var at = min(n, K - 1u);
      while (at > 0u && better(x, v[at - 1u])) {
        v[at] = v[at - 1u];
        ix[at] = ix[at - 1u];
        at--;
      }
      v[at] = x;
      ix[at] = j;
      n = min(n + 1u, K);
    }
  }
  for (var k = 0u; k < K; k++) {
    VAL[r * K + k] = v[k];
    IDX[r * K + k] = f32(ix[k]);
  }
}

@compute @workgroup_size(WG)
fn topk_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let r = flat_wg(wg, nwg) * WG + li;
  let C = pu(1u); let K = pu(4u);
  if (r >= pu(0u)) { return; }
  for (var j = 0u; j < C; j++) { VAL[r * C + j] = 0.0; }
  for (var k = 0u; k < K; k++) {
    let j = u32(X[pu(2u) + r * K + k]);
    VAL[r * C + j] += G[pu(3u) + r * K + k];
  }
}
