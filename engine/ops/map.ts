// Element maps: the dispatch helpers behind every elementwise op (unary.wgsl, binary.wgsl, fill.wgsl).
// Each operand may be float32 or float16 (the kernels are composed with their storage types); a new
// output is float16 when every tensor operand is, else float32 (PyTorch's promotion, in which 0-dim
// tensors decide only when no operand has dimensions: float16 [N] times a float32 scalar tensor is float16).
// These work on raw tensors and record no gradients; engine/ops/elementwise.ts builds the ops on them.
// Op codes come from the table in engine/ops/elementwise_table.ts.

import { dispatch, f32bits, grid1d, PARAM_WORDS } from '../runtime.js';
import { shaders } from '../shaders.js';
import { typed } from '../storage.js';
import { resultDtype, type DType } from '../dtype.js';
import { collapse, fmt, type Shape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { binaryCode, unaryCode, type BinaryName, type UnaryName } from './elementwise_table.js';

const WG = 256;
const MAX_DIMS = 6;

/** A tensor seen with the strides of a broadcast to the map's shape. */
export interface Operand {
  t: Tensor;
  strides: readonly number[];
}

// Parameter words of each operand (layout in common.wgsl): x, y, z, then out.
const OFFSET_WORD = [2, 3, 38, 7];
const STEP_WORD = [5, 6, 39];
const STRIDES_WORD = [14, 20, 32, 26];

/** Parameter block of the strided-map layout in common.wgsl. */
function mapParams(op: string, shape: Shape, inputs: ReadonlyArray<Operand | null>, out: Operand, s: number) {
  // Slots 0..2 are x, y, z (missing ones broadcast with zero strides), slot 3 is out.
  const slots = [0, 1, 2].map((j) => inputs[j] ?? null).concat(out);
  const c = collapse(shape, slots.map((o) => o?.strides ?? shape.map(() => 0)));
  if (c.shape.length > MAX_DIMS) {
    throw new Error(`${op}: a view of shape ${fmt(shape)} with these strides has ${c.shape.length} dimensions after merging; at most ${MAX_DIMS} are supported (make it contiguous first)`);
  }
  const p = new Uint32Array(PARAM_WORDS);
  let n = 1;
  for (const d of shape) n *= d;
  p[0] = n;
  p[1] = c.shape.length;
  p[4] = f32bits(s);
  c.shape.forEach((d, i) => (p[8 + i] = d));
  slots.forEach((o, j) => {
    p[OFFSET_WORD[j]] = o?.t.offset ?? 0;
    c.strides[j].forEach((st, i) => (p[STRIDES_WORD[j] + i] = st));
  });
  [0, 1, 2].forEach((j) => (p[STEP_WORD[j]] = c.shape.length ? c.strides[j][0] : 0));
  // Flat path: one merged dimension (or none) with unit output stride and unit or zero input strides.
  const flat = c.shape.length === 0 || (c.shape.length === 1 && c.strides[3][0] === 1 && c.strides.every((st) => st[0] <= 1));
  return { params: p, n, flat };
}

const own = (t: Tensor): Operand => ({ t, strides: t.strides });

/** out = f(x, s) for a new contiguous output (or the given output view). */
export function unaryMap(op: UnaryName, x: Tensor, s = 0, out?: Tensor): Tensor {
  const o = out ?? empty(x.shape, 'tensor', x.dtype);
  const { params, n, flat } = mapParams('unary', x.shape, [own(x)], own(o), s);
  if (n === 0) return o;
  const useFlat = flat && params[5] === 1;
  const entry = useFlat ? 'unary_flat' : 'unary_strided';
  const wgs = Math.ceil(n / (useFlat ? WG * 4 : WG));
  dispatch({ shader: typed(shaders.unary, { X: x.dtype, OUT: o.dtype }), entry, constants: { OP: unaryCode(op) } }, { params, buffers: [x.buffer, o.buffer], workgroups: grid1d(wgs) });
  return o;
}

/** dst = src in place, where dst may be any view (src is broadcast to dst's shape). */
export function assignMap(dst: Tensor, src: Tensor): void {
  if (dst.storage === src.storage) throw new Error('update: the destination and the source share storage; copy the source first');
  const { params, n } = mapParams('update', dst.shape, [own(src)], own(dst), 0);
  if (n === 0) return;
  dispatch(
    { shader: typed(shaders.unary, { X: src.dtype, OUT: dst.dtype }), entry: 'update_strided', constants: { OP: unaryCode('copy'), OP2: binaryCode('assign') } },
    { params, buffers: [src.buffer, dst.buffer], workgroups: grid1d(Math.ceil(n / WG)) },
  );
}

/**
 * out = f(x, y, z, s) over `shape` (binary.wgsl), each operand already broadcast by its strides: a binary
 * row (x, y) or a derivative (x, y and the gradient z). `code` is binaryCode() or gradCode().
 */
export function binaryMap(code: number, shape: Shape, x: Operand, y: Operand, z: Operand | null = null, s = 0): Tensor {
  const operands = [x, y, z].filter((op): op is Operand => op !== null);
  const dimensioned = operands.filter((op) => op.t.ndim > 0);
  const dtype: DType = resultDtype((dimensioned.length ? dimensioned : operands).map((op) => op.t.dtype));
  const o = empty(shape, 'tensor', dtype);
  const { params, n, flat } = mapParams('binary', shape, [x, y, z], own(o), s);
  if (n === 0) return o;
  const entry = flat ? 'binary_flat' : 'binary_strided';
  const wgs = Math.ceil(n / (flat ? WG * 4 : WG));
  // A binary row does not read z: bind x there.
  const zt = (z ?? x).t;
  const buffers = [x.t.buffer, y.t.buffer, zt.buffer, o.buffer];
  const shader = typed(shaders.binary, { X: x.t.dtype, Y: y.t.dtype, Z: zt.dtype, OUT: dtype });
  dispatch({ shader, entry, constants: { OP: code } }, { params, buffers, workgroups: grid1d(wgs) });
  return o;
}

/** Sets every element of a tensor or view to `value`. */
export function fillMap(t: Tensor, value: number): Tensor {
  const { params, n } = mapParams('fill', t.shape, [], own(t), value);
  if (n === 0) return t;
  dispatch({ shader: typed(shaders.fill, { OUT: t.dtype }), entry: 'fill' }, { params, buffers: [t.buffer], workgroups: grid1d(Math.ceil(n / WG)) });
  return t;
}
