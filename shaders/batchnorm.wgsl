// batchnorm.wgsl: batch norm's elementwise kernel and its eval-mode statistics. (Its reductions and
// backward live in batchnorm_stats.wgsl, the running-statistics update in batchnorm_update.wgsl.)
// Bindings: 1 X (read), 2 DY (read: the running variance of bn_eval_stats), 3 ST (read, stats [3, *]:
//   mean, invstd, var), 4 GAMMA (read), 5 AUX (read: beta), 6 OUT (read_write). Unused bindings get any
//   buffer other than OUT.
// Dispatch of bn_apply: workgroup (x, y) = (channel c, image n); the WG invocations walk the plane's HW
//   elements (vec4 at a time when VEC). OUT is a contiguous [N, C, H, W].
//   bn_apply:       OUT = (x - mean) * invstd * gamma + beta, computed as fma(x, scale, shift) with
//                   scale = invstd * gamma, shift = beta - mean * scale; with RELU, max(that, 0) (NaN
//                   stays NaN). bn_backward (batchnorm_stats.wgsl) recomputes the ReLU's mask the same way.
// Dispatch of bn_eval_stats: 1-D, one invocation per channel.
//   bn_eval_stats:  OUT (stats [3, C]) from running mean X and running var DY: mean, 1/sqrt(var + eps), var.
// Parameters: 0 N  1 C  2 HW  3 x offset  4 x stride n  5 x stride c  9 stats column offset
//   10 stats row stride  11 gamma offset  12 gamma stride  13 beta offset  14 beta stride  15 eps (f32)
//   17 running-mean offset  18 running-mean stride  21 running-var offset  22 running-var stride
override WG: u32 = 64u;
override VEC: bool = true;
override RELU: bool = false;

@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> DY: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ST: array<f32>;
@group(0) @binding(4) var<storage, read> GAMMA: array<f32>;
@group(0) @binding(5) var<storage, read> AUX: array<f32>;
@group(0) @binding(6) var<storage, read_write> OUT: array<f32>;

fn store4(o: u32, v: vec4<f32>) { OUT[o] = v.x; OUT[o + 1u] = v.y; OUT[o + 2u] = v.z; OUT[o + 3u] = v.w; }

fn xs(i: u32) -> f32 { return X[i >> 2u][i & 3u]; }
fn dys(i: u32) -> f32 { return DY[i >> 2u][i & 3u]; }

fn relu4(v: vec4<f32>) -> vec4<f32> {
  if (!RELU) { return v; }
  return select(v, vec4<f32>(), v <= vec4<f32>());
}

@compute @workgroup_size(WG)
fn bn_apply(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x; let n = wg.y;
  let C = pu(1u); let HW = pu(2u);
  let sc = pu(9u) + c; let srs = pu(10u);
  let scale = ST[sc + srs] * GAMMA[pu(11u) + c * pu(12u)];
  let shift = AUX[pu(13u) + c * pu(14u)] - ST[sc] * scale;
  let xb = pu(3u) + n * pu(4u) + c * pu(5u);
  let ob = (n * C + c) * HW;
  if (VEC) {
    let x4 = xb >> 2u;
    for (var j = li; j < (HW >> 2u); j += WG) { store4(ob + 4u * j, relu4(fma(X[x4 + j], vec4<f32>(scale), vec4<f32>(shift)))); }
  } else {
    for (var j = li; j < HW; j += WG) {
      OUT[ob + j] = relu4(vec4<f32>(fma(xs(xb + j), scale, shift))).x;
    }
  }
}

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
