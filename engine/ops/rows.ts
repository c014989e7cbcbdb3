// Row helpers for the ops that work along one axis (softmax, argmax, topk): move the axis last and
// view the tensor as contiguous rows [R, C], then put the result back in the input's layout.
// All of it goes through differentiable view ops, so gradients flow through the moves.

import { fmt, normAxis } from '../shape.js';
import { scope, type Tensor } from '../tensor.js';
import { isGradEnabled } from '../autograd.js';
import { contiguous, permute, reshape } from './views.js';

export interface Rows {
  /** The input as contiguous [R, C] with C the chosen axis. */
  rows: Tensor;
  axis: number;
  /** Maps a result [R, C'] back: the axis returns to its place with size C'. */
  restore: (y: Tensor) => Tensor;
}

export function toRows(op: string, x: Tensor, axis: number): Rows {
  if (x.ndim === 0) throw new Error(`${op}: expected a tensor with at least one dimension, got a scalar`);
  const a = normAxis(op, axis, x.ndim, x.shape);
  if (x.shape[a] === 0) throw new Error(`${op}: axis ${a} of shape ${fmt(x.shape)} is empty`);
  const perm = x.shape.map((_, i) => i).filter((i) => i !== a);
  perm.push(a);
  const moved = a === x.ndim - 1 ? x : permute(x, perm);
  const lead = moved.shape.slice(0, -1);
  const rows = reshape(contiguous(moved), [lead.reduce((p, d) => p * d, 1), x.shape[a]]);
  const inv = new Array<number>(perm.length);
  perm.forEach((d, i) => (inv[d] = i));
  const restore = (y: Tensor) => {
    const back = reshape(y, [...lead, y.shape[1]]);
    return a === x.ndim - 1 ? back : permute(back, inv);
  };
  return { rows, axis: a, restore };
}

/**
 * Runs fn, which builds a result from views of x. Without a graph to record, it runs in a scope so the
 * intermediate views are freed at once; with one, they belong to the graph (and the caller's scope).
 */
export function viaRows<T>(x: Tensor, fn: () => T): T {
  return x.requiresGrad && isGradEnabled() ? fn() : scope(fn);
}
