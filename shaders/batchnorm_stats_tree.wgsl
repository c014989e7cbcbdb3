// batchnorm_stats_tree.wgsl: wg_sum for batchnorm_stats.wgsl without subgroups.
// Sum of v over the workgroup, returned to invocation 0.
fn wg_sum(v: vec2<f32>, li: u32) -> vec2<f32> {
  part[li] = v;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) { part[li] += part[li + s]; }
  }
  return part[0];
}
