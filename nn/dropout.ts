// torch.nn.Dropout: in training mode zeroes each element with probability p and scales the rest by
// 1 / (1 - p); in eval mode returns its input. The mask is seeded by a Generator (the engine's default
// one unless given), so `manualSeed` makes a training run repeatable.

import { Generator, defaultGenerator, dropout, type Tensor } from '../engine/index.js';
import { Module } from './module.js';

export class Dropout extends Module {
  constructor(
    readonly p = 0.5,
    readonly generator: Generator = defaultGenerator,
  ) {
    super();
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`Dropout: p must be a probability in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator });
  }
  override describe(): string {
    return `Dropout(p=${this.p})`;
  }
}
