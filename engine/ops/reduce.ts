// Reductions: sum, mean and max over axes (reduce.wgsl), with sum and mean differentiable.

import { defineOp } from '../autograd.js';
import { dispatch, grid1d, PARAM_WORDS } from '../runtime.js';
import { shaders } from '../shaders.js';
import { collapse, fmt, normAxis } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { expandTo, reshape } from './views.js';
import { mulScalar } from './elementwise.js';

const WG = 256;
const f32bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

/** Axes to reduce: all when undefined; each normalised and checked. */
export function resolveAxes(op: string, x: Tensor, axis?: number | readonly number[]): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const out = list.map((a) => normAxis(op, a, x.ndim, x.shape));
  if (new Set(out).size !== out.length) throw new Error(`${op}: axis list [${list.join(', ')}] names an axis twice (shape ${fmt(x.shape)})`);
  return out.sort((a, b) => a - b);
}

function reducedShape(x: Tensor, axes: number[], keepdims: boolean): number[] {
  return keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
}

/** One pass of reduce.wgsl: folds `red` dims of x for every `keep` coordinate into [nOut, nChunks]. */
function reducePass(op: number, x: Tensor, keepShape: number[], keepStrides: number[], redShape: number[], redStrides: number[], scale: number, chunks: number): Tensor {
  const nOut = keepShape.reduce((a, b) => a * b, 1);
  const nRed = redShape.reduce((a, b) => a * b, 1);
  const kc = collapse(keepShape, [keepStrides]);
  const rc = collapse(redShape, [redStrides]);
  if (kc.shape.length > 6 || rc.shape.length > 6) throw new Error(`reduce: tensor of shape ${fmt(x.shape)} has too many non-mergeable dimensions (at most 6 kept and 6 reduced)`);
  const chunkLen = Math.ceil(nRed / chunks);
  const nChunks = Math.max(1, Math.ceil(nRed / Math.max(chunkLen, 1)));
  const out = empty([nOut, nChunks]);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([nOut, nRed, chunkLen, nChunks, x.offset, kc.shape.length, rc.shape.length, f32bits(scale)]);
  p[32] = 0xff800000; // -inf, max's starting value
  kc.shape.forEach((d, i) => ((p[8 + i] = d), (p[14 + i] = kc.strides[0][i])));
  rc.shape.forEach((d, i) => ((p[20 + i] = d), (p[26 + i] = rc.strides[0][i])));
  dispatch(
    { shader: shaders.reduce, entry: 'reduce', constants: { OP: op } },
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
    const r = reducePass(op, x, keepShape, keepStrides, redShape, redStrides, scale, 1);
    const v = reshape(r, outShape);
    r.dispose();
    return v;
  }
  const partial = reducePass(op, x, keepShape, keepStrides, redShape, redStrides, 1, chunks);
  const nChunks = partial.shape[1];
  const total = reducePass(op, partial, [nOut], [nChunks], [nChunks], [1], scale, 1);
  partial.dispose();
  const v = reshape(total, outShape);
  total.dispose();
  return v;
}

interface ReduceAttrs {
  axes: number[];
  keepdims: boolean;
}

const sumOp = defineOp<ReduceAttrs>({
  name: 'sum',
  forward: ([x], { axes, keepdims }) => reduceRaw(0, x, axes, keepdims),
  backward: ({ inputs: [x], attrs }, g) => [expandTo(reshape(g, reducedShape(x, attrs.axes, true)), x.shape)],
});

const meanOp = defineOp<ReduceAttrs>({
  name: 'mean',
  forward: ([x], { axes, keepdims }) => {
    const n = axes.reduce((a, i) => a * x.shape[i], 1);
    return reduceRaw(0, x, axes, keepdims, 1 / n);
  },
  backward: ({ inputs: [x], attrs }, g) => {
    const n = attrs.axes.reduce((a, i) => a * x.shape[i], 1);
    return [expandTo(reshape(mulScalar(g, 1 / n), reducedShape(x, attrs.axes, true)), x.shape)];
  },
});

/** Sum over `axis` (all axes when omitted), like torch.sum. */
export function sum(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  return sumOp([x], { axes: resolveAxes('sum', x, axis), keepdims });
}

/** Mean over `axis` (all axes when omitted), like torch.mean. */
export function mean(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  const axes = resolveAxes('mean', x, axis);
  if (axes.some((a) => x.shape[a] === 0)) throw new Error(`mean: cannot average over an empty axis of shape ${fmt(x.shape)}`);
  return meanOp([x], { axes, keepdims });
}

/** Maximum over `axis` (no gradient). */
export function max(x: Tensor, axis?: number | readonly number[], keepdims = false): Tensor {
  const axes = resolveAxes('max', x, axis);
  if (axes.some((a) => x.shape[a] === 0)) throw new Error(`max: cannot take the maximum over an empty axis of shape ${fmt(x.shape)}`);
  return reduceRaw(1, x, axes, keepdims);
}

/** Sums a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  if (!axes.length) return g;
  const r = reduceRaw(0, g, axes, true);
  const v = reshape(r, shape);
  r.dispose();
  return v;
}
