// Tensor: float32 data in a pooled GPU buffer, seen through a shape, strides and an element offset.
//
// OWNERSHIP RULE (the one way GPU memory is freed):
//   A tensor holds one reference to its storage; views (reshape, slice, permute, channel views) hold
//   another reference to the same storage. `t.dispose()` drops the tensor's reference, and the
//   storage's buffer goes back to the pool when its last tensor is disposed.
//   `scope(fn)` disposes every tensor created while `fn` runs, except the tensors it returns (found in
//   the returned value, arrays and plain objects included) and those marked with `keep(t)`; returned
//   tensors join the enclosing scope. Tensors created outside any scope are the caller's to dispose.
//   Gradients written to `.grad` of leaf tensors, parameters and optimiser state are kept.
// Using a disposed tensor, or reading it back, throws an Error naming the op and the tensor.

import { gpu } from './gpu.js';
import { pool, type PooledBuffer } from './pool.js';
import { readBuffer, writeBuffer } from './runtime.js';
import { contiguousStrides, fmt, isContiguous, numel, type Shape } from './shape.js';

/** How an op's output was made: recorded by engine/autograd.ts, walked by engine/backward.ts. */
export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  backward: (grad: Tensor) => ReadonlyArray<Tensor | null>;
}

export class Storage {
  refs = 1;
  constructor(
    readonly buffer: PooledBuffer,
    readonly numel: number,
  ) {}
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) pool.release(this.buffer);
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Offset of element [0, 0, ...] in the storage, in elements. */
  readonly offset: number;
  readonly storage: Storage;
  /** Whether gradients flow to this tensor; set on leaves by the user, on op outputs by autograd. */
  requiresGrad = false;
  /** The accumulated gradient of a leaf tensor after backward(). */
  grad: Tensor | null = null;
  /** The op that produced this tensor (null for leaves). */
  node: GradNode | null = null;
  /** Optional label used in error messages (parameter names). */
  name = '';
  private _disposed = false;
  /** Kept tensors are never disposed by a scope. */
  kept = false;

  /** Internal: use the creation functions (tensor, zeros, ...) or ops. */
  constructor(storage: Storage, shape: Shape, strides?: readonly number[], offset = 0) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    trackInScope(this);
  }

  get size(): number {
    return numel(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): 'float32' {
    return 'float32';
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  get disposed(): boolean {
    return this._disposed;
  }
  get buffer(): PooledBuffer {
    return this.storage.buffer;
  }

  toString(): string {
    return `Tensor#${this.id}${this.name ? ` '${this.name}'` : ''} ${fmt(this.shape)}`;
  }

  /** Throws if the tensor was disposed; `op` names the operation in the message. */
  assertAlive(op: string): void {
    if (this._disposed) {
      throw new Error(`${op}: ${this.toString()} was used after it was disposed (see the ownership rule in engine/tensor.ts)`);
    }
  }

  /** Drops this tensor's reference to its storage (and its gradient). Safe to call twice. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.storage.release();
    this.node = null;
    this.grad?.dispose();
    this.grad = null;
  }

  /** The elements in row-major order. Waits for the GPU. */
  async data(): Promise<Float32Array> {
    this.assertAlive('data()');
    if (this.size === 0) return new Float32Array(0);
    if (this.isContiguous) {
      const bytes = await readBuffer(this.buffer, this.offset * 4, this.size * 4);
      return new Float32Array(bytes);
    }
    // A strided view: read the span of storage it covers and gather its elements on the CPU.
    let last = this.offset;
    this.shape.forEach((d, i) => (last += (d - 1) * this.strides[i]));
    const span = new Float32Array(await readBuffer(this.buffer, this.offset * 4, (last - this.offset + 1) * 4));
    return gather(span, this.shape, this.strides);
  }

  /** The elements as nested arrays, like PyTorch's tolist(). */
  async toArray(): Promise<NestedArray> {
    return nest(await this.data(), this.shape);
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): expected a tensor with one element, got shape ${fmt(this.shape)}`);
    return (await this.data())[0];
  }
}

export type NestedArray = number | NestedArray[];

/** The elements of a strided view (non-negative strides) of `span`, in row-major order. */
function gather(span: Float32Array, shape: Shape, strides: readonly number[]): Float32Array {
  const out = new Float32Array(numel(shape));
  const rec = (dim: number, at: number, o: number): number => {
    if (dim === shape.length) {
      out[o] = span[at];
      return o + 1;
    }
    for (let i = 0; i < shape[dim]; i++) o = rec(dim + 1, at + i * strides[dim], o);
    return o;
  };
  rec(0, 0, 0);
  return out;
}

function nest(data: Float32Array, shape: readonly number[]): NestedArray {
  if (shape.length === 0) return data[0];
  const rec = (off: number, dim: number): NestedArray[] => {
    const n = shape[dim];
    const step = numel(shape.slice(dim + 1));
    const out: NestedArray[] = [];
    for (let i = 0; i < n; i++) out.push(dim === shape.length - 1 ? data[off + i] : rec(off + i * step, dim + 1));
    return out;
  };
  return rec(0, 0);
}

// ---- scopes ----------------------------------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

function trackInScope(t: Tensor): void {
  if (scopes.length) scopes[scopes.length - 1].add(t);
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, into, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
}

/**
 * Runs `fn` and disposes every tensor created inside it that is not returned or kept.
 * `fn` must be synchronous: tensors created after an await would escape the scope.
 */
export function scope<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(new Set());
    throw e;
  }
  if (result instanceof Promise) {
    endScope(new Set());
    throw new Error('scope(): the function returned a Promise; scope() needs a synchronous function');
  }
  const returned = new Set<Tensor>();
  collectTensors(result, returned);
  endScope(returned);
  return result;
}

function endScope(returned: Set<Tensor>): void {
  const created = scopes.pop()!;
  const parent = scopes[scopes.length - 1];
  for (const t of created) {
    if (t.kept) continue;
    if (returned.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/** Marks a tensor as owned by the caller: no scope will dispose it. Returns it. */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

// ---- creation --------------------------------------------------------------------------------------

/** A new contiguous tensor with uninitialised contents. */
export function empty(shape: Shape, tag = 'tensor'): Tensor {
  gpu();
  const n = numel(shape);
  const buf = pool.acquire(n * 4, tag);
  return new Tensor(new Storage(buf, n), shape);
}

/** A new tensor that shares `t`'s storage (a view). */
export function view(t: Tensor, shape: Shape, strides: readonly number[], offset: number): Tensor {
  t.storage.retain();
  return new Tensor(t.storage, shape, strides, offset);
}

/** Uploads host data into a new tensor. */
export function fromData(data: Float32Array, shape: Shape, tag = 'tensor'): Tensor {
  const t = empty(shape, tag);
  if (data.length) writeBuffer(t.buffer, 0, data);
  return t;
}
