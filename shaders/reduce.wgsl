// reduce.wgsl: sum (OP 0) or max (OP 1, NaN if any element is NaN) over a set of axes, in chunks.
// Bindings: 1 x (read), 2 out (read_write, contiguous [nOut, nChunks]); each float32 or float16 (X_T,
// OUT_T: engine/storage.ts), folded in float32.
// Dispatch: 1-D, one invocation per (output, chunk); an invocation folds `chunkLen` consecutive
// reduced elements (row-major over the reduced axes) and writes out[o * nChunks + c] = fold * scale.
// engine/ops/reduce.ts runs a second pass over the chunks when nChunks > 1.
// Parameters: 0 nOut  1 nRed  2 chunkLen  3 nChunks  4 offset x  5 ndim kept  6 ndim reduced  7 scale (f32)
//   8..13 kept shape  14..19 kept strides  20..25 reduced shape  26..31 reduced strides  32 -inf (f32 bits)
override WG: u32 = 256u;
override OP: u32 = 0u;

@group(0) @binding(1) var<storage, read> X: array<X_T>;
@group(0) @binding(2) var<storage, read_write> OUT: array<OUT_T>;

fn offset_of(i: u32, nd: u32, shapeWord: u32, strideWord: u32) -> u32 {
  var rem = i;
  var off = 0u;
  for (var d = 0u; d < nd; d++) {
    let k = nd - 1u - d;
    let size = pu(shapeWord + k);
    off += (rem % size) * pu(strideWord + k);
    rem = rem / size;
  }
  return off;
}

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

// NOTE: WGSL's max() may drop a NaN operand (lavapipe does); max propagates NaN as PyTorch's does.
fn fold(acc: f32, v: f32) -> f32 {
  if (OP == 1u) { return select(max(acc, v), acc + v, is_nan(acc) || is_nan(v)); }
  return acc + v;
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let id = flat_wg(wg, nwg) * WG + li;
  let nChunks = pu(3u);
  if (id >= pu(0u) * nChunks) { return; }
  let o = id / nChunks;
  let c = id % nChunks;
  let base = pu(4u) + offset_of(o, pu(5u), 8u, 14u);
  let start = c * pu(2u);
  let end = min(pu(1u), start + pu(2u));
  let ndr = pu(6u);
  var acc = select(0.0, pf(32u), OP == 1u); // -inf for max (WGSL has no infinity literal)
  if (ndr == 1u) {
    let st = pu(26u);
    for (var r = start; r < end; r++) { acc = fold(acc, f32(X[base + r * st])); }
  } else {
    for (var r = start; r < end; r++) { acc = fold(acc, f32(X[base + offset_of(r, ndr, 20u, 26u)])); }
  }
  OUT[id] = OUT_st(acc * pf(7u));
}
