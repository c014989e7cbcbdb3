// conv2d_lanes_own.wgsl: for conv2d.wgsl's GEMMs: every lane loads all 32 rows of its tile itself
// (no subgroups).
struct Lane {
  @builtin(local_invocation_index) li: u32,
}

/** The addresses of rows row0 + t + 8j (t = 0..7, j = 0..3). */
alias RowAddr = array<vec4u, 8>;

fn row_addr(lane: Lane, row0: u32, last: u32, stride: u32, off: u32) -> RowAddr {
  var a: RowAddr;
  for (var t = 0u; t < 8u; t++) { a[t] = off + min(vec4u(row0 + t) + vec4u(0u, 8u, 16u, 24u), vec4u(last)) * stride; }
  return a;
}

fn rows_w(a: RowAddr, k: u32) -> array<vec4f, 8> {
  let kv = vec4u(k);
  return array<vec4f, 8>(load_w4(a[0] + kv), load_w4(a[1] + kv), load_w4(a[2] + kv), load_w4(a[3] + kv),
    load_w4(a[4] + kv), load_w4(a[5] + kv), load_w4(a[6] + kv), load_w4(a[7] + kv));
}

fn rows_g(a: RowAddr, k: u32) -> array<vec4f, 8> {
  let kv = vec4u(k);
  return array<vec4f, 8>(load_g4(a[0] + kv), load_g4(a[1] + kv), load_g4(a[2] + kv), load_g4(a[3] + kv),
    load_g4(a[4] + kv), load_g4(a[5] + kv), load_g4(a[6] + kv), load_g4(a[7] + kv));
}
