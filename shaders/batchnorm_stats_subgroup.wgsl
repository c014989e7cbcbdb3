// batchnorm_stats_subgroup.wgsl: wg_sum for batchnorm_stats.wgsl through subgroupAdd (needs the
// `subgroups` feature; any subgroup size).
// Each subgroup's first active lane (subgroupElect) parks the subgroup's sum at its own index (other
// slots hold 0), so invocation 0 adds the slots in a fixed order.
fn wg_sum(v: vec2<f32>, li: u32) -> vec2<f32> {
  let t = subgroupAdd(v);
  part[li] = select(vec2<f32>(), t, subgroupElect());
  workgroupBarrier();
  var acc = vec2<f32>();
  if (li == 0u) { for (var i = 0u; i < WG; i++) { acc += part[i]; } }
  return acc;
}
