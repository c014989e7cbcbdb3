// Tensor: float32 (or float16, see engine/dtype.ts) data in a pooled GPU buffer, seen through a shape,
// strides and an element offset.
//
// OWNERSHIP RULE (the one way GPU memory is freed):
//   A tensor holds one reference to its storage; views (reshape, slice, permute, channel views) hold
//   another reference to the same storage. `t.dispose()` drops the tensor's reference, and the
//   storage's buffer goes back to the pool when its last tensor is disposed.
//   `scope(fn)` disposes every tensor created while `fn` runs, except the tensors it returns (found in
//   the returned value, arrays and plain objects included) and those marked with `keep(t)`; returned
//   tensors join the enclosing scope. Tensors created outside any scope are the caller's to dispose.
//   Gradients written to `.grad` of leaf tensors, parameters and optimiser state are kept.
//   Tensors are found in the returned value through arrays, plain objects, Maps, Sets and class
//   instances' own enumerable properties; not through private #fields, getters or closures (keep those).
// GRAPHS: an op output that requires grad holds its graph (the GradNodes behind it). A graph owns the
//   tensors its ops saved for backward, and the op outputs it consumed that nobody claimed: disposing a
//   tensor frees the graph behind it, saved tensors and every intermediate op output that no other live
//   graph uses, unless it was kept (keep) or returned from a scope. So without scope(), disposing the
//   loss frees the step's activations; a tensor the caller still needs after that must be kept.
//   backward() frees the saved tensors of the graph it walked (retainGraph keeps them), after which a
//   second backward() through that graph is an error, as in PyTorch.
// Using a disposed tensor, or reading it back, throws an Error naming the op and the tensor.

import { gpu } from './gpu.js';
import { pool, type PooledBuffer } from './pool.js';
import { readBuffer, writeBuffer } from './runtime.js';
import { checkDtype, floatToHalfBits, halfToFloat, itemBytes, type DType } from './dtype.js';
import { contiguousStrides, fmt, isContiguous, numel, type Shape } from './shape.js';

/** How an op's output was made: recorded by engine/autograd.ts, walked by engine/backward.ts. */
export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  /** `release` (optional): called by the op once it no longer reads `grad` (see OpDef.backward). */
  backward: (grad: Tensor, release?: () => void) => ReadonlyArray<Tensor | null>;
  /** What forward saved for backward: owned by the node, freed by backward() or with the graph. */
  saved: unknown[];
  /** Set once backward() has run through the node without retainGraph (its saved tensors are gone). */
  freed: boolean;
}

export class Storage {
  refs = 1;
  constructor(
    readonly buffer: PooledBuffer,
    readonly numel: number,
    readonly dtype: DType = 'float32',
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
  /** Kept tensors are never disposed by a scope, nor with a graph. */
  kept = false;
  /** Set when a scope returned this tensor: the caller holds it, so no graph disposes it. */
  claimed = false;
  /** Internal: how many graph nodes have this tensor as an input (see the ownership rule). */
  graphUses = 0;

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
  /** The storage's element type; kernels compute in float32 either way. */
  get dtype(): DType {
    return this.storage.dtype;
  }
  /** Bytes per element of the storage. */
  get itemBytes(): number {
    return itemBytes(this.storage.dtype);
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  get disposed(): boolean {
    return this._disposed;
  }
  /**
   * The pooled buffer, for binding to a kernel. Every op reaches a tensor's data through here, so this is
   * where use after dispose is caught for any tensor an op touches (inputs, options, saved tensors).
   */
  get buffer(): PooledBuffer {
    if (this._disposed) this.assertAlive(activeOp || 'a kernel');
    return this.storage.buffer;
  }

  toString(): string {
    return `Tensor#${this.id}${this.name ? ` '${this.name}'` : ''} ${fmt(this.shape)}`;
  }

  /** Throws if the tensor was disposed; `op` names the operation and `what` the argument in the message. */
  assertAlive(op: string, what = ''): void {
    if (this._disposed) {
      throw new Error(`${op}: ${this.toString()}${what ? ` (${what})` : ''} was used after it was disposed (see the ownership rule in engine/tensor.ts)`);
    }
  }

  /**
   * Drops this tensor's reference to its storage (and its gradient), and frees the graph behind it:
   * see the ownership rule. Safe to call twice.
   */
  dispose(): void {
    const node = this.disposeOwn();
    if (node) freeGraph(node);
  }

  /** Disposes this tensor alone; returns the graph node it held (null if none, or already disposed). */
  private disposeOwn(): GradNode | null {
    if (this._disposed) return null;
    this._disposed = true;
    this.storage.release();
    const node = this.node;
    this.node = null;
    this.grad?.dispose();
    this.grad = null;
    return node;
  }

  /** Internal (graph freeing): disposes this tensor if no other graph node uses it; returns its node. */
  static releaseGraphUse(t: Tensor): GradNode | null {
    if (!t.node || t.kept || t.claimed || --t.graphUses > 0) return null;
    return t.disposeOwn();
  }

  /** The elements in row-major order. Waits for the GPU. */
  async data(): Promise<Float32Array> {
    this.assertAlive('data()');
    if (this.size === 0) return new Float32Array(0);
    // The span of storage the tensor covers (all of it when contiguous), as float32 values.
    let last = this.offset;
    this.shape.forEach((d, i) => (last += (d - 1) * this.strides[i]));
    const b = this.itemBytes;
    const bytes = await readBuffer(this.buffer, this.offset * b, (last - this.offset + 1) * b);
    const span = b === 2 ? Float32Array.from(new Uint16Array(bytes), halfToFloat) : new Float32Array(bytes);
    // A strided view: gather its elements on the CPU.
    return this.isContiguous ? span : gather(span, this.shape, this.strides);
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

// ---- graphs ----------------------------------------------------------------------------------------

/** Disposes the tensors forward saved for backward (those that are not also inputs of the node). */
export function freeSaved(node: GradNode): void {
  const saved = new Set<Tensor>();
  collectTensors(node.saved, saved);
  for (const t of saved) if (!node.inputs.includes(t)) t.dispose();
  node.saved.length = 0;
}

/**
 * Frees a graph from its output's node down: every node's saved tensors, and each op output used as an
 * input that is neither kept nor claimed and that no other live node uses. Iterative: graphs are deep.
 */
function freeGraph(root: GradNode): void {
  const todo = [root];
  while (todo.length) {
    const node = todo.pop()!;
    freeSaved(node);
    for (const x of node.inputs) {
      const next = Tensor.releaseGraphUse(x);
      if (next) todo.push(next);
    }
  }
}

// ---- the op at work (named in use-after-dispose errors) ----------------------------------------------

let activeOp = '';

/** Runs `fn` with `op` named as the op at work: a disposed tensor it binds to a kernel is reported under it. */
export function withOp<T>(op: string, fn: () => T): T {
  const prev = activeOp;
  activeOp = op;
  try {
    return fn();
  } finally {
    activeOp = prev;
  }
}

// ---- scopes ----------------------------------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

function trackInScope(t: Tensor): void {
  if (scopes.length) scopes[scopes.length - 1].add(t);
}

/**
 * The tensors reachable from a scope's result: through arrays, plain objects, Maps (keys and values),
 * Sets, and other objects' own enumerable properties (class instances), each object visited once.
 * Not seen: private #fields, getters, closures, and anything inside typed arrays.
 */
export function collectTensors(value: unknown, into: Set<Tensor>): void {
  const seen = new Set<object>();
  const todo: unknown[] = [value];
  while (todo.length) {
    const v = todo.pop();
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof Tensor) into.add(v);
    else if (Array.isArray(v) || v instanceof Set) for (const x of v) todo.push(x);
    else if (v instanceof Map) for (const [k, x] of v) todo.push(k, x);
    else if (!ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer)) for (const x of Object.values(v)) todo.push(x);
  }
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
    if (returned.has(t)) {
      t.claimed = true;
      parent?.add(t);
    } else t.dispose();
  }
}

/** Marks a tensor as owned by the caller: no scope will dispose it. Returns it. */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

// ---- creation --------------------------------------------------------------------------------------

/** A new contiguous tensor with uninitialised contents. */
export function empty(shape: Shape, tag = 'tensor', dtype: DType = 'float32'): Tensor {
  checkDtype('empty', dtype);
  const g = gpu();
  if (dtype === 'float16' && !g.features.shaderF16) {
    throw new Error(`float16 storage needs the adapter feature 'shader-f16', which this adapter (${g.adapter.description || 'unknown'}) lacks; use float32 (precision 'fp32')`);
  }
  const n = numel(shape);
  const buf = pool.acquire(n * itemBytes(dtype), tag);
  buf.half = dtype === 'float16';
  return new Tensor(new Storage(buf, n, dtype), shape);
}

/** A new tensor that shares `t`'s storage (a view). */
export function view(t: Tensor, shape: Shape, strides: readonly number[], offset: number): Tensor {
  t.storage.retain();
  return new Tensor(t.storage, shape, strides, offset);
}

/** Uploads host data into a new tensor (float16: each value rounded to the nearest half, ties to even). */
export function fromData(data: Float32Array, shape: Shape, tag = 'tensor', dtype: DType = 'float32'): Tensor {
  const t = empty(shape, tag, dtype);
  if (!data.length) return t;
  if (dtype === 'float32') writeBuffer(t.buffer, 0, data);
  else {
    // Whole 4-byte words (WebGPU writes multiples of 4 bytes).
    const bits = new Uint16Array(data.length + (data.length & 1));
    for (let i = 0; i < data.length; i++) bits[i] = floatToHalfBits(data[i]);
    writeBuffer(t.buffer, 0, bits);
  }
  return t;
}
