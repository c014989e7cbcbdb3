// conv2d_lanes_sg8.wgsl: for conv2d.wgsl's GEMMs: lane s = subgroup lane % 8 loads rows s, s+8, s+16,
// s+24 of the tile and subgroupBroadcast hands them to the others (needs subgroups of at least 8 lanes).
struct Lane {
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) sid: u32,
}

/** The addresses of this lane's rows s, s+8, s+16, s+24. */
alias RowAddr = vec4u;

fn row_addr(lane: Lane, row0: u32, last: u32, stride: u32, off: u32) -> RowAddr {
  return off + min(vec4u(row0 + lane.sid % 8u) + vec4u(0u, 8u, 16u, 24u), vec4u(last)) * stride;
}

fn share(r: vec4f) -> array<vec4f, 8> {
  return array<vec4f, 8>(subgroupBroadcast(r, 0u), subgroupBroadcast(r, 1u), subgroupBroadcast(r, 2u),
    subgroupBroadcast(r, 3u), subgroupBroadcast(r, 4u), subgroupBroadcast(r, 5u), subgroupBroadcast(r, 6u),
    subgroupBroadcast(r, 7u));
}

fn rows_w(a: RowAddr, k: u32) -> array<vec4f, 8> { return share(load_w4(a + vec4u(k))); }
fn rows_g(a: RowAddr, k: u32) -> array<vec4f, 8> { return share(load_g4(a + vec4u(k))); }
