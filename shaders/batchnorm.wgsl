// batchnorm.wgsl: batch norm's eval-mode statistics. (Its per-channel kernels live in batchnorm_stats.wgsl,
// the running-statistics update in batchnorm_update.wgsl.)
// Bindings: 1 X (read: the running mean), 2 DY (read: the running variance), 3 OUT (read_write).
// Dispatch of bn_eval_stats: 1-D, one invocation per channel.
//   bn_eval_stats:  OUT (stats [3, C]) from running mean X and running var DY: mean, 1/sqrt(var + eps), var.
// Parameters: 1 C  9 stats column offset  10 stats row stride  15 eps (f32)  17 running-mean offset
//   18 running-mean stride  21 running-var offset  22 running-var stride
override WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> DY: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;

fn xs(i: u32) -> f32 { return X[i >> 2u][i & 3u]; }
fn dys(i: u32) -> f32 { return DY[i >> 2u][i & 3u]; }

@compute @workgroup_size(WG)
fn bn_eval_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= pu(1u)) { return; }
  let m = xs(pu(17u) + c * pu(18u));
  let v = dys(pu(21u) + c * pu(22u));
  let o = pu(9u) + c; let rs = pu(10u);
  OUT[o] = m;
  OUT[o + rs] = inverseSqrt(v + pf(15u));
  OUT[o + 2u * rs] = v;
}
