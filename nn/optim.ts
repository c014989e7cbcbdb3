// SGD with PyTorch's update rule (momentum, dampening, weight decay, Nesterov), run on the GPU by the
// engine's sgdStep kernel. Momentum buffers are kept tensors owned by the optimiser.

import { Tensor, keep, sgdStep } from '../engine/index.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD {
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  readonly params: Tensor[];
  /** One momentum buffer per parameter (null until the first step, or without momentum). */
  readonly state: Array<Tensor | null>;

  constructor(params: Iterable<Tensor>, { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false }: SGDOptions) {
    this.params = [...params];
    for (const [n, v] of [['lr', lr], ['momentum', momentum], ['dampening', dampening], ['weightDecay', weightDecay]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`SGD: ${n} must be a finite number >= 0, got ${v}`);
    }
    if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error('SGD: Nesterov momentum requires a momentum > 0 and zero dampening');
    this.lr = lr;
    this.momentum = momentum;
    this.dampening = dampening;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
    this.state = this.params.map(() => null);
  }

  /** Updates every parameter that has a gradient, in place. */
  step(): void {
    const ps: Tensor[] = [];
    const gs: Tensor[] = [];
    const bufs: Array<Tensor | null> = [];
    const idx: number[] = [];
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      ps.push(p);
      gs.push(p.grad);
      bufs.push(this.state[i]);
      idx.push(i);
    });
    if (!ps.length) return;
    const newBufs = sgdStep(ps, gs, bufs, {
      lr: this.lr,
      momentum: this.momentum,
      dampening: this.dampening,
      weightDecay: this.weightDecay,
      nesterov: this.nesterov,
    });
    newBufs?.forEach((b, j) => {
      if (b && b !== this.state[idx[j]]) this.state[idx[j]] = keep(b);
    });
  }

  /** Frees every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  dispose(): void {
    for (const b of this.state) b?.dispose();
    this.state.fill(null);
  }
}
