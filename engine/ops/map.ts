// Element maps: the dispatch helpers behind every elementwise op (unary.wgsl, binary.wgsl, fill.wgsl).
// These work on raw tensors and record no gradients; engine/ops/elementwise.ts builds the ops on them.

import { dispatch, grid1d, PARAM_WORDS } from '../runtime.js';
import { shaders } from '../shaders.js';
import { collapse, fmt, type Shape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';

const WG = 256;
const MAX_DIMS = 6;

/** Op codes of unary_fn in shaders/common.wgsl. */
export const U = {
  copy: 0, neg: 1, relu: 2, exp: 3, log: 4, addScalar: 5, mulScalar: 6, sqrt: 7,
  rsubScalar: 8, divScalar: 9, rdivScalar: 10, square: 11, abs: 12, step: 13,
} as const;
/** Op codes of binary_fn in shaders/common.wgsl. */
export const B = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, reluGrad: 6, assign: 7 } as const;

const f32bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

interface Operand {
  t: Tensor;
  strides: readonly number[];
}

/** Parameter block of the strided-map layout in common.wgsl. */
function mapParams(op: string, shape: Shape, x: Operand | null, y: Operand | null, out: Operand, s: number) {
  const lists = [x?.strides ?? shape.map(() => 0), y?.strides ?? shape.map(() => 0), out.strides];
  const c = collapse(shape, lists);
  if (c.shape.length > MAX_DIMS) {
    throw new Error(`${op}: a view of shape ${fmt(shape)} with these strides has ${c.shape.length} dimensions after merging; at most ${MAX_DIMS} are supported (make it contiguous first)`);
  }
  const p = new Uint32Array(PARAM_WORDS);
  let n = 1;
  for (const d of shape) n *= d;
  p[0] = n;
  p[1] = c.shape.length;
  p[2] = x?.t.offset ?? 0;
  p[3] = y?.t.offset ?? 0;
  p[4] = f32bits(s);
  p[7] = out.t.offset;
  c.shape.forEach((d, i) => {
    p[8 + i] = d;
    p[14 + i] = c.strides[0][i];
    p[20 + i] = c.strides[1][i];
    p[26 + i] = c.strides[2][i];
  });
  // Flat path: one merged dimension (or none) with unit output stride and unit or zero input strides.
  const flat =
    c.shape.length <= 1 &&
    (c.shape.length === 0 || (c.strides[2][0] === 1 && c.strides[0][0] <= 1 && c.strides[1][0] <= 1));
  p[5] = c.shape.length ? c.strides[0][0] : 0;
  p[6] = c.shape.length ? c.strides[1][0] : 0;
  return { params: p, n, flat };
}

const own = (t: Tensor): Operand => ({ t, strides: t.strides });

/** out = f(x, s) for a new contiguous output (or the given output view). */
export function unaryMap(op: number, x: Tensor, s = 0, out?: Tensor): Tensor {
  const o = out ?? empty(x.shape);
  const { params, n, flat } = mapParams('unary', x.shape, own(x), null, own(o), s);
  if (n === 0) return o;
  const useFlat = flat && params[5] === 1;
  const entry = useFlat ? 'unary_flat' : 'unary_strided';
  const wgs = Math.ceil(n / (useFlat ? WG * 4 : WG));
  dispatch({ shader: shaders.unary, entry, constants: { OP: op } }, { params, buffers: [x.buffer, o.buffer], workgroups: grid1d(wgs) });
  return o;
}

/** dst = g(dst, f(x, s)) in place, where dst may be any view (x is broadcast to dst's shape). */
export function updateMap(dst: Tensor, x: Tensor, combine: number, op: number = U.copy, s = 0, xStrides?: readonly number[]): void {
  if (dst.storage === x.storage) throw new Error('update: the destination and the source share storage; copy the source first');
  const { params, n } = mapParams('update', dst.shape, { t: x, strides: xStrides ?? x.strides }, null, own(dst), s);
  if (n === 0) return;
  dispatch(
    { shader: shaders.unary, entry: 'update_strided', constants: { OP: op, OP2: combine } },
    { params, buffers: [x.buffer, dst.buffer], workgroups: grid1d(Math.ceil(n / WG)) },
  );
}

/** out = f(x, y) with x and y already broadcast to `shape` by their strides. */
export function binaryMap(op: number, shape: Shape, x: Tensor, xs: readonly number[], y: Tensor, ys: readonly number[]): Tensor {
  const o = empty(shape);
  const { params, n, flat } = mapParams('binary', shape, { t: x, strides: xs }, { t: y, strides: ys }, own(o), 0);
  if (n === 0) return o;
  const entry = flat ? 'binary_flat' : 'binary_strided';
  const wgs = Math.ceil(n / (flat ? WG * 4 : WG));
  dispatch({ shader: shaders.binary, entry, constants: { OP: op } }, { params, buffers: [x.buffer, y.buffer, o.buffer], workgroups: grid1d(wgs) });
  return o;
}

/** Sets every element of a tensor or view to `value`. */
export function fillMap(t: Tensor, value: number): Tensor {
  const { params, n } = mapParams('fill', t.shape, null, null, own(t), value);
  if (n === 0) return t;
  dispatch({ shader: shaders.fill, entry: 'fill' }, { params, buffers: [t.buffer], workgroups: grid1d(Math.ceil(n / WG)) });
  return t;
}
