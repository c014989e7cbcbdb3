// sgd.wgsl: one in-place SGD step of one parameter tensor (PyTorch's torch.optim.SGD rule).
// Bindings: 1 G (read: gradient), 2 PRM (read_write: parameter), 3 BUF (read_write: momentum buffer;
//   any other buffer when there is no momentum).
// Dispatch: 1-D (grid1d), 4 consecutive elements per invocation; P, G and BUF are walked contiguously.
//   d = g + wd * p
//   with momentum: buf = d on the first step, else momentum * buf + (1 - dampening) * d;
//                  d = d + momentum * buf (nesterov) or d = buf
//   p -= lr * d
// Parameters: 0 n  1 P offset  2 G offset  3 BUF offset  4 lr  5 momentum  6 dampening  7 weight decay (f32)
//   8 flags: bit 0 momentum, bit 1 first step, bit 2 nesterov
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> PRM: array<f32>;
@group(0) @binding(3) var<storage, read_write> BUF: array<f32>;

@compute @workgroup_size(WG)
fn sgd_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let base = (flat_wg(wg, nwg) * WG + li) * 4u;
  let n = pu(0u);
  let lr = pf(4u); let mom = pf(5u); let damp = pf(6u); let wd = pf(7u); let flags = pu(8u);
  for (var k = 0u; k < 4u; k++) {
    let i = base + k;
    if (i >= n) { return; }
    let pi_ = pu(1u) + i;
    let p = PRM[pi_];
    var d = G[pu(2u) + i] + wd * p;
    if ((flags & 1u) != 0u) {
      let bi = pu(3u) + i;
      var b = d;
      if ((flags & 2u) == 0u) { b = mom * BUF[bi] + (1.0 - damp) * d; }
      BUF[bi] = b;
      d = select(b, d + mom * b, (flags & 4u) != 0u);
    }
    PRM[pi_] = p - lr * d;
  }
}
