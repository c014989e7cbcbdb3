// The op registry and the tape (the backward pass itself is engine/backward.ts).
//
// An op is one `defineOp({ name, forward, backward })` entry: `forward` dispatches kernels and returns
// the output tensor, `backward` maps the output's gradient to one gradient (or null) per input, written
// with other ops. When gradients are enabled and an input requires them, the output records a GradNode
// (the op, its inputs, and a closure over what forward saved).

import type { Tensor } from './tensor.js';

/** What forward hands to backward. */
export interface OpContext<A> {
  inputs: readonly Tensor[];
  attrs: A;
  output: Tensor;
  /** Extra tensors forward saved for backward (e.g. batch-norm statistics). */
  saved: Tensor[];
}

export interface OpDef<A> {
  name: string;
  /** Dispatches the kernels; may push extra tensors to `saved` for backward. */
  forward: (inputs: readonly Tensor[], attrs: A, saved: Tensor[]) => Tensor;
  /** Gradient of each input, or null where none flows. Omitted for ops without a gradient. */
  backward?: (ctx: OpContext<A>, grad: Tensor) => ReadonlyArray<Tensor | null>;
}

/** Every op defined so far, by name. */
export const registry = new Map<string, OpDef<unknown>>();

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
export function defineOp<A>(def: OpDef<A>): (inputs: readonly Tensor[], attrs: A) => Tensor {
  if (registry.has(def.name)) throw new Error(`defineOp: an op named '${def.name}' is already defined`);
  registry.set(def.name, def as OpDef<unknown>);
  return (inputs, attrs) => applyOp(def, inputs, attrs);
}

function applyOp<A>(def: OpDef<A>, inputs: readonly Tensor[], attrs: A): Tensor {
  for (const t of inputs) t.assertAlive(def.name);
  const saved: Tensor[] = [];
  const needsGrad = gradEnabled && !!def.backward && inputs.some((t) => t.requiresGrad);
  const output = noGrad(() => def.forward(inputs, attrs, saved));
  if (needsGrad) {
    output.requiresGrad = true;
    const ctx: OpContext<A> = { inputs, attrs, output, saved };
    output.node = { op: def.name, inputs, backward: (g) => def.backward!(ctx, g) };
  }
  return output;
}
