// conv2d_lanes_quad.wgsl: for conv2d.wgsl's GEMMs: lane s = subgroup lane % 4 loads rows s + 8j and
// s + 4 + 8j (j = 0..3) of the tile and quadBroadcast hands them to the other three (needs subgroups
// of a multiple of 4 lanes).
struct Lane {
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) sid: u32,
}

/** The addresses of this lane's rows s + 8j (a) and s + 4 + 8j (b). */
struct RowAddr { a: vec4u, b: vec4u }

fn row_addr(lane: Lane, row0: u32, last: u32, stride: u32, off: u32) -> RowAddr {
  let rows = vec4u(row0 + lane.sid % 4u) + vec4u(0u, 8u, 16u, 24u);
  return RowAddr(off + min(rows, vec4u(last)) * stride, off + min(rows + vec4u(4u), vec4u(last)) * stride);
}

fn share(ra: vec4f, rb: vec4f) -> array<vec4f, 8> {
  return array<vec4f, 8>(quadBroadcast(ra, 0u), quadBroadcast(ra, 1u), quadBroadcast(ra, 2u), quadBroadcast(ra, 3u),
    quadBroadcast(rb, 0u), quadBroadcast(rb, 1u), quadBroadcast(rb, 2u), quadBroadcast(rb, 3u));
}

fn rows_w(a: RowAddr, k: u32) -> array<vec4f, 8> { return share(load_w4(a.a + vec4u(k)), load_w4(a.b + vec4u(k))); }
fn rows_g(a: RowAddr, k: u32) -> array<vec4f, 8> { return share(load_g4(a.a + vec4u(k)), load_g4(a.b + vec4u(k))); }
