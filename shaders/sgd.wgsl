// sgd.wgsl: one in-place SGD step (PyTorch's torch.optim.SGD rule) over a range of packed parameters.
// The optimiser packs a parameter group's parameters, gradients and momentum buffers at the same element
// offsets of three flat buffers, so one dispatch updates every parameter of the range.
// Bindings: 1 G (read: packed gradients), 2 PRM (read_write: packed parameters), 3 BUF (read_write:
//   packed momentum buffers; any other buffer when there is no momentum).
// Dispatch: 1-D (grid1d), 4 consecutive elements per invocation, over elements [start, start + n).
//   d = g + wd * p
//   with momentum: buf = d on the first step, else momentum * buf + (1 - dampening) * d;
//                  d = d + momentum * buf (nesterov) or d = buf
//   p -= lr * d
// Parameters: 0 n  1 start  2 lr  3 momentum  4 1 - dampening (computed in float64)  5 weight decay (f32)
//   6 flags: bit 0 momentum, bit 1 first step, bit 2 nesterov
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> PRM: array<f32>;
@group(0) @binding(3) var<storage, read_write> BUF: array<f32>;

@compute @workgroup_size(WG)
fn sgd_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let lr = pf(2u); let mom = pf(3u); let damp1 = pf(4u); let wd = pf(5u); let flags = pu(6u);
  for (var k = 0u; k < 4u; k++) {
    if (base + k >= n) { return; }
    let i = pu(1u) + base + k;
    let p = PRM[i];
    var d = G[i] + wd * p;
    if ((flags & 1u) != 0u) {
      var b = d;
      if ((flags & 2u) == 0u) { b = mom * BUF[i] + damp1 * d; }
      BUF[i] = b;
      d = select(b, d + mom * b, (flags & 4u) != 0u);
    }
    PRM[i] = p - lr * d;
  }
}
