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

fn unary_fn(op: u32, x: f32, s: f32) -> f32 {
  switch op {
    case 0u: { return x; }                          // copy
    case 1u: { return -x; }                         // neg
    case 2u: { return max(x, 0.0); }                // relu
    case 3u: { return exp(x); }                     // exp
    case 4u: { return log(x); }                     // log
    case 5u: { return x + s; }                      // add scalar
    case 6u: { return x * s; }                      // mul scalar
    case 7u: { return sqrt(x); }                    // sqrt
    case 8u: { return s - x; }                      // scalar minus x
    case 9u: { return x / s; }                      // divide by scalar
    case 10u: { return s / x; }                     // scalar over x
    case 11u: { return x * x; }                     // square
    case 12u: { return abs(x); }                    // abs
    case 13u: { return select(0.0, 1.0, x > 0.0); } // step: 1 where x > 0
    default: { return x; }
  }
}

fn binary_fn(op: u32, a: f32, b: f32) -> f32 {
  switch op {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return max(a, b); }
    case 5u: { return min(a, b); }
    case 6u: { return select(0.0, b, a > 0.0); }    // relu backward: a = relu input, b = gradient
    case 7u: { return b; }                          // assign (copy b into a)
    default: { return a; }
  }
}
