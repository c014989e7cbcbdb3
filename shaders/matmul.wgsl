// matmul.wgsl: C[b] = A[b] x B[b] for row-major views with arbitrary strides.
// Bindings: 1 A (read), 2 B (read), 3 C (read_write; column stride 1).
// Parameters: 0 M  1 N  2 K  3 batch  4 off A  5 off B  6 off C  7 A batch stride  8 A row stride
//   9 A col stride  10 B batch stride  11 B row stride  12 B col stride  13 C batch stride  14 C row stride
//
// matmul_naive: one C element per invocation (the reference-grade kernel); grid (x, y) covers M*N
//   (flat_wg), z = batch; workgroup size WG.
// tile_main: the body of every fast variant, composed (engine/ops/matmul.ts) with a snippet that says
//   how A and B reach the lanes and declares the entry point `matmul_tile` (matmul_lanes_*.wgsl,
//   matmul_wgmem.wgsl) and one that sets the tile constants: a workgroup of TX x TY invocations computes
//   a BM x BN block of C (BM = TY TM, BN = TX TN); invocation li = ty TX + tx holds the TM x TN
//   register tile at rows m0 = BM wid.y + TM ty, columns n0 = BN wid.x + TN tx. Grid (ceil(N / BN),
//   ceil(M / BM), batch). K is walked in chunks of BK: stage_chunk() may copy the chunk to workgroup
//   memory (with barriers), then per k a_col() gives the TM values of A's column k for the tile's rows
//   and b_row() the TN values of B's row k for its columns (as TN / 4 vec4s). Out-of-range rows and
//   columns load clamped (valid) addresses and are not stored, and every invocation runs every step
//   (no early return), so subgroup operations and barriers stay in uniform control flow.

@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> Bm: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

override WG: u32 = 64u;

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

/** Where the invocation's tile lies and how A and B are addressed (set up once by tile_main). */
struct Tile {
  m0: u32, n0: u32, M: u32, N: u32,
  aBase: u32, aRs: u32, aCs: u32,
  bBase: u32, bRs: u32, bCs: u32,
  tx: u32, ty: u32, li: u32, lane: u32,
  /** First row and column of the workgroup's block. */
  bm0: u32, bn0: u32,
}

fn tile_main(wid: vec3<u32>, li: u32, lane: u32) {
  let M = pu(0u); let N = pu(1u); let K = pu(2u); let b = wid.z;
  let tx = li % TX; let ty = li / TX;
  var t: Tile;
  t.M = M; t.N = N; t.tx = tx; t.ty = ty; t.li = li; t.lane = lane;
  t.bm0 = wid.y * (TY * TM); t.bn0 = wid.x * (TX * TN);
  t.m0 = t.bm0 + ty * TM; t.n0 = t.bn0 + tx * TN;
  t.aBase = pu(4u) + b * pu(7u); t.aRs = pu(8u); t.aCs = pu(9u);
  t.bBase = pu(5u) + b * pu(10u); t.bRs = pu(11u); t.bCs = pu(12u);
  setup_lanes(t);
  var acc: array<array<vec4<f32>, TN / 4u>, TM>;
  for (var k0 = 0u; k0 < K; k0 += BK) {
    stage_chunk(t, k0, K);
    let kn = min(BK, K - k0);
    for (var kk = 0u; kk < kn; kk++) {
      let a = a_col(t, k0 + kk, kk);
      let bv = b_row(t, k0 + kk, kk);
      for (var i = 0u; i < TM; i++) {
        let x = vec4<f32>(a[i]);
        for (var j = 0u; j < TN / 4u; j++) { acc[i][j] = fma(x, bv[j], acc[i][j]); }
      }
    }
    end_chunk();
  }
  let cBase = pu(6u) + b * pu(13u); let cRs = pu(14u);
  for (var i = 0u; i < TM; i++) {
    let m = t.m0 + i;
    if (m >= M) { break; }
    let row = cBase + m * cRs;
    for (var j = 0u; j < TN; j++) {
      if (t.n0 + j < N) { C[row + t.n0 + j] = acc[i][j / 4u][j % 4u]; }
    }
  }
}
