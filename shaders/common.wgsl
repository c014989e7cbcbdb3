// common.wgsl: put in front of every kernel file by engine/runtime.ts.
// Binding 0 of every kernel is this parameter block: 64 u32 words at a dynamic uniform offset.
// Kernels read words with pu(i) (u32), pi(i) (i32) and pf(i) (f32 bit pattern).
struct Params { v: array<vec4<u32>, 16> }
@group(0) @binding(0) var<uniform> P: Params;

fn pu(i: u32) -> u32 { return P.v[i >> 2u][i & 3u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(P.v[i >> 2u][i & 3u]); }
fn pf(i: u32) -> f32 { return bitcast<f32>(P.v[i >> 2u][i & 3u]); }

// The flat workgroup index of a 1-D grid that engine/runtime.ts grid1d() may have split over x and y.
fn flat_wg(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.x + wg.y * nwg.x; }

// Strided element maps (unary.wgsl, binary.wgsl, fill.wgsl) share this parameter layout:
//   0 n (elements)  1 ndim (<= 6)  2 offset x  3 offset y  4 scalar s (f32)  5 step x  6 step y
//   7 offset out  8..13 shape  14..19 x strides  20..25 y strides  26..31 out strides
//   32..37 z strides  38 offset z  39 step z
// Their functions unary_fn and binary_fn are generated from engine/ops/elementwise_table.ts.
// Offset of element `i` (row-major over the shape) for the strides starting at word `sw`.
fn strided_offset(i: u32, sw: u32) -> u32 {
  let nd = pu(1u);
  var rem = i;
  var off = 0u;
  for (var d = 0u; d < nd; d++) {
    let k = nd - 1u - d;
    let size = pu(8u + k);
    off += (rem % size) * pu(sw + k);
    rem = rem / size;
  }
  return off;
}
