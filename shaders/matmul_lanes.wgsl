// matmul_lanes.wgsl: for the register-tile matmul variants (see matmul.wgsl): no workgroup memory;
// each lane loads its own TN columns of B's row k (addresses of the clamped columns kept in registers).
// Composed with one of matmul_lanes_own / _quad / _sg8.wgsl, which bring A's rows to the lanes.
var<private> cb: array<u32, TN>;

fn setup_b(t: Tile) {
  for (var j = 0u; j < TN; j++) { cb[j] = t.bBase + min(t.n0 + j, t.N - 1u) * t.bCs; }
}

fn b_row(t: Tile, k: u32, kk: u32) -> array<vec4<f32>, TN / 4u> {
  var out: array<vec4<f32>, TN / 4u>;
  let kb = k * t.bRs;
  for (var j = 0u; j < TN / 4u; j++) {
    out[j] = vec4<f32>(Bm[cb[4u * j] + kb], Bm[cb[4u * j + 1u] + kb], Bm[cb[4u * j + 2u] + kb], Bm[cb[4u * j + 3u] + kb]);
  }
  return out;
}

fn stage_chunk(t: Tile, k0: u32, K: u32) {}
fn end_chunk() {}
