// cross_entropy.wgsl: mean cross-entropy of logits [B, C] against class labels, and its gradient.
// Bindings: 1 L (read: logits), 2 LAB (read: labels as f32 class indices), 3 G (read: the loss's incoming
//   gradient in backward; unused in forward), 4 LSE (read_write [B + 1]: log-sum-exp per row, then the
//   loss; written by forward, read by backward), 5 OUT (read_write: the loss [1] in forward, dlogits
//   [B, C] in backward).
// ce_fwd: one workgroup; invocation li takes rows li, li + WG, ...: m = max, lse = m + log(sum exp(l - m)),
//   loss_b = lse - l[label]; a label that is not an integer in [0, C) (NaN included) makes loss_b NaN
//   (the NaN bit pattern comes from parameter 9: WGSL has no NaN literal). A tree over the workgroup sums
//   the rows; the loss goes to OUT[0] and LSE[B].
// ce_bwd: 1-D, one invocation per logit: dl = (exp(l - lse) - [j == label]) * g / B, or NaN everywhere
//   when the loss LSE[B] is NaN (a bad label must not leave a finite gradient behind).
// Parameters: 0 B  1 C  2 L offset  3 L stride b  4 L stride c  5 label offset  6 label stride
//   7 G offset  8 1/B (f32)  9 NaN bits
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> L: array<f32>;
@group(0) @binding(2) var<storage, read> LAB: array<f32>;
@group(0) @binding(3) var<storage, read> G: array<f32>;
@group(0) @binding(4) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(5) var<storage, read_write> OUT: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn ce_fwd(@builtin(local_invocation_index) li: u32) {
  let B = pu(0u); let C = pu(1u);
  let sb = pu(3u); let sc = pu(4u);
  var total = 0.0;
  for (var b = li; b < B; b += WG) {
    let base = pu(2u) + b * sb;
    var m = L[base];
    for (var j = 1u; j < C; j++) { m = max(m, L[base + j * sc]); }
    var s = 0.0;
    for (var j = 0u; j < C; j++) { s += exp(L[base + j * sc] - m); }
    let lse = m + log(s);
    LSE[b] = lse;
    let y = LAB[pu(5u) + b * pu(6u)];
    if (y >= 0.0 && y < f32(C) && floor(y) == y) {
      total += lse - L[base + u32(y) * sc];
    } else {
      total += pf(9u);
    }
  }
  part[li] = total;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (li < s) { part[li] += part[li + s]; }
  }
  if (li == 0u) {
    let loss = part[0] * pf(8u);
    OUT[0] = loss;
    LSE[B] = loss;
  }
}

@compute @workgroup_size(WG)
fn ce_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  let C = pu(1u);
  if (i >= pu(0u) * C) { return; }
  let b = i / C; let j = i - b * C;
  let l = L[pu(2u) + b * pu(3u) + j * pu(4u)];
  let y = LAB[pu(5u) + b * pu(6u)];
  let hot = select(0.0, 1.0, f32(j) == y);
  let bad = (bitcast<u32>(LSE[pu(0u)]) & 0x7fffffffu) > 0x7f800000u;
  OUT[i] = select((exp(l - LSE[b]) - hot) * G[pu(7u)] * pf(8u), pf(9u), bad);
}
