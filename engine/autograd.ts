// Reverse-mode autograd and the op registry.
//
// An op is one `defineOp({ name, forward, backward })` entry: `forward` dispatches kernels and returns
// the output tensor, `backward` maps the output's gradient to one gradient (or null) per input, written
// with other ops. When gradients are enabled and an input requires them, the output records a GradNode
// (the op, its inputs, and a closure over what forward saved). `backward(root)` sorts the graph
// topologically, walks it in reverse, sums gradients of tensors used more than once, and adds into
// `.grad` of leaves. Backward runs with gradients disabled (no higher-order gradients) inside a scope,
// so every temporary it makes is freed; only the leaves' `.grad` tensors survive. Unless asked to retain
// the graph, it frees each node's saved tensors once the node is done (a second backward then throws).
// Every tensor an op is given (inputs, and tensors anywhere in its attributes) is checked alive first.

import { Tensor, freeSaved, keep, scope, withOp } from './tensor.js';
import { fmt, sameShape } from './shape.js';

export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  backward: (grad: Tensor) => ReadonlyArray<Tensor | null>;
  /** What forward saved for backward: owned by the node, freed by backward() or with the graph. */
  saved: Tensor[];
  /** Set once backward() has run through the node without retainGraph (its saved tensors are gone). */
  freed: boolean;
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
  /**
   * Dispatches the kernels; may push extra tensors to `saved` for backward (never the output). Saved
   * tensors that are not inputs are the op's: freed with the graph, or at once when nothing is recorded.
   */
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
  assertArgsAlive(def.name, inputs, attrs);
  const saved: Tensor[] = [];
  const needsGrad = gradEnabled && !!def.backward && inputs.some((t) => t.requiresGrad);
  const output = noGrad(() => withOp(def.name, () => def.forward(inputs, attrs, saved)));
  if (needsGrad) {
    output.requiresGrad = true;
    const ctx: OpContext<A> = { inputs, attrs, output, saved };
    const op = `backward of ${def.name}`;
    const backward = (g: Tensor) => {
      assertArgsAlive(op, inputs, attrs);
      return withOp(op, () => def.backward!(ctx, g));
    };
    output.node = { op: def.name, inputs, backward, saved, freed: false };
    for (const t of inputs) if (t.node) t.graphUses++;
  } else {
    for (const t of saved) if (!inputs.includes(t)) t.dispose();
  }
  return output;
}

/** Throws, naming the op and the argument, if any tensor in `inputs` or in `attrs` was disposed. */
function assertArgsAlive(op: string, inputs: readonly Tensor[], attrs: unknown): void {
  inputs.forEach((t, i) => t.assertAlive(op, `input ${i}`));
  visitTensors(attrs, '', (t, path) => t.assertAlive(op, `argument ${path}`));
}

/** Calls `f` on each tensor in `value` (itself, or in arrays and plain objects, up to 5 levels down). */
function visitTensors(value: unknown, path: string, f: (t: Tensor, path: string) => void, depth = 0): void {
  if (value instanceof Tensor) f(value, path);
  else if (depth > 5 || value === null || typeof value !== 'object') return;
  else if (Array.isArray(value)) value.forEach((v, i) => visitTensors(v, `${path}[${i}]`, f, depth + 1));
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) visitTensors(v, path ? `${path}.${k}` : k, f, depth + 1);
  }
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

export interface BackwardOptions {
  /** Keep the saved tensors so that backward() can run through the graph again (PyTorch's retain_graph). */
  retainGraph?: boolean;
}

/**
 * Back-propagates from `root`. A non-scalar root needs an explicit `grad` of its shape.
 * The helpers come from the ops module (passed in to keep this file free of kernels).
 */
export function runBackward(root: Tensor, grad: Tensor | undefined, h: BackwardHelpers, { retainGraph = false }: BackwardOptions = {}): void {
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
      const freed = order.find((t) => t.node?.freed);
      if (freed) {
        throw new Error(
          `backward: the graph behind ${root} was already freed by an earlier backward() (at op ${freed.node!.op}); ` +
            'pass { retainGraph: true } to the first backward() to run backward through it again',
        );
      }
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
        const inGrads = node.backward(g);
        if (!retainGraph) {
          freeSaved(node);
          node.freed = true;
        }
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
