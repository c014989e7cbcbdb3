// resize.wgsl: bilinear resize of NCHW images, as torch.nn.functional.interpolate(mode='bilinear',
// align_corners=False, antialias=False), which torchvision's Resize uses on tensors without antialias.
// Bindings: 1 x (read, contiguous [P, H, W] planes), 2 out (read_write, contiguous [P, OH, OW]).
// Dispatch: 1-D over P * OH * OW outputs, one per invocation (flat_wg).
// Source coordinate: s = (d + 0.5) * in / out - 0.5, clamped below at 0; neighbours floor(s) and
// min(floor(s) + 1, in - 1), weights by the fractional part.
// Parameters: 0 n outputs  1 H  2 W  3 OH  4 OW  5 scale h (f32, H / OH)  6 scale w (f32, W / OW)  7 offset x
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;

@compute @workgroup_size(WG)
fn resize_bilinear(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  let H = pu(1u); let W = pu(2u); let OH = pu(3u); let OW = pu(4u);
  let ox = i % OW;
  let oy = (i / OW) % OH;
  let plane = i / (OW * OH);
  let sy = max((f32(oy) + 0.5) * pf(5u) - 0.5, 0.0);
  let sx = max((f32(ox) + 0.5) * pf(6u) - 0.5, 0.0);
  let y0 = min(u32(sy), H - 1u);
  let x0 = min(u32(sx), W - 1u);
  let y1 = min(y0 + 1u, H - 1u);
  let x1 = min(x0 + 1u, W - 1u);
  let ly = sy - f32(y0);
  let lx = sx - f32(x0);
  let base = pu(7u) + plane * H * W;
  let top = (1.0 - lx) * X[base + y0 * W + x0] + lx * X[base + y0 * W + x1];
  let bot = (1.0 - lx) * X[base + y1 * W + x0] + lx * X[base + y1 * W + x1];
  OUT[i] = (1.0 - ly) * top + ly * bot;
}
