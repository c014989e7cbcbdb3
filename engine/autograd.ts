// The op registry and the tape (the backward pass itself is engine/backward.ts).
//
// An op is one `defineOp({ name, forward, backward })` entry: `forward` dispatches kernels and returns
// the output tensor, `backward` maps the output's gradient to one gradient (or null) per input, written
// with other ops. When gradients are enabled and an input requires them, the output records a GradNode
// (the op, its inputs, and a closure over what forward saved). Every tensor an op is given (inputs, and
// tensors anywhere in its attributes) is checked alive first, in forward and again in backward. What
// forward saved is owned by the node: freed by backward() (unless asked to retain the graph), with the
// graph when its output is disposed, or at once when nothing is recorded.

import { collectTensors, Tensor, withOp } from './tensor.js';

/** What forward hands to backward. */
export interface OpContext<A, S extends unknown[] = Tensor[]> {
  inputs: readonly Tensor[];
  attrs: A;
  output: Tensor;
  /** What forward saved for backward (e.g. batch-norm statistics), typed by the op. */
  saved: S;
}

/** An op with attributes A that saves a list S for backward (extra tensors by default). */
export interface OpDef<A, S extends unknown[] = Tensor[]> {
  name: string;
  /**
   * Dispatches the kernels; may push what backward needs to `saved` (empty when forward starts; never the
   * output). Saved tensors that are not inputs are the op's: freed with the graph, or at once when
   * nothing is recorded.
   */
  forward: (inputs: readonly Tensor[], attrs: A, saved: S) => Tensor;
  /**
   * Gradient of each input, or null where none flows. Omitted for ops without a gradient. An op whose
   * backward runs several steps may call `release()` once it no longer reads `grad` (and returns no view
   * of it): backward() then frees it at once, if nothing else holds it, instead of after the op.
   */
  backward?: (ctx: OpContext<A, S>, grad: Tensor, release: () => void) => ReadonlyArray<Tensor | null>;
}

/** Every op defined so far, by name. */
export const registry = new Map<string, OpDef<unknown, unknown[]>>();

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording gradients (like torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Registers an op and returns the function that applies it. */
export function defineOp<A, S extends unknown[] = Tensor[]>(def: OpDef<A, S>): (inputs: readonly Tensor[], attrs: A) => Tensor {
  if (registry.has(def.name)) throw new Error(`defineOp: an op named '${def.name}' is already defined`);
  registry.set(def.name, def as unknown as OpDef<unknown, unknown[]>);
  return (inputs, attrs) => applyOp(def, inputs, attrs);
}

function applyOp<A, S extends unknown[]>(def: OpDef<A, S>, inputs: readonly Tensor[], attrs: A): Tensor {
  assertArgsAlive(def.name, inputs, attrs);
  const saved = [] as unknown[] as S;
  const needsGrad = gradEnabled && !!def.backward && inputs.some((t) => t.requiresGrad);
  const output = noGrad(() => withOp(def.name, () => def.forward(inputs, attrs, saved)));
  if (needsGrad) {
    output.requiresGrad = true;
    const ctx: OpContext<A, S> = { inputs, attrs, output, saved };
    const op = `backward of ${def.name}`;
    const backward = (g: Tensor, release?: () => void) => {
      assertArgsAlive(op, inputs, attrs);
      return withOp(op, () => def.backward!(ctx, g, release ?? (() => {})));
    };
    output.node = { op: def.name, inputs, backward, saved, freed: false };
    for (const t of inputs) if (t.node) t.graphUses++;
  } else {
    const own = new Set<Tensor>();
    collectTensors(saved, own);
    // No graph: nothing will read what forward saved (saved inputs, the output and kept tensors stay).
    for (const t of own) if (t !== output && !t.kept && !inputs.includes(t)) t.dispose();
  }
  return output;
}

/** Throws, naming the op and the argument, if any tensor in `inputs` or in `attrs` was disposed. */
function assertArgsAlive(op: string, inputs: readonly Tensor[], attrs: unknown): void {
  inputs.forEach((t, i) => t.assertAlive(op, `input ${i}`));
  visitTensors(attrs, '', (t, path) => t.assertAlive(op, `argument ${path}`));
}

/** Calls `f` on each tensor in `value` (itself, or in arrays and plain objects, up to 8 levels down). */
function visitTensors(value: unknown, path: string, f: (t: Tensor, path: string) => void, depth = 0): void {
  if (value instanceof Tensor) f(value, path);
  else if (depth > 8 || value === null || typeof value !== 'object') return;
  else if (Array.isArray(value)) value.forEach((v, i) => visitTensors(v, `${path}[${i}]`, f, depth + 1));
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) visitTensors(v, path ? `${path}.${k}` : k, f, depth + 1);
  }
}
