// unary.wgsl: out = f(x, s), and in-place updates out = g(out, f(x, s)). f is unary_fn and g binary_fn,
// both generated from engine/ops/elementwise_table.ts and appended to this file when it is loaded.
// Bindings: 1 x (read), 2 out (read_write); each float32 or float16 (X_T, OUT_T: engine/storage.ts).
// Dispatch: 1-D over the n elements, WG invocations per workgroup, grid split over x/y (flat_wg).
//   unary_flat:    x and out contiguous; 4 elements per invocation.
//   unary_strided: any strides for x and out (parameter layout in common.wgsl); one element each.
//   update_strided: out[i] = binary_fn(OP2, out[i], unary_fn(OP, x[i], s)); accumulates into views
//                   (gradient slices) and assigns into them (cat). out must not overlap x.
override WG: u32 = 256u;
override OP: u32 = 0u;
override OP2: u32 = 0u;

@group(0) @binding(1) var<storage, read> X: array<X_T>;
@group(0) @binding(2) var<storage, read_write> OUT: array<OUT_T>;

@compute @workgroup_size(WG)
fn unary_flat(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let ox = pu(2u); let s = pf(4u); let oo = pu(7u);
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (i < n) { OUT[oo + i] = OUT_st(unary_fn(OP, f32(X[ox + i]), s)); }
  }
}

@compute @workgroup_size(WG)
fn unary_strided(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  OUT[pu(7u) + strided_offset(i, 26u)] = OUT_st(unary_fn(OP, f32(X[pu(2u) + strided_offset(i, 14u)]), pf(4u)));
}

@compute @workgroup_size(WG)
fn update_strided(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  let o = pu(7u) + strided_offset(i, 26u);
  let s = pf(4u);
  OUT[o] = OUT_st(binary_fn(OP2, f32(OUT[o]), unary_fn(OP, f32(X[pu(2u) + strided_offset(i, 14u)]), s), 0.0, s));
}
