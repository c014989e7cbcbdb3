// Reductions: sum, mean and max over axes (reduce.wgsl through reduce_kernel.ts), with sum and mean
// differentiable.

import { defineOp } from '../autograd.js';
import { fmt, normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { expandTo, reshape } from './views.js';
import { mulScalar } from './elementwise.js';
import { reducedShape, reduceRaw } from './reduce_kernel.js';

export { sumTo } from './reduce_kernel.js';

/** Axes to reduce: all when undefined; each normalised and checked. */
export function resolveAxes(op: string, x: Tensor, axis?: number | readonly number[]): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const out = list.map((a) => normAxis(op, a, x.ndim, x.shape));
  if (new Set(out).size !== out.length) throw new Error(`${op}: axis list [${list.join(', ')}] names an axis twice (shape ${fmt(x.shape)})`);
  return out.sort((a, b) => a - b);
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
