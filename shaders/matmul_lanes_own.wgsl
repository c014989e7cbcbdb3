// matmul_lanes_own.wgsl: every lane loads its own TM rows of A (no subgroups).
var<private> ra: array<u32, TM>;

@compute @workgroup_size(TX * TY)
fn matmul_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  tile_main(wid, li, li);
}

fn setup_lanes(t: Tile) {
  for (var i = 0u; i < TM; i++) { ra[i] = t.aBase + min(t.m0 + i, t.M - 1u) * t.aRs; }
  setup_b(t);
}

fn a_col(t: Tile, k: u32, kk: u32) -> array<f32, TM> {
  var out: array<f32, TM>;
  let ka = k * t.aCs;
  for (var i = 0u; i < TM; i++) { out[i] = A[ra[i] + ka]; }
  return out;
}
