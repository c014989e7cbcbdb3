// matmul_lanes_sg8.wgsl: the 8 lanes of a subgroup hold the same rows (TX = 8, TY = 1); lane s loads
// rows m0 + 8j + s (j < TM / 8) and subgroupBroadcast hands each to the other seven (needs subgroups
// of exactly 8 lanes).
var<private> ra: array<u32, TM / 8u>;

@compute @workgroup_size(TX * TY)
fn matmul_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sid: u32) {
  tile_main(wid, li, sid);
}

fn setup_lanes(t: Tile) {
  for (var j = 0u; j < TM / 8u; j++) { ra[j] = t.aBase + min(t.m0 + 8u * j + t.lane, t.M - 1u) * t.aRs; }
  setup_b(t);
}

fn a_col(t: Tile, k: u32, kk: u32) -> array<f32, TM> {
  var out: array<f32, TM>;
  let ka = k * t.aCs;
  for (var j = 0u; j < TM / 8u; j++) {
    let v = A[ra[j] + ka];
    out[8u * j] = subgroupBroadcast(v, 0u);
    out[8u * j + 1u] = subgroupBroadcast(v, 1u);
    out[8u * j + 2u] = subgroupBroadcast(v, 2u);
    out[8u * j + 3u] = subgroupBroadcast(v, 3u);
    out[8u * j + 4u] = subgroupBroadcast(v, 4u);
    out[8u * j + 5u] = subgroupBroadcast(v, 5u);
    out[8u * j + 6u] = subgroupBroadcast(v, 6u);
    out[8u * j + 7u] = subgroupBroadcast(v, 7u);
  }
  return out;
}
