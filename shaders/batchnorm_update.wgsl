// batchnorm_update.wgsl: batch norm's per-channel bookkeeping: the fused BN-ReLU prologue's scale and
// shift, the running statistics and the batch counter; bn_stats_update first computes the batch
// statistics of the channels that do not have them yet (a dense layer's new ones), so that a layer's
// statistics, running statistics and prologue take one dispatch. Composed with a lane-summing snippet
// (batchnorm_stats_tree.wgsl or batchnorm_stats_subgroup.wgsl) and bn_moments.wgsl (engine/ops/batchnorm.ts).
// Bindings: 1 ST (read_write, stats [3, *]: mean, 1/sqrt(var + eps), biased var), 2 GAMMA, 3 BETA (read),
//   4 AFF (read_write, [2, C]: row 0 scale, row 1 shift), 5 RM, 6 RV (read_write: running mean and
//   variance), 7 NB (read_write: num_batches_tracked, one float), 8 X (read, X_T: the new channels, for
//   bn_stats_update). Unused read_write bindings get buffers of their own (WebGPU forbids a writable
//   binding that aliases another).
// bn_update: 1-D dispatch, ceil(C / WG) workgroups; invocation c handles channel c.
// bn_stats_update: one workgroup per new channel c = c0 + workgroup_id.x (c0 = word 16; C - c0 of them):
//   its statistics from channel c - c0 of the view at words 17-21 into ST's column first (bn_moments.wgsl;
//   eps at word 22), then invocation 0 does bn_update's work for c; the channels before c0 (which have
//   their statistics) are spread over all the workgroups' invocations, one channel each in turn. (One
//   workgroup per channel, most of them there for one invocation's bookkeeping, took 1.3x the time in
//   the seed DenseNet's step on lavapipe, which pays for every workgroup of a kernel with barriers.)
// The work per channel, by the flags in word 15:
//   8 EVAL:    first the statistics from the running ones (eval mode): ST = mean RM[c], 1/sqrt(RV[c] + eps),
//              var RV[c] (eps at word 22)
//   1 AFFINE:  AFF[ao + c] = gamma[c] * invstd[c], AFF[ao + C + c] = beta[c] - mean[c] * AFF[ao + c]
//   2 RUNNING: running = (1 - m) * running + m * v for the mean (v = mean) and the variance
//              (v = biased var times the unbiased factor M/(M-1)), as PyTorch
//   4 COUNT:   NB[nb] += 1 (once)
// Parameters: 0 C  1 stats column offset  2 stats row stride  3 gamma offset  4 gamma stride
//   5 beta offset  6 beta stride  7 aff offset  8 rm offset  9 rm stride  10 rv offset  11 rv stride
//   12 nb offset  13 momentum (f32)  14 unbiased factor (f32)  15 flags
//   bn_stats_update: 16 c0  17 N  18 H*W  19 x offset  20 x stride n  21 x stride c;  22 eps (f32)
override WG: u32 = 64u;
override VEC: bool = true;

@group(0) @binding(1) var<storage, read_write> ST: array<f32>;
@group(0) @binding(2) var<storage, read> GAMMA: array<f32>;
@group(0) @binding(3) var<storage, read> BETA: array<f32>;
@group(0) @binding(4) var<storage, read_write> AFF: array<f32>;
@group(0) @binding(5) var<storage, read_write> RM: array<f32>;
@group(0) @binding(6) var<storage, read_write> RV: array<f32>;
@group(0) @binding(7) var<storage, read_write> NB: array<f32>;
@group(0) @binding(8) var<storage, read> X: array<vec4<X_T>>;

var<workgroup> part: array<vec2<f32>, WG>;

fn flag(bit: u32) -> bool { return (pu(15u) & bit) != 0u; }

fn update_channel(c: u32) {
  let C = pu(0u);
  let s = pu(1u) + c; let rs = pu(2u);
  if (flag(8u)) {
    let v = RV[pu(10u) + c * pu(11u)];
    ST[s] = RM[pu(8u) + c * pu(9u)];
    ST[s + rs] = inverseSqrt(v + pf(22u));
    ST[s + 2u * rs] = v;
  }
  let mean = ST[s];
  if (flag(1u)) {
    let scale = GAMMA[pu(3u) + c * pu(4u)] * ST[s + rs];
    AFF[pu(7u) + c] = scale;
    AFF[pu(7u) + C + c] = BETA[pu(5u) + c * pu(6u)] - mean * scale;
  }
  if (flag(2u)) {
    let m = pf(13u);
    let rm = pu(8u) + c * pu(9u);
    let rv = pu(10u) + c * pu(11u);
    RM[rm] = (1.0 - m) * RM[rm] + m * mean;
    RV[rv] = (1.0 - m) * RV[rv] + m * ST[s + 2u * rs] * pf(14u);
  }
}

@compute @workgroup_size(WG)
fn bn_update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (flag(4u) && c == 0u) { NB[pu(12u)] += 1.0; }
  if (c >= pu(0u)) { return; }
  update_channel(c);
}

@compute @workgroup_size(WG)
fn bn_stats_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) li: u32) {
  let c0 = pu(16u);
  let c = c0 + wg.x;
  let mv = channel_moments(pu(19u) + wg.x * pu(21u), pu(17u), pu(18u), pu(20u), li);
  if (li == 0u) {
    let s = pu(1u) + c; let rs = pu(2u);
    ST[s] = mv.x;
    ST[s + rs] = inverseSqrt(mv.y + pf(22u));
    ST[s + 2u * rs] = mv.y;
    if (flag(4u) && wg.x == 0u) { NB[pu(12u)] += 1.0; }
    update_channel(c);
  }
  for (var o = wg.x * WG + li; o < c0; o += nwg.x * WG) { update_channel(o); }
}
