// The backward pass: `backward(root)` sorts the graph that engine/autograd.ts recorded topologically,
// walks it in reverse, sums gradients of tensors used more than once, and adds into `.grad` of leaves.
// It runs with gradients disabled (no higher-order gradients) inside a scope, so every temporary it
// makes is freed; only the leaves' `.grad` tensors survive. A gradient is freed as soon as the last
// node that needs it is done (as PyTorch does), not at the end: otherwise every layer's gradient would
// stay alive until the first layer's backward, the moment of peak memory. Unless asked to retain the
// graph, it frees each node's saved tensors once the node is done (a second backward then throws, as in
// PyTorch).
// A gradient is stored as its tensor's dtype (as PyTorch's): a float16 tensor used where the result is
// float32 (a mixed pair promotes) gets its gradient cast back to float16.
// Also installs `Tensor.prototype.backward`.

import { noGrad } from './autograd.js';
import { fmt, sameShape } from './shape.js';
import { freeSaved, keep, scope, Tensor } from './tensor.js';
import { cast } from './ops/cast.js';
import { onesLike } from './ops/creation.js';
import { add } from './ops/elementwise.js';
import { clone } from './ops/views.js';

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

export interface BackwardOptions {
  /** Keep the saved tensors so that backward() can run through the graph again (PyTorch's retain_graph). */
  retainGraph?: boolean;
}

/**
 * Back-propagates from `root` (a scalar, or with an explicit gradient of its shape) into leaves' `.grad`:
 * `backward(t)`, `backward(t, grad)`, `backward(t, { retainGraph: true })`, `backward(t, grad, options)`.
 */
export function backward(root: Tensor, gradOrOptions?: Tensor | BackwardOptions, options: BackwardOptions = {}): void {
  let grad: Tensor | undefined;
  if (gradOrOptions instanceof Tensor) grad = gradOrOptions;
  else if (gradOrOptions !== undefined) options = gradOrOptions;
  const retainGraph = options.retainGraph ?? false;
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
      // Pending gradients by tensor object (one object may be pending for several inputs), and those
      // never to free here: the caller's gradient and the leaves' .grad.
      const pending = new Map<Tensor, number>();
      const ours = (t: Tensor) => t !== grad && !t.kept;
      const hold = (x: Tensor, t: Tensor) => {
        grads.set(x, t);
        pending.set(t, (pending.get(t) ?? 0) + 1);
      };
      const unhold = (t: Tensor) => {
        const n = (pending.get(t) ?? 0) - 1;
        if (n > 0) pending.set(t, n);
        else pending.delete(t);
      };
      /** Frees t unless it is still pending for some input, or not ours. */
      const freeIfDone = (t: Tensor) => {
        if (!pending.has(t) && ours(t)) t.dispose();
      };
      const drop = (t: Tensor) => {
        unhold(t);
        freeIfDone(t);
      };
      hold(root, cast(grad ?? onesLike(root), root.dtype));
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
        unhold(g);
        if (!t.node) {
          if (t.grad) {
            const sum = keep(add(t.grad, g));
            t.grad.dispose();
            t.grad = sum;
          } else {
            const own = handedOut.has(g) || !g.isContiguous || g.offset !== 0 ? clone(g) : g;
            handedOut.add(own);
            t.grad = keep(own);
          }
          if (t.grad !== g) freeIfDone(g);
          continue;
        }
        const node = t.node;
        for (const x of node.inputs) x.assertAlive(`backward of ${node.op} (a saved input)`);
        // The op may release g before it returns (a multi-step backward that is done reading it).
        const inGrads = node.backward(g, () => freeIfDone(g));
        if (!retainGraph) {
          freeSaved(node);
          node.freed = true;
        }
        node.inputs.forEach((x, j) => {
          if (!inGrads[j] || !x.requiresGrad) return;
          const gx = cast(inGrads[j]!, x.dtype);
          if (!sameShape(gx.shape, x.shape)) {
            throw new Error(`backward of ${node.op}: gradient of input ${j} has shape ${fmt(gx.shape)}, expected ${fmt(x.shape)}`);
          }
          const prev = grads.get(x);
          if (prev) {
            hold(x, add(prev, gx));
            drop(prev);
            if (!pending.has(gx) && gx !== g && ours(gx)) gx.dispose();
          } else {
            if (grads.has(x) || [...grads.values()].includes(gx)) handedOut.add(gx);
            hold(x, gx);
          }
        });
        freeIfDone(g);
      }
    }),
  );
}

declare module './tensor.js' {
  interface Tensor {
    /** Back-propagates from this tensor (see backward()): `t.backward()`, `t.backward(grad)`, `t.backward({ retainGraph: true })`. */
    backward(grad?: Tensor | BackwardOptions, options?: BackwardOptions): void;
  }
}
Tensor.prototype.backward = function (this: Tensor, grad?: Tensor | BackwardOptions, options?: BackwardOptions) {
  backward(this, grad, options);
};
