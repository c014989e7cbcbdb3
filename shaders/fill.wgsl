// fill.wgsl: out[i] = s over a strided region (parameter layout in common.wgsl; out strides at 26).
// Bindings: 1 out (read_write; float32 or float16, OUT_T: engine/storage.ts). Dispatch: 1-D over the n elements, one per invocation.
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read_write> OUT: array<OUT_T>;

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  OUT[pu(7u) + strided_offset(i, 26u)] = OUT_st(pf(4u));
}
