// Argument checks shared by the ops: each throws an Error naming the op, the argument and what was expected.

import { gpu } from '../gpu.js';
import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/** `v` is a live Tensor. */
export function checkTensor(op: string, what: string, v: unknown): asserts v is Tensor {
  if (!(v instanceof Tensor)) throw new Error(`${op}: ${what} must be a Tensor (float32), got ${kind(v)}`);
  v.assertAlive(op, what);
}

/**
 * `t` is float32: for ops without a float16 variant, checked before they allocate anything (the runtime
 * would refuse the buffer at dispatch, after the op's output was made).
 */
export function checkFloat32(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'float32') throw new Error(`${op}: ${what} ${t} is ${t.dtype}; ${op} has no ${t.dtype} variant: cast it with .float() first`);
}

/** `v` is a live Tensor with `rank` dimensions. */
export function checkRank(op: string, what: string, v: unknown, rank: number): asserts v is Tensor {
  checkTensor(op, what, v);
  if (v.ndim !== rank) throw new Error(`${op}: ${what} must have ${rank} dimensions, got shape ${fmt(v.shape)}`);
}

/** `v` is a live, contiguous 1-D Tensor of `n` elements. */
export function checkVector(op: string, what: string, v: unknown, n: number): asserts v is Tensor {
  checkRank(op, what, v, 1);
  if (v.shape[0] !== n) throw new Error(`${op}: ${what} has shape ${fmt(v.shape)}, expected [${n}]`);
  if (v.strides[0] !== 1) throw new Error(`${op}: ${what} must be contiguous`);
}

/** `t` is contiguous. */
export function checkContiguous(op: string, what: string, t: Tensor): void {
  if (!t.isContiguous) throw new Error(`${op}: ${what} ${fmt(t.shape)} must be contiguous`);
}

/** `t` has exactly `shape`. */
export function checkShapeIs(op: string, what: string, t: Tensor, shape: readonly number[]): void {
  if (t.ndim !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${what} has shape ${fmt(t.shape)}, expected ${fmt(shape)}`);
  }
}

/** `v` is an integer >= min. */
export function checkInt(op: string, what: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new Error(`${op}: ${what} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/** `s` is a finite number. */
export function checkScalar(op: string, s: unknown): asserts s is number {
  if (typeof s !== 'number' || !Number.isFinite(s)) {
    throw new Error(`${op}: expected a finite number as the scalar operand, got ${typeof s === 'number' ? s : typeof s}`);
  }
}

/** An NCHW tensor whose images and channels fit one dispatch dimension each. */
export function checkGrid(op: string, x: Tensor): void {
  const max = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (x.shape[0] > max || x.shape[1] > max) throw new Error(`${op}: ${fmt(x.shape)} has more than ${max} images or channels`);
}
