// binary.wgsl: out = f(x, y, z, s) with broadcasting, f chosen by the override OP: binary_fn, generated
// from engine/ops/elementwise_table.ts and appended to this file when it is loaded. Binary ops read x and
// y (z is bound but unused); derivatives read x, y and the incoming gradient z.
// Bindings: 1 x (read), 2 y (read), 3 z (read), 4 out (read_write); each float32 or float16 (X_T ..
// OUT_T: engine/storage.ts).
// Dispatch: 1-D over the n outputs, WG invocations per workgroup, grid split over x/y (flat_wg).
//   binary_flat:    x, y, z contiguous or scalars (step 1 or 0), out contiguous; 4 outputs per invocation.
//   binary_strided: any strides (parameter layout in common.wgsl); one output per invocation.
override WG: u32 = 256u;
override OP: u32 = 0u;

@group(0) @binding(1) var<storage, read> X: array<X_T>;
@group(0) @binding(2) var<storage, read> Y: array<Y_T>;
@group(0) @binding(3) var<storage, read> Z: array<Z_T>;
@group(0) @binding(4) var<storage, read_write> OUT: array<OUT_T>;

@compute @workgroup_size(WG)
fn binary_flat(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let ox = pu(2u); let oy = pu(3u); let sx = pu(5u); let sy = pu(6u); let oo = pu(7u);
  let oz = pu(38u); let sz = pu(39u); let s = pf(4u);
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (i < n) { OUT[oo + i] = OUT_st(binary_fn(OP, f32(X[ox + i * sx]), f32(Y[oy + i * sy]), f32(Z[oz + i * sz]), s)); }
  }
}

@compute @workgroup_size(WG)
fn binary_strided(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  let a = f32(X[pu(2u) + strided_offset(i, 14u)]);
  let b = f32(Y[pu(3u) + strided_offset(i, 20u)]);
  let c = f32(Z[pu(38u) + strided_offset(i, 32u)]);
  OUT[pu(7u) + strided_offset(i, 26u)] = OUT_st(binary_fn(OP, a, b, c, pf(4u)));
}
