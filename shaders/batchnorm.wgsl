// batchnorm.wgsl: batch norm's elementwise kernels and its per-channel bookkeeping.
// Bindings: 1 X (read), 2 DY (read), 3 ST (read, stats [3, *]: mean, invstd, var), 4 GAMMA (read),
//   5 AUX (read: beta, or the [2, *] gradient sums of bn_grad_stats), 6 OUT (read_write),
//   7 DGAMMA (read_write, bn_backward_dx with word 26 = 1: gets row 1 of the gradient sums, gamma's
//   gradient, as a tensor of its own). Unused bindings get any buffer other than OUT and DGAMMA.
// Dispatch of bn_apply and bn_backward_dx: workgroup (x, y) = (channel c, image n); the WG invocations
//   walk the plane's HW elements (vec4 at a time when VEC). OUT is a contiguous [N, C, H, W].
//   bn_apply:       OUT = (x - mean) * invstd * gamma + beta
//   bn_backward_dx: OUT = gamma * invstd * (dy - sum(dy)/M - xhat * sum(dy xhat)/M), M = N*HW, in training
//                   (TRAIN = 1); OUT = gamma * invstd * dy with the statistics held fixed (TRAIN = 0).
//                   OUT is the view at offset 23 with strides 24 (n) and 25 (c), planes contiguous;
//                   with ACC the result is added to what OUT holds (the dense block's gradient buffer).
// Dispatch of bn_eval_stats: 1-D, one invocation per channel.
//   bn_eval_stats:  OUT (stats [3, C]) from running mean X and running var DY: mean, 1/sqrt(var + eps), var.
// (The running-statistics update lives in batchnorm_update.wgsl.)
// Parameters: 0 N  1 C  2 HW  3 x offset  4 x stride n  5 x stride c  6 dy offset  7 dy stride n
//   8 dy stride c  9 stats column offset  10 stats row stride  11 gamma offset  12 gamma stride
//   13 aux offset  14 aux stride (beta: element stride; grad sums: row stride)  15 eps (f32)
//   16 1/M (f32)  17 running-mean offset  18 running-mean stride
//   21 running-var offset  22 running-var stride (bn_eval_stats)  23 out offset  24 out stride n
//   25 out stride c (bn_backward_dx)  26 1: copy gamma's gradient into DGAMMA  27 its offset
override WG: u32 = 64u;
override VEC: bool = true;
override TRAIN: bool = true;
override ACC: bool = false;

@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> DY: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ST: array<f32>;
@group(0) @binding(4) var<storage, read> GAMMA: array<f32>;
@group(0) @binding(5) var<storage, read> AUX: array<f32>;
@group(0) @binding(6) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(7) var<storage, read_write> DGAMMA: array<f32>;

fn store4(o: u32, v: vec4<f32>) { OUT[o] = v.x; OUT[o + 1u] = v.y; OUT[o + 2u] = v.z; OUT[o + 3u] = v.w; }

fn xs(i: u32) -> f32 { return X[i >> 2u][i & 3u]; }
fn dys(i: u32) -> f32 { return DY[i >> 2u][i & 3u]; }

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
    for (var j = li; j < (HW >> 2u); j += WG) { store4(ob + 4u * j, fma(X[x4 + j], vec4<f32>(scale), vec4<f32>(shift))); }
  } else {
    for (var j = li; j < HW; j += WG) {
      OUT[ob + j] = fma(xs(xb + j), scale, shift);
    }
  }
}

@compute @workgroup_size(WG)
fn bn_backward_dx(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = wg.x; let n = wg.y;
  let C = pu(1u); let HW = pu(2u);
  let sc = pu(9u) + c; let srs = pu(10u);
  let mean = ST[sc]; let invstd = ST[sc + srs];
  let a = GAMMA[pu(11u) + c * pu(12u)] * invstd;
  // dx = a*dy + b*x + k
  var b = 0.0; var k = 0.0;
  if (TRAIN) {
    let ga = pu(13u) + c; let inv = pf(16u);
    let mdy = AUX[ga] * inv;              // mean of dy
    let mdg = AUX[ga + pu(14u)] * inv;     // mean of dy * xhat
    b = -a * invstd * mdg;
    k = -a * mdy - b * mean;
  }
  if (pu(26u) == 1u && n == 0u && li == 0u) { DGAMMA[pu(27u) + c] = AUX[pu(13u) + c + pu(14u)]; }
  let xb = pu(3u) + n * pu(4u) + c * pu(5u);
  let db = pu(6u) + n * pu(7u) + c * pu(8u);
  let ob = pu(23u) + n * pu(24u) + c * pu(25u);
  if (VEC) {
    let x4 = xb >> 2u; let d4 = db >> 2u;
    for (var j = li; j < (HW >> 2u); j += WG) {
      var v = a * DY[d4 + j] + b * X[x4 + j] + k;
      let o = ob + 4u * j;
      if (ACC) { v += vec4<f32>(OUT[o], OUT[o + 1u], OUT[o + 2u], OUT[o + 3u]); }
      store4(o, v);
    }
  } else {
    for (var j = li; j < HW; j += WG) {
      var v = a * dys(db + j) + b * xs(xb + j) + k;
      if (ACC) { v += OUT[ob + j]; }
      OUT[ob + j] = v;
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
