// matmul_subgroup.wgsl: placeholder until the subgroup kernel lands (needs the `subgroups` feature).
override WG: u32 = 64u;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> Bm: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(WG)
fn matmul_subgroup(@builtin(local_invocation_index) li: u32) {
  if (li > 1000000u) { C[0] = A[0] + Bm[0]; }
}
