// augment.wgsl: per-sample crop (with zero padding) and horizontal flip of an NCHW batch, in one pass.
// Bindings: 1 X (read: [B, C, H, W], contiguous from X offset), 2 S (read: [B, 3] per sample: top, left
//   (in padded coordinates, so 0..2*pad), flip 0/1, as f32), 3 OUT (read_write: [B, C, OH, OW]).
// Dispatch: 1-D (grid1d), one output element per invocation:
//   xx = flip ? OW - 1 - x : x;  sy = y + top - pad;  sx = xx + left - pad
//   out = X[b, c, sy, sx] inside the image, else 0 (the padding).
// Parameters: 0 n (output elements)  1 C  2 H  3 W  4 OH  5 OW  6 pad  7 X offset
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> S: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;

@compute @workgroup_size(WG)
fn crop_flip(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  let C = pu(1u); let H = pu(2u); let W = pu(3u); let OH = pu(4u); let OW = pu(5u);
  let x = i % OW;
  let y = (i / OW) % OH;
  let c = (i / (OW * OH)) % C;
  let b = i / (OW * OH * C);
  let top = i32(S[b * 3u]); let left = i32(S[b * 3u + 1u]); let flip = S[b * 3u + 2u] != 0.0;
  let xx = select(x, OW - 1u - x, flip);
  let sy = i32(y) + top - i32(pu(6u));
  let sx = i32(xx) + left - i32(pu(6u));
  var v = 0.0;
  if (sy >= 0 && sy < i32(H) && sx >= 0 && sx < i32(W)) {
    v = X[pu(7u) + ((b * C + c) * H + u32(sy)) * W + u32(sx)];
  }
  OUT[i] = v;
}
