// The dense block both DenseNets share: each layer is a module (run as written on the concatenation of
// all earlier features, as d2l and torchvision do) and a list of its BN-ReLU-conv stages as named
// modules, from which the engine's fused denseBlock op is built (one shared buffer, BN-ReLU inside the
// convolutions; see engine/ops/dense_block.ts). `memoryEfficient` chooses between the two, here only.
// In a Sequential, a memory-efficient block also takes in the BN-ReLU-conv (and average pooling) at the
// head of the transition after it (fuseForward), so that the op runs them as its tail: the transition's
// normalised input, its conv's full-size output and the block output's gradient are never kept.

import { Tensor, cat, denseBlock, type DenseLayerParams, type DenseStage } from '../engine/index.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Module, ReLU, Sequential } from '../nn/index.js';

/** One BN-ReLU-conv stage of a layer, as the layer's own modules (the ReLU's where it is a module, for its records). */
export interface StageModules {
  norm: BatchNorm2d;
  conv: Conv2d;
  relu?: ReLU;
}

/** A layer of a dense block: the module that computes its new features, and its stages. */
export interface DenseLayerModules {
  module: Module;
  stages: StageModules[];
}

/** A transition's head that the fused op runs as its tail, and what follows. */
interface Tail {
  stage: StageModules;
  /** The transition's average pooling, when it comes right after the conv. */
  pool: AvgPool2d | null;
  rest: Module[];
}

export abstract class FusableDenseBlock extends Module {
  /** One shared buffer with BN-ReLU fused into the convolutions (true), or concatenation (false). */
  memoryEfficient: boolean;

  constructor(memoryEfficient: boolean) {
    super();
    this.memoryEfficient = memoryEfficient;
  }

  /** The block's layers in order. */
  protected abstract denseLayers(): DenseLayerModules[];

  /** Whether the fused op computes what the layers' own forwards would now (e.g. no dropout in training). */
  protected fusable(): boolean {
    return true;
  }

  forward(x: Tensor): Tensor {
    const layers = this.denseLayers();
    if (this.memoryEfficient && this.fusable()) return this.forwardFused(x, layers, null);
    let features = x;
    for (const l of layers) features = cat([features, l.module.forward(features)], 1);
    return features;
  }

  /** Followed by a transition (BN, ReLU, conv, then anything): its first three run as the fused op's tail. */
  override fuseForward(x: Tensor, following: readonly Module[]): { y: Tensor; consumed: number } | null {
    const t = following.length ? this.transitionHead(following[0]) : null;
    if (!t) return null;
    let y = this.forwardFused(x, this.denseLayers(), t);
    for (const m of t.rest) y = m.forward(y);
    return { y, consumed: 1 };
  }

  /**
   * The BN-ReLU-conv at the head of `next` when the fused op can run it as its tail: a plain Sequential
   * whose first modules are a BatchNorm2d (this block's eps, momentum and mode), a ReLU and a Conv2d with an
   * odd square kernel, stride 1 and "same" padding, none with a forward of its own (a subclass's).
   */
  private transitionHead(next: Module): Tail | null {
    if (!this.memoryEfficient || !this.fusable() || this.forward !== FusableDenseBlock.prototype.forward) return null;
    if (!(next instanceof Sequential) || next.forward !== Sequential.prototype.forward) return null;
    const [norm, relu, conv, ...rest] = next.children();
    if (!(norm instanceof BatchNorm2d && relu instanceof ReLU && conv instanceof Conv2d)) return null;
    if (norm.forward !== BatchNorm2d.prototype.forward || relu.forward !== ReLU.prototype.forward || conv.forward !== Conv2d.prototype.forward) return null;
    const [kh, kw] = conv.kernelSize;
    if (kh !== kw || kh % 2 !== 1 || conv.stride[0] !== 1 || conv.padding[0] !== kh >> 1 || conv.outputDtype !== null) return null;
    const first = this.denseLayers()[0]?.stages[0]?.norm;
    if (!first || norm.eps !== first.eps || norm.momentum !== first.momentum || norm.training !== this.training) return null;
    // An average pooling right after the conv runs in the op too (the conv's output then lives only until pooled).
    const [pool, ...after] = rest;
    if (pool instanceof AvgPool2d && pool.forward === AvgPool2d.prototype.forward) return { stage: { norm, conv, relu }, pool, rest: after };
    return { stage: { norm, conv, relu }, pool: null, rest };
  }

  /**
   * The same function as one engine op (with a tail: then the tail's BN-ReLU-conv); does what each BN,
   * ReLU and conv module's forward would record.
   */
  private forwardFused(x: Tensor, layers: DenseLayerModules[], tail: Tail | null): Tensor {
    if (x.ndim !== 4) throw new Error(`${this.where()}: expected an [N, C, H, W] input, got ${x.ndim} dims`);
    const [N, C0, H, W] = x.shape;
    const norms: Array<{ bn: BatchNorm2d; shape: number[] }> = [];
    // Lazy layers are sized here, as their first forward would; built ones check the channel count.
    const stage = ({ norm, conv, relu }: StageModules, c: number): DenseStage => {
      norm.initialize(c);
      conv.initialize(c);
      norms.push({ bn: norm, shape: [N, c, H, W] });
      relu?.record([N, c, H, W]);
      conv.recordFlops([N, c, H, W], [N, conv.outChannels, H, W], true);
      return {
        norm: { gamma: norm.weight, beta: norm.bias, runningMean: norm.runningMean, runningVar: norm.runningVar, numBatchesTracked: norm.batchesTrackedBuffer },
        conv: { weight: conv.weight, bias: conv.bias },
      };
    };
    let cin = C0;
    const params: DenseLayerParams[] = layers.map(({ stages }) => {
      let c = cin;
      const fused = stages.map((s) => {
        const st = stage(s, c);
        c = s.conv.outChannels;
        return st;
      });
      cin += c;
      return { stages: fused };
    });
    const tailStage = tail ? stage(tail.stage, cin) : null;
    const tailPool = tail?.pool ? { kernel: tail.pool.kernelSize, stride: tail.pool.stride, padding: tail.pool.padding } : null;
    const { eps, momentum } = norms[0].bn;
    for (const { bn, shape } of norms) {
      if (bn.eps !== eps || bn.momentum !== momentum) {
        throw new Error(`${bn.where()}: the memory-efficient block needs the same eps and momentum in every batch norm`);
      }
      bn.record(shape);
    }
    const y = denseBlock(x, params, { training: this.training, momentum, eps, tail: tailStage, tailPool });
    if (tail?.pool) tail.pool.record([N, tail.stage.conv.outChannels, H, W], y.shape);
    return y;
  }
}

/** Sets the implementation of every dense block in `model`; returns the model. */
export function setMemoryEfficient<M extends Module>(model: M, on: boolean): M {
  model.apply((m) => {
    if (m instanceof FusableDenseBlock) m.memoryEfficient = on;
  });
  return model;
}
