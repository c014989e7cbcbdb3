// dropout.wgsl: out = x * keep / (1 - p), where keep is 0 or 1 drawn per element from a counter-based hash
// of (seed, element index), so backward recomputes the same mask from the seed instead of storing it.
// Bindings: 1 X (read: the input, or the output's gradient in backward), 2 OUT (read_write); each float32
// or float16 (X_T, OUT_T: engine/storage.ts), computed in float32.
// Dispatch: 1-D (grid1d), one element per invocation; X and OUT contiguous.
// keep = uniform(seed, i) >= p, uniform = (pcg(i ^ pcg(seed)) >> 8) / 2^24 (test/reference/ops.ts has the
// same hash).
// Parameters: 0 n  1 X offset  2 OUT offset  3 seed  4 p (f32)  5 scale 1 / (1 - p) (f32)
override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> X: array<X_T>;
@group(0) @binding(2) var<storage, read_write> OUT: array<OUT_T>;

fn pcg(x: u32) -> u32 {
  let s = x * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

@compute @workgroup_size(WG)
fn dropout(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = flat_wg(wg, nwg) * WG + li;
  if (i >= pu(0u)) { return; }
  let u = f32(pcg(i ^ pcg(pu(3u))) >> 8u) * (1.0 / 16777216.0);
  OUT[pu(2u) + i] = OUT_st(select(0.0, f32(X[pu(1u) + i]) * pf(5u), u >= pf(4u)));
}
