// matmul_lanes_quad.wgsl: the 4 lanes of a quad hold the same rows (TY = 1); lane s = lane & 3 loads
// rows m0 + 4j + s (j < TM / 4) and quadBroadcast hands each to the other three (needs `subgroups`,
// subgroup sizes a multiple of 4).
var<private> ra: array<u32, TM / 4u>;

@compute @workgroup_size(TX * TY)
fn matmul_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sid: u32) {
  tile_main(wid, li, sid);
}

fn setup_lanes(t: Tile) {
  let s = t.lane & 3u;
  for (var j = 0u; j < TM / 4u; j++) { ra[j] = t.aBase + min(t.m0 + 4u * j + s, t.M - 1u) * t.aRs; }
  setup_b(t);
}

fn a_col(t: Tile, k: u32, kk: u32) -> array<f32, TM> {
  var out: array<f32, TM>;
  let ka = k * t.aCs;
  for (var j = 0u; j < TM / 4u; j++) {
    let v = A[ra[j] + ka];
    out[4u * j] = quadBroadcast(v, 0u);
    out[4u * j + 1u] = quadBroadcast(v, 1u);
    out[4u * j + 2u] = quadBroadcast(v, 2u);
    out[4u * j + 3u] = quadBroadcast(v, 3u);
  }
  return out;
}
