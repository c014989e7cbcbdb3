// binary.wgsl: out = f(x, y, z, s) with broadcasting, f chosen by the override OP: binary_fn, generated
// from engine/ops/elementwise_table.ts and appended to this file when it is loaded. Binary ops read x and
// y (z is bound but unused); derivatives read x, y and the incoming gradient z.
// Bindings: 1 x (read), 2 y (read), 3 z (read), 4 out (read_write).
// Dispatch: 1-D over the n outputs, WG invocations per workgroup, grid split over x/y (flat_wg).
//   binary_flat:    x, y, z contiguous or scalars (step 1 or 0), out contiguous; 4 outputs per invocation.
//   binary_strided: any strides (parameter layout in common.wgsl); one output per invocation.
override WG: u32 = 256u;
override OP: u32 = 0u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Y: array<f32>;
@group(0) @binding(3) var<storage, read> Z: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;

@compute @workgroup_size(WG)
fn binary_flat(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let ox = pu(2u); let oy = pu(3u); let sx = pu(5u); let sy = pu(6u); let oo = pu(7u);
  let oz = pu(38u); let sz = pu(39u); let s = pf(4u);
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (i < n) { OUT[oo + i] = binary_fn(OP, X[ox + i * sx], Y[oy + i * sy], Z[oz + i * sz], s); }
  }
}

@compute @workgroup_size(WG)
fn binary_strided(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  let a = X[pu(2u) + strided_offset(i, 14u)];
  let b = Y[pu(3u) + strided_offset(i, 20u)];
  let c = Z[pu(38u) + strided_offset(i, 32u)];
  OUT[pu(7u) + strided_offset(i, 26u)] = binary_fn(OP, a, b, c, pf(4u));
}
