// sgd.wgsl: one in-place SGD step (PyTorch's torch.optim.SGD rule) over a range of packed parameters.
// The optimiser packs a parameter group's parameters, gradients and momentum buffers at the same element
// offsets of three flat buffers, so one dispatch updates every parameter of the range.
// Bindings: 1 G (read: packed gradients), 2 PRM (read_write: packed parameters), 3 BUF (read_write:
//   packed momentum buffers; any other buffer when there is no momentum), 4 SKIP (read: the skip flag,
//   a zero word when there is none), 5 STEPS (read_write: skipped-step counts, see below; any other
//   buffer when not counted on the GPU).
// Dispatch: 1-D (grid1d), 4 consecutive elements per invocation, over elements [start, start + n).
//   SKIP[word] != 0 (GradScaler found an inf or NaN gradient): nothing is written, so parameters and
//     momentum stay as they were; with flag bit 4 the first invocation adds 1 to STEPS[slot].
//   d = g + wd * p
//   with momentum: buf = d on the first step, else momentum * buf + (1 - dampening) * d;
//                  d = d + momentum * buf (nesterov) or d = buf
//   p -= lr * d
//   The first step is flag bit 1, or with flag bit 3 (step counted on the GPU) the step number
//   (word 9) minus the skipped steps STEPS[slot] is 1.
// Parameters: 0 n  1 start  2 lr  3 momentum  4 1 - dampening (computed in float64)  5 weight decay (f32)
//   6 flags: bit 0 momentum, bit 1 first step, bit 2 nesterov, bit 3 step counted on the GPU,
//            bit 4 count a skipped step in STEPS[slot]
//   7 the word of SKIP holding the flag  8 slot  9 the step number after this step, skips included (u32)
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> PRM: array<f32>;
@group(0) @binding(3) var<storage, read_write> BUF: array<f32>;
@group(0) @binding(4) var<storage, read> SKIP: array<f32>;
@group(0) @binding(5) var<storage, read_write> STEPS: array<f32>;

@compute @workgroup_size(WG)
fn sgd_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let flags = pu(6u);
  if (SKIP[pu(7u)] != 0.0) {
    if ((flags & 16u) != 0u && base == 0u) { STEPS[pu(8u)] += 1.0; }
    return;
  }
  var first = (flags & 2u) != 0u;
  if ((flags & 8u) != 0u) { first = f32(pu(9u)) - STEPS[pu(8u)] == 1.0; }
  let n = pu(0u);
  let lr = pf(2u); let mom = pf(3u); let damp1 = pf(4u); let wd = pf(5u);
  for (var k = 0u; k < 4u; k++) {
    if (base + k >= n) { return; }
    let i = pu(1u) + base + k;
    let p = PRM[i];
    var d = G[i] + wd * p;
    if ((flags & 1u) != 0u) {
      var b = d;
      if (!first) { b = mom * BUF[i] + damp1 * d; }
      BUF[i] = b;
      d = select(b, d + mom * b, (flags & 4u) != 0u);
    }
    PRM[i] = p - lr * d;
  }
}
