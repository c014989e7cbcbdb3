// Creating tensors: from host data, constants, random numbers.

import { defaultGenerator, type Generator } from '../random.js';
import { checkShape, fmt, numel, type Shape } from '../shape.js';
import { empty, fromData, type Tensor } from '../tensor.js';
import { fillMap } from './map.js';
import { checkDtype, type DType } from '../dtype.js';

export type TensorData = number | ArrayLike<number> | NestedNumbers;
export interface NestedNumbers extends ReadonlyArray<number | NestedNumbers> {}

function inferShape(data: unknown): number[] {
  const shape: number[] = [];
  let d: unknown = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0];
  }
  return shape;
}

function flattenNested(data: unknown, shape: number[], dim: number, out: number[]): void {
  if (dim === shape.length) {
    if (typeof data !== 'number') throw new Error(`tensor: expected a number at depth ${dim}, got ${typeof data} (dtype must be float32)`);
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new Error(`tensor: ragged nested array: expected ${shape[dim]} elements at depth ${dim} (shape ${fmt(shape)})`);
  }
  for (const v of data) flattenNested(v, shape, dim + 1, out);
}

/**
 * A tensor from host data: a number, nested arrays, or a flat array-like with an explicit shape.
 * Typed arrays other than Float32Array/Float64Array/Int32Array/Uint8Array are refused (float32 only).
 */
export function tensor(data: TensorData, shape?: Shape): Tensor {
  let flat: Float32Array;
  let s: number[];
  if (typeof data === 'number') {
    flat = new Float32Array([data]);
    s = [];
  } else if (ArrayBuffer.isView(data)) {
    const ok = data instanceof Float32Array || data instanceof Float64Array || data instanceof Int32Array || data instanceof Uint8Array;
    if (!ok) throw new Error(`tensor: unsupported typed array ${data.constructor.name}; the engine's dtype is float32 (pass a Float32Array)`);
    flat = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    s = shape ? [...shape] : [flat.length];
  } else if (Array.isArray(data) && !shape) {
    s = inferShape(data);
    const out: number[] = [];
    flattenNested(data, s, 0, out);
    flat = Float32Array.from(out);
  } else if (Array.isArray(data)) {
    for (const v of data) if (typeof v !== 'number') throw new Error(`tensor: with an explicit shape, data must be a flat array of numbers, got ${typeof v}`);
    flat = Float32Array.from(data as number[]);
    s = [...shape!];
  } else {
    throw new Error(`tensor: expected a number, an array or a typed array, got ${data === null ? 'null' : typeof data}`);
  }
  checkShape('tensor', s);
  if (numel(s) !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${fmt(s)} (${numel(s)} elements)`);
  return fromData(flat, s);
}

/** A tensor filled with `value`. */
export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  checkShape('full', shape);
  if (typeof value !== 'number' || Number.isNaN(value)) throw new Error(`full: expected a number to fill with, got ${value}`);
  return fillMap(empty(shape, 'tensor', checkDtype('full', dtype)), value);
}

export const zeros = (shape: Shape): Tensor => full(shape, 0);
export const ones = (shape: Shape): Tensor => full(shape, 1);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, t.dtype);
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, t.dtype);

/** Uniform random numbers in [low, high). */
export function rand(shape: Shape, { low = 0, high = 1, generator = defaultGenerator }: { low?: number; high?: number; generator?: Generator } = {}): Tensor {
  checkShape('rand', shape);
  const n = numel(shape);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = low + (high - low) * generator.uniform();
  return fromData(a, shape);
}

/** Normal random numbers with the given mean and standard deviation. */
export function randn(shape: Shape, { mean = 0, std = 1, generator = defaultGenerator }: { mean?: number; std?: number; generator?: Generator } = {}): Tensor {
  checkShape('randn', shape);
  const n = numel(shape);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = mean + std * generator.normal();
  return fromData(a, shape);
}
