// matmul_subgroup.wgsl: C[b] = A[b] x B[b] sharing A between lanes (needs `subgroups`). Two kernels:
// matmul_quad through quadBroadcast, for any subgroup size that is a multiple of 4 (4 in SwiftShader,
// 32 on NVIDIA), and matmul_sg8 through subgroupBroadcast, for subgroups of exactly 8 (lavapipe).
// Bindings: 1 A (read), 2 B (read), 3 C (read_write; column stride 1). Parameters as matmul.wgsl:
//   0 M  1 N  2 K  3 batch  4 off A  5 off B  6 off C  7 A batch stride  8 A row stride  9 A col stride
//   10 B batch stride  11 B row stride  12 B col stride  13 C batch stride  14 C row stride
// Dispatch: workgroup_size WG; grid (ceil(N / (8 * WG)), ceil(M / 16), batch).
// Invocation li of workgroup (x, y, z) computes rows m0 = 16y .. m0 + 15 and columns n0 = 8(x WG + li) ..
// n0 + 7 (32 vec4 accumulators). Per k, lane s = sid & 3 of each quad loads A rows m0 + 4j + s (j < 4),
// shared with quadBroadcast(v, t) for t = 0..3, and its own 8 B values. Out-of-range rows and columns
// load clamped (valid) addresses and are never stored, so the k loop has no branch; every invocation
// reaches the broadcasts (no early return). The 16 rows are written out by hand: WGSL needs a constant
// quad lane, and function-scope arrays cannot be sized by an override.
override WG: u32 = 8u;

@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> Bm: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

@compute @workgroup_size(WG)
fn matmul_quad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let m0 = wid.y * 16u; let n0 = (wid.x * WG + li) * 8u; let b = wid.z;
  let s = sid & 3u;
  let aBase = pu(4u) + b * pu(7u); let bBase = pu(5u) + b * pu(10u);
  let aRs = pu(8u); let aCs = pu(9u); let bRs = pu(11u); let bCs = pu(12u);
  let Mm1 = M - 1u; let Nm1 = N - 1u;
  let ra0 = aBase + min(m0 + 0u + s, Mm1) * aRs;
  let ra1 = aBase + min(m0 + 4u + s, Mm1) * aRs;
  let ra2 = aBase + min(m0 + 8u + s, Mm1) * aRs;
  let ra3 = aBase + min(m0 + 12u + s, Mm1) * aRs;
  let cb0 = bBase + min(n0 + 0u, Nm1) * bCs;
  let cb1 = bBase + min(n0 + 1u, Nm1) * bCs;
  let cb2 = bBase + min(n0 + 2u, Nm1) * bCs;
  let cb3 = bBase + min(n0 + 3u, Nm1) * bCs;
  let cb4 = bBase + min(n0 + 4u, Nm1) * bCs;
  let cb5 = bBase + min(n0 + 5u, Nm1) * bCs;
  let cb6 = bBase + min(n0 + 6u, Nm1) * bCs;
  let cb7 = bBase + min(n0 + 7u, Nm1) * bCs;
  var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0);
  var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0);
  var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0);
  var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0);
  var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0);
  var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0);
  var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0);
  var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0);
  var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0);
  var acc9_0 = vec4<f32>(0.0); var acc9_1 = vec4<f32>(0.0);
  var acc10_0 = vec4<f32>(0.0); var acc10_1 = vec4<f32>(0.0);
  var acc11_0 = vec4<f32>(0.0); var acc11_1 = vec4<f32>(0.0);
  var acc12_0 = vec4<f32>(0.0); var acc12_1 = vec4<f32>(0.0);
  var acc13_0 = vec4<f32>(0.0); var acc13_1 = vec4<f32>(0.0);
  var acc14_0 = vec4<f32>(0.0); var acc14_1 = vec4<f32>(0.0);
  var acc15_0 = vec4<f32>(0.0); var acc15_1 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let ka = k * aCs; let kb = k * bRs;
    let a0 = A[ra0 + ka];
    let a1 = A[ra1 + ka];
    let a2 = A[ra2 + ka];
    let a3 = A[ra3 + ka];
    let b0 = vec4<f32>(Bm[cb0 + kb], Bm[cb1 + kb], Bm[cb2 + kb], Bm[cb3 + kb]);
    let b1 = vec4<f32>(Bm[cb4 + kb], Bm[cb5 + kb], Bm[cb6 + kb], Bm[cb7 + kb]);
    { let x = vec4<f32>(quadBroadcast(a0, 0u)); acc0_0 = fma(x, b0, acc0_0); acc0_1 = fma(x, b1, acc0_1); }
    { let x = vec4<f32>(quadBroadcast(a0, 1u)); acc1_0 = fma(x, b0, acc1_0); acc1_1 = fma(x, b1, acc1_1); }
    { let x = vec4<f32>(quadBroadcast(a0, 2u)); acc2_0 = fma(x, b0, acc2_0); acc2_1 = fma(x, b1, acc2_1); }
    { let x = vec4<f32>(quadBroadcast(a0, 3u)); acc3_0 = fma(x, b0, acc3_0); acc3_1 = fma(x, b1, acc3_1); }
    { let x = vec4<f32>(quadBroadcast(a1, 0u)); acc4_0 = fma(x, b0, acc4_0); acc4_1 = fma(x, b1, acc4_1); }
    { let x = vec4<f32>(quadBroadcast(a1, 1u)); acc5_0 = fma(x, b0, acc5_0); acc5_1 = fma(x, b1, acc5_1); }
    { let x = vec4<f32>(quadBroadcast(a1, 2u)); acc6_0 = fma(x, b0, acc6_0); acc6_1 = fma(x, b1, acc6_1); }
    { let x = vec4<f32>(quadBroadcast(a1, 3u)); acc7_0 = fma(x, b0, acc7_0); acc7_1 = fma(x, b1, acc7_1); }
    { let x = vec4<f32>(quadBroadcast(a2, 0u)); acc8_0 = fma(x, b0, acc8_0); acc8_1 = fma(x, b1, acc8_1); }
    { let x = vec4<f32>(quadBroadcast(a2, 1u)); acc9_0 = fma(x, b0, acc9_0); acc9_1 = fma(x, b1, acc9_1); }
    { let x = vec4<f32>(quadBroadcast(a2, 2u)); acc10_0 = fma(x, b0, acc10_0); acc10_1 = fma(x, b1, acc10_1); }
    { let x = vec4<f32>(quadBroadcast(a2, 3u)); acc11_0 = fma(x, b0, acc11_0); acc11_1 = fma(x, b1, acc11_1); }
    { let x = vec4<f32>(quadBroadcast(a3, 0u)); acc12_0 = fma(x, b0, acc12_0); acc12_1 = fma(x, b1, acc12_1); }
    { let x = vec4<f32>(quadBroadcast(a3, 1u)); acc13_0 = fma(x, b0, acc13_0); acc13_1 = fma(x, b1, acc13_1); }
    { let x = vec4<f32>(quadBroadcast(a3, 2u)); acc14_0 = fma(x, b0, acc14_0); acc14_1 = fma(x, b1, acc14_1); }
    { let x = vec4<f32>(quadBroadcast(a3, 3u)); acc15_0 = fma(x, b0, acc15_0); acc15_1 = fma(x, b1, acc15_1); }
  }
  let cBase = pu(6u) + b * pu(13u); let cRs = pu(14u);
  store_row(cBase, cRs, m0 + 0u, n0, M, N, acc0_0, acc0_1);
  store_row(cBase, cRs, m0 + 1u, n0, M, N, acc1_0, acc1_1);
  store_row(cBase, cRs, m0 + 2u, n0, M, N, acc2_0, acc2_1);
  store_row(cBase, cRs, m0 + 3u, n0, M, N, acc3_0, acc3_1);
  store_row(cBase, cRs, m0 + 4u, n0, M, N, acc4_0, acc4_1);
  store_row(cBase, cRs, m0 + 5u, n0, M, N, acc5_0, acc5_1);
  store_row(cBase, cRs, m0 + 6u, n0, M, N, acc6_0, acc6_1);
  store_row(cBase, cRs, m0 + 7u, n0, M, N, acc7_0, acc7_1);
  store_row(cBase, cRs, m0 + 8u, n0, M, N, acc8_0, acc8_1);
  store_row(cBase, cRs, m0 + 9u, n0, M, N, acc9_0, acc9_1);
  store_row(cBase, cRs, m0 + 10u, n0, M, N, acc10_0, acc10_1);
  store_row(cBase, cRs, m0 + 11u, n0, M, N, acc11_0, acc11_1);
  store_row(cBase, cRs, m0 + 12u, n0, M, N, acc12_0, acc12_1);
  store_row(cBase, cRs, m0 + 13u, n0, M, N, acc13_0, acc13_1);
  store_row(cBase, cRs, m0 + 14u, n0, M, N, acc14_0, acc14_1);
  store_row(cBase, cRs, m0 + 15u, n0, M, N, acc15_0, acc15_1);
}

fn store_row(cBase: u32, cRs: u32, m: u32, n0: u32, M: u32, N: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (m >= M) { return; }
  let row = cBase + m * cRs;
  for (var c = 0u; c < 4u; c++) {
    if (n0 + c < N) { C[row + n0 + c] = lo[c]; }
    if (n0 + 4u + c < N) { C[row + n0 + 4u + c] = hi[c]; }
  }
}

// matmul_sg8: for adapters whose subgroups are exactly 8 lanes (lavapipe). One subgroup computes a
// 32 x 32 tile of C: lane s holds columns n0 + 4s .. n0 + 4s + 3 (one vec4) for all 32 rows (32 vec4
// accumulators). Per k, lane s loads A rows m0 + s + 8j (j < 4) and its own B vec4; the A values reach
// the other lanes through subgroupBroadcast(v, lane). Grid (ceil(N / 32), ceil(M / 32), batch), WG = 8.
@compute @workgroup_size(8)
fn matmul_sg8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) s: u32) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u);
  let m0 = wid.y * 32u; let n0 = wid.x * 32u + 4u * s; let b = wid.z;
  let aBase = pu(4u) + b * pu(7u); let bBase = pu(5u) + b * pu(10u);
  let aRs = pu(8u); let aCs = pu(9u); let bRs = pu(11u); let bCs = pu(12u);
  let Mm1 = M - 1u; let Nm1 = N - 1u;
  let ra0 = aBase + min(m0 + s + 0u, Mm1) * aRs;
  let ra1 = aBase + min(m0 + s + 8u, Mm1) * aRs;
  let ra2 = aBase + min(m0 + s + 16u, Mm1) * aRs;
  let ra3 = aBase + min(m0 + s + 24u, Mm1) * aRs;
  let cb0 = bBase + min(n0 + 0u, Nm1) * bCs;
  let cb1 = bBase + min(n0 + 1u, Nm1) * bCs;
  let cb2 = bBase + min(n0 + 2u, Nm1) * bCs;
  let cb3 = bBase + min(n0 + 3u, Nm1) * bCs;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  var acc8 = vec4<f32>(0.0);
  var acc9 = vec4<f32>(0.0);
  var acc10 = vec4<f32>(0.0);
  var acc11 = vec4<f32>(0.0);
  var acc12 = vec4<f32>(0.0);
  var acc13 = vec4<f32>(0.0);
  var acc14 = vec4<f32>(0.0);
  var acc15 = vec4<f32>(0.0);
  var acc16 = vec4<f32>(0.0);
  var acc17 = vec4<f32>(0.0);
  var acc18 = vec4<f32>(0.0);
  var acc19 = vec4<f32>(0.0);
  var acc20 = vec4<f32>(0.0);
  var acc21 = vec4<f32>(0.0);
  var acc22 = vec4<f32>(0.0);
  var acc23 = vec4<f32>(0.0);
  var acc24 = vec4<f32>(0.0);
  var acc25 = vec4<f32>(0.0);
  var acc26 = vec4<f32>(0.0);
  var acc27 = vec4<f32>(0.0);
  var acc28 = vec4<f32>(0.0);
  var acc29 = vec4<f32>(0.0);
  var acc30 = vec4<f32>(0.0);
  var acc31 = vec4<f32>(0.0);
  for (var k = 0u; k < K; k++) {
    let ka = k * aCs; let kb = k * bRs;
    let a0 = A[ra0 + ka];
    let a1 = A[ra1 + ka];
    let a2 = A[ra2 + ka];
    let a3 = A[ra3 + ka];
    let bv = vec4<f32>(Bm[cb0 + kb], Bm[cb1 + kb], Bm[cb2 + kb], Bm[cb3 + kb]);
    acc0 = fma(vec4<f32>(subgroupBroadcast(a0, 0u)), bv, acc0);
    acc1 = fma(vec4<f32>(subgroupBroadcast(a0, 1u)), bv, acc1);
    acc2 = fma(vec4<f32>(subgroupBroadcast(a0, 2u)), bv, acc2);
    acc3 = fma(vec4<f32>(subgroupBroadcast(a0, 3u)), bv, acc3);
    acc4 = fma(vec4<f32>(subgroupBroadcast(a0, 4u)), bv, acc4);
    acc5 = fma(vec4<f32>(subgroupBroadcast(a0, 5u)), bv, acc5);
    acc6 = fma(vec4<f32>(subgroupBroadcast(a0, 6u)), bv, acc6);
    acc7 = fma(vec4<f32>(subgroupBroadcast(a0, 7u)), bv, acc7);
    acc8 = fma(vec4<f32>(subgroupBroadcast(a1, 0u)), bv, acc8);
    acc9 = fma(vec4<f32>(subgroupBroadcast(a1, 1u)), bv, acc9);
    acc10 = fma(vec4<f32>(subgroupBroadcast(a1, 2u)), bv, acc10);
    acc11 = fma(vec4<f32>(subgroupBroadcast(a1, 3u)), bv, acc11);
    acc12 = fma(vec4<f32>(subgroupBroadcast(a1, 4u)), bv, acc12);
    acc13 = fma(vec4<f32>(subgroupBroadcast(a1, 5u)), bv, acc13);
    acc14 = fma(vec4<f32>(subgroupBroadcast(a1, 6u)), bv, acc14);
    acc15 = fma(vec4<f32>(subgroupBroadcast(a1, 7u)), bv, acc15);
    acc16 = fma(vec4<f32>(subgroupBroadcast(a2, 0u)), bv, acc16);
    acc17 = fma(vec4<f32>(subgroupBroadcast(a2, 1u)), bv, acc17);
    acc18 = fma(vec4<f32>(subgroupBroadcast(a2, 2u)), bv, acc18);
    acc19 = fma(vec4<f32>(subgroupBroadcast(a2, 3u)), bv, acc19);
    acc20 = fma(vec4<f32>(subgroupBroadcast(a2, 4u)), bv, acc20);
    acc21 = fma(vec4<f32>(subgroupBroadcast(a2, 5u)), bv, acc21);
    acc22 = fma(vec4<f32>(subgroupBroadcast(a2, 6u)), bv, acc22);
    acc23 = fma(vec4<f32>(subgroupBroadcast(a2, 7u)), bv, acc23);
    acc24 = fma(vec4<f32>(subgroupBroadcast(a3, 0u)), bv, acc24);
    acc25 = fma(vec4<f32>(subgroupBroadcast(a3, 1u)), bv, acc25);
    acc26 = fma(vec4<f32>(subgroupBroadcast(a3, 2u)), bv, acc26);
    acc27 = fma(vec4<f32>(subgroupBroadcast(a3, 3u)), bv, acc27);
    acc28 = fma(vec4<f32>(subgroupBroadcast(a3, 4u)), bv, acc28);
    acc29 = fma(vec4<f32>(subgroupBroadcast(a3, 5u)), bv, acc29);
    acc30 = fma(vec4<f32>(subgroupBroadcast(a3, 6u)), bv, acc30);
    acc31 = fma(vec4<f32>(subgroupBroadcast(a3, 7u)), bv, acc31);
  }
  let cBase = pu(6u) + b * pu(13u); let cRs = pu(14u);
  store4(cBase, cRs, m0 + 0u, n0, M, N, acc0);
  store4(cBase, cRs, m0 + 1u, n0, M, N, acc1);
  store4(cBase, cRs, m0 + 2u, n0, M, N, acc2);
  store4(cBase, cRs, m0 + 3u, n0, M, N, acc3);
  store4(cBase, cRs, m0 + 4u, n0, M, N, acc4);
  store4(cBase, cRs, m0 + 5u, n0, M, N, acc5);
  store4(cBase, cRs, m0 + 6u, n0, M, N, acc6);
  store4(cBase, cRs, m0 + 7u, n0, M, N, acc7);
  store4(cBase, cRs, m0 + 8u, n0, M, N, acc8);
  store4(cBase, cRs, m0 + 9u, n0, M, N, acc9);
  store4(cBase, cRs, m0 + 10u, n0, M, N, acc10);
  store4(cBase, cRs, m0 + 11u, n0, M, N, acc11);
  store4(cBase, cRs, m0 + 12u, n0, M, N, acc12);
  store4(cBase, cRs, m0 + 13u, n0, M, N, acc13);
  store4(cBase, cRs, m0 + 14u, n0, M, N, acc14);
  store4(cBase, cRs, m0 + 15u, n0, M, N, acc15);
  store4(cBase, cRs, m0 + 16u, n0, M, N, acc16);
  store4(cBase, cRs, m0 + 17u, n0, M, N, acc17);
  store4(cBase, cRs, m0 + 18u, n0, M, N, acc18);
  store4(cBase, cRs, m0 + 19u, n0, M, N, acc19);
  store4(cBase, cRs, m0 + 20u, n0, M, N, acc20);
  store4(cBase, cRs, m0 + 21u, n0, M, N, acc21);
  store4(cBase, cRs, m0 + 22u, n0, M, N, acc22);
  store4(cBase, cRs, m0 + 23u, n0, M, N, acc23);
  store4(cBase, cRs, m0 + 24u, n0, M, N, acc24);
  store4(cBase, cRs, m0 + 25u, n0, M, N, acc25);
  store4(cBase, cRs, m0 + 26u, n0, M, N, acc26);
  store4(cBase, cRs, m0 + 27u, n0, M, N, acc27);
  store4(cBase, cRs, m0 + 28u, n0, M, N, acc28);
  store4(cBase, cRs, m0 + 29u, n0, M, N, acc29);
  store4(cBase, cRs, m0 + 30u, n0, M, N, acc30);
  store4(cBase, cRs, m0 + 31u, n0, M, N, acc31);
}

fn store4(cBase: u32, cRs: u32, m: u32, n0: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let row = cBase + m * cRs;
  for (var c = 0u; c < 4u; c++) { if (n0 + c < N) { C[row + n0 + c] = v[c]; } }
}
