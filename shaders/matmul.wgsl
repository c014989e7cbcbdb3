// matmul.wgsl: C[b] = A[b] x B[b] for row-major views with arbitrary strides (no subgroups needed).
// Bindings: 1 A (read), 2 B (read), 3 C (read_write; column stride 1).
// Parameters: 0 M  1 N  2 K  3 batch  4 off A  5 off B  6 off C  7 A batch stride  8 A row stride
//   9 A col stride  10 B batch stride  11 B row stride  12 B col stride  13 C batch stride  14 C row stride
//   15 column tiles (ceil(N / 4))
// Dispatch: workgroups (x, y) cover the 1-D tile index (flat_wg), z = batch.
//   matmul_naive: one C element per invocation (the reference-grade kernel).
//   matmul_tiled: a 4x4 block of C per invocation, in registers, no barriers; out-of-range rows and
//                 columns load clamped (valid) addresses and are not stored, so no branch in the k loop.
override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> Bm: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

@compute @workgroup_size(WG)
fn matmul_naive(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let id = flat_wg(wg, nwg) * WG + li;
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  if (id >= M * N) { return; }
  let b = wg.z;
  let r = id / N;
  let c = id % N;
  var a_at = pu(4u) + b * pu(7u) + r * pu(8u);
  var b_at = pu(5u) + b * pu(10u) + c * pu(12u);
  let sa = pu(9u); let sb = pu(11u);
  var acc = 0.0;
  for (var k = 0u; k < K; k++) {
    acc = fma(A[a_at], Bm[b_at], acc);
    a_at += sa;
    b_at += sb;
  }
  C[pu(6u) + b * pu(13u) + r * pu(14u) + c] = acc;
}

@compute @workgroup_size(WG)
fn matmul_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let id = flat_wg(wg, nwg) * WG + li;
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let tilesN = pu(15u);
  let r0 = (id / tilesN) * 4u;
  let c0 = (id % tilesN) * 4u;
  if (r0 >= M) { return; }
  let b = wg.z;
  let sam = pu(8u); let sak = pu(9u); let sbk = pu(11u); let sbn = pu(12u);
  let abase = pu(4u) + b * pu(7u);
  let bbase = pu(5u) + b * pu(10u);
  var ar: array<u32, 4>;
  var bc: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    ar[i] = abase + min(r0 + i, M - 1u) * sam;
    bc[i] = bbase + min(c0 + i, N - 1u) * sbn;
  }
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let ko = k * sak;
    let kb = k * sbk;
    let bv = vec4<f32>(Bm[bc[0] + kb], Bm[bc[1] + kb], Bm[bc[2] + kb], Bm[bc[3] + kb]);
    acc0 = fma(vec4<f32>(A[ar[0] + ko]), bv, acc0);
    acc1 = fma(vec4<f32>(A[ar[1] + ko]), bv, acc1);
    acc2 = fma(vec4<f32>(A[ar[2] + ko]), bv, acc2);
    acc3 = fma(vec4<f32>(A[ar[3] + ko]), bv, acc3);
  }
  let cbase = pu(6u) + b * pu(13u);
  let scm = pu(14u);
  var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r < M) {
      for (var j = 0u; j < 4u; j++) {
        if (c0 + j < N) { C[cbase + r * scm + c0 + j] = rows[i][j]; }
      }
    }
  }
}
