// Reverse-mode autograd and the op registry.
//
// An op is one `defineOp({ name, forward, backward })` entry: `forward` dispatches kernels and returns
// the output tensor, `backward` maps the output's gradient to one gradient (or null) per input, written
// with other ops. When gradients are enabled and an input requires them, the output records a GradNode
// (the op, its inputs, and a closure over what forward saved). `backward(root)` sorts the graph
// topologically, walks it in reverse, sums gradients of tensors used more than once, and adds into
// `.grad` of leaves. Backward runs with gradients disabled (no higher-order gradients) inside a scope,
// so every temporary it makes is freed; only the leaves' `.grad` tensors survive.

import { Tensor, keep, scope } from './tensor.js';
import { fmt, sameShape } from './shape.js';

export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  backward: (grad: Tensor) => ReadonlyArray<Tensor | null>;
}

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
  } else {
    // No graph: nothing will read what forward saved for backward (saved inputs and kept tensors stay).
    for (const t of saved) if (t !== output && !t.kept && !inputs.includes(t)) t.dispose();
  }
  return output;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: DenseNet graphs are deep enough to threaten the call stack.
  const stack: Array<[Tensor, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

export interface BackwardHelpers {
  onesLike: (t: Tensor) => Tensor;
  add: (a: Tensor, b: Tensor) => Tensor;
  /** A contiguous copy. */
  clone: (t: Tensor) => Tensor;
}

/**
 * Back-propagates from `root`. A non-scalar root needs an explicit `grad` of its shape.
 * The helpers come from the ops module (passed in to keep this file free of kernels).
 */
export function runBackward(root: Tensor, grad: Tensor | undefined, h: BackwardHelpers): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no input of the graph has requiresGrad = true)`);
  if (!grad && root.size !== 1) throw new Error(`backward: ${root} is not a scalar; pass a gradient of shape ${fmt(root.shape)}`);
  if (grad && !sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: the gradient's shape ${fmt(grad.shape)} differs from the output's shape ${fmt(root.shape)}`);
  }
  grad?.assertAlive('backward (the gradient argument)');
  noGrad(() =>
    scope(() => {
      const grads = new Map<Tensor, Tensor>();
      // A leaf's .grad must be its own contiguous tensor: never the caller's gradient, a view, or a
      // tensor that a backward rule handed to two inputs (add's backward returns g twice).
      const handedOut = new Set<Tensor>();
      if (grad) handedOut.add(grad);
      grads.set(root, grad ?? h.onesLike(root));
      const order = topoOrder(root);
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i];
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        if (!t.node) {
          if (t.grad) {
            const sum = keep(h.add(t.grad, g));
            t.grad.dispose();
            t.grad = sum;
          } else {
            const own = handedOut.has(g) || !g.isContiguous || g.offset !== 0 ? h.clone(g) : g;
            handedOut.add(own);
            t.grad = keep(own);
          }
          continue;
        }
        const node = t.node;
        for (const x of node.inputs) x.assertAlive(`backward of ${node.op} (a saved input)`);
        const inGrads = node.backward(g);
        node.inputs.forEach((x, j) => {
          const gx = inGrads[j];
          if (!gx || !x.requiresGrad) return;
          if (!sameShape(gx.shape, x.shape)) {
            throw new Error(`backward of ${node.op}: gradient of input ${j} has shape ${fmt(gx.shape)}, expected ${fmt(x.shape)}`);
          }
          const prev = grads.get(x);
          if (prev) grads.set(x, h.add(prev, gx));
          else {
            if (grads.has(x) || [...grads.values()].includes(gx)) handedOut.add(gx);
            grads.set(x, gx);
          }
        });
      }
    }),
  );
}
