// The op registry and the tape (the backward pass itself is engine/backward.ts).
//
// An op is one `defineOp({ name, forward, backward })` entry: `forward` dispatches kernels and returns
// the output tensor, `backward` maps the output's gradient to one gradient (or null) per input, written
// with other ops. When gradients are enabled and an input requires them, the output records a GradNode
// (the op, its inputs, and a closure over what forward saved).

import type { Tensor } from './tensor.js';

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
  /** Dispatches the kernels; may push what backward needs to `saved` (empty when forward starts). */
  forward: (inputs: readonly Tensor[], attrs: A, saved: S) => Tensor;
  /** Gradient of each input, or null where none flows. Omitted for ops without a gradient. */
  backward?: (ctx: OpContext<A, S>, grad: Tensor) => ReadonlyArray<Tensor | null>;
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
  for (const t of inputs) t.assertAlive(def.name);
  const saved = [] as unknown[] as S;
  const needsGrad = gradEnabled && !!def.backward && inputs.some((t) => t.requiresGrad);
  const output = noGrad(() => def.forward(inputs, attrs, saved));
  if (needsGrad) {
    output.requiresGrad = true;
    const ctx: OpContext<A, S> = { inputs, attrs, output, saved };
    output.node = { op: def.name, inputs, backward: (g) => def.backward!(ctx, g) };
  }
  return output;
}
