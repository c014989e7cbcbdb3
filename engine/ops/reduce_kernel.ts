// The reduction kernel (reduce.wgsl) without autograd: reduceRaw, and sumTo, which sums a broadcast
// gradient back to its operand's shape. engine/ops/reduce.ts builds sum, mean and max on it.
// float16 input gives a float16 result (as PyTorch's), folded in float32 (partial sums kept in float32).

import { dispatch, f32bits, grid1d, PARAM_WORDS } from '../runtime.js';
import { shaders } from '../shaders.js';
import { typed } from '../storage.js';
import type { DType } from '../dtype.js';
import { collapse, contiguousStrides, fmt } from '../shape.js';
import { empty, view, type Tensor } from '../tensor.js';

const WG = 256;

/** `t` (contiguous, owned) as a view of the same elements with `shape`; drops `t`. */
function asShape(t: Tensor, shape: readonly number[]): Tensor {
  const v = view(t, shape, contiguousStrides(shape), 0);
  t.dispose();
  return v;
}

export function reducedShape(x: Tensor, axes: number[], keepdims: boolean): number[] {
  return keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
}

/** One pass of reduce.wgsl: folds `red` dims of x for every `keep` coordinate into [nOut, nChunks]. */
function reducePass(
  op: number, x: Tensor, keepShape: number[], keepStrides: number[], redShape: number[], redStrides: number[], scale: number, chunks: number, dtype: DType,
): Tensor {
  const nOut = keepShape.reduce((a, b) => a * b, 1);
  const nRed = redShape.reduce((a, b) => a * b, 1);
  const kc = collapse(keepShape, [keepStrides]);
  const rc = collapse(redShape, [redStrides]);
  if (kc.shape.length > 6 || rc.shape.length > 6) throw new Error(`reduce: tensor of shape ${fmt(x.shape)} has too many non-mergeable dimensions (at most 6 kept and 6 reduced)`);
  const chunkLen = Math.ceil(nRed / chunks);
  const nChunks = Math.max(1, Math.ceil(nRed / Math.max(chunkLen, 1)));
  const out = empty([nOut, nChunks], 'tensor', dtype);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([nOut, nRed, chunkLen, nChunks, x.offset, kc.shape.length, rc.shape.length, f32bits(scale)]);
  p[32] = 0xff800000; // -inf, max's starting value
  kc.shape.forEach((d, i) => ((p[8 + i] = d), (p[14 + i] = kc.strides[0][i])));
  rc.shape.forEach((d, i) => ((p[20 + i] = d), (p[26 + i] = rc.strides[0][i])));
  dispatch(
    { shader: typed(shaders.reduce, { X: x.dtype, OUT: dtype }), entry: 'reduce', constants: { OP: op } },
    { params: p, buffers: [x.buffer, out.buffer], workgroups: grid1d(Math.ceil((nOut * nChunks) / WG)) },
  );
  return out;
}

/** Raw reduction (no autograd): op 0 = sum, 1 = max; the result is multiplied by `scale`. */
export function reduceRaw(op: number, x: Tensor, axes: number[], keepdims: boolean, scale = 1): Tensor {
  const outShape = reducedShape(x, axes, keepdims);
  const keep = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const keepShape = keep.map((i) => x.shape[i]);
  const keepStrides = keep.map((i) => x.strides[i]);
  const redShape = axes.map((i) => x.shape[i]);
  const redStrides = axes.map((i) => x.strides[i]);
  const nOut = keepShape.reduce((a, b) => a * b, 1);
  const nRed = redShape.reduce((a, b) => a * b, 1);
  // Enough (output, chunk) pairs to occupy the device, each chunk at most 2048 elements long
  // (which also bounds float32 rounding of the running sum).
  const chunks = Math.min(Math.max(1, Math.ceil(8192 / Math.max(nOut, 1)), Math.ceil(nRed / 2048)), Math.max(1, Math.ceil(nRed / 64)));
  if (nRed === 0 || chunks <= 1) {
    return asShape(reducePass(op, x, keepShape, keepStrides, redShape, redStrides, scale, 1, x.dtype), outShape);
  }
  const partial = reducePass(op, x, keepShape, keepStrides, redShape, redStrides, 1, chunks, 'float32');
  const nChunks = partial.shape[1];
  const total = reducePass(op, partial, [nOut], [nChunks], [nChunks], [1], scale, 1, x.dtype);
  partial.dispose();
  return asShape(total, outShape);
}

/** Sums a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  if (!axes.length) return g;
  return asShape(reduceRaw(0, g, axes, true), shape);
}
