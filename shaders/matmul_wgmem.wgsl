// matmul_wgmem.wgsl: the GPU-shaped variant. The workgroup stages a BM x BK slice of A and a BK x BN
// slice of B in workgroup memory (each invocation copies every (TX TY)-th element, clamped addresses),
// waits at a barrier, and every invocation reads its rows and columns from there.
// Bindings 4 and 5 are A and B again, as vec4s: with VEC_A (A's rows contiguous, K, the offset and the
// row stride multiples of 4) A is staged four k at a time, with VEC_B (the same for B's rows and N)
// B four columns at a time. A vec4 that would start past the end starts 4 back instead: what it brings
// lands in slots that are never read.
@group(0) @binding(4) var<storage, read> A4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> B4: array<vec4<f32>>;
override VEC_A: bool = false;
override VEC_B: bool = false;

var<workgroup> As: array<f32, BK * TY * TM>; // [k][row]
var<workgroup> Bs: array<f32, BK * TX * TN>; // [k][column]

@compute @workgroup_size(TX * TY)
fn matmul_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  tile_main(wid, li, li);
}

fn setup_lanes(t: Tile) {}

fn stage_chunk(t: Tile, k0: u32, K: u32) {
  let BM = TY * TM; let BN = TX * TN; let n = TX * TY;
  if (VEC_A) {
    for (var e = t.li; e < BM * BK / 4u; e += n) {
      let r = e / (BK / 4u); let k = 4u * (e % (BK / 4u));
      let v = A4[(t.aBase + min(t.bm0 + r, t.M - 1u) * t.aRs + min(k0 + k, K - 4u)) / 4u];
      for (var q = 0u; q < 4u; q++) { As[(k + q) * BM + r] = v[q]; }
    }
  } else {
    for (var e = t.li; e < BM * BK; e += n) {
      let r = e / BK; let k = e % BK;
      As[k * BM + r] = A[t.aBase + min(t.bm0 + r, t.M - 1u) * t.aRs + min(k0 + k, K - 1u) * t.aCs];
    }
  }
  if (VEC_B) {
    for (var e = t.li; e < BK * BN / 4u; e += n) {
      let k = e / (BN / 4u); let c = 4u * (e % (BN / 4u));
      let v = B4[(t.bBase + min(k0 + k, K - 1u) * t.bRs + min(t.bn0 + c, t.N - 4u)) / 4u];
      for (var q = 0u; q < 4u; q++) { Bs[k * BN + c + q] = v[q]; }
    }
  } else {
    for (var e = t.li; e < BK * BN; e += n) {
      let k = e / BN; let c = e % BN;
      Bs[k * BN + c] = Bm[t.bBase + min(k0 + k, K - 1u) * t.bRs + min(t.bn0 + c, t.N - 1u) * t.bCs];
    }
  }
  workgroupBarrier();
}

fn end_chunk() { workgroupBarrier(); }

fn a_col(t: Tile, k: u32, kk: u32) -> array<f32, TM> {
  var out: array<f32, TM>;
  let at = kk * (TY * TM) + t.ty * TM;
  for (var i = 0u; i < TM; i++) { out[i] = As[at + i]; }
  return out;
}

fn b_row(t: Tile, k: u32, kk: u32) -> array<vec4<f32>, TN / 4u> {
  var out: array<vec4<f32>, TN / 4u>;
  let at = kk * (TX * TN) + t.tx * TN;
  for (var j = 0u; j < TN / 4u; j++) { out[j] = vec4<f32>(Bs[at + 4u * j], Bs[at + 4u * j + 1u], Bs[at + 4u * j + 2u], Bs[at + 4u * j + 3u]); }
  return out;
}
