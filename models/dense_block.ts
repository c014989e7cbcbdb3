// The dense block both DenseNets share: each layer is a module (run as written on the concatenation of
// all earlier features, as d2l and torchvision do) and a list of its BN-ReLU-conv stages as named
// modules, from which the engine's fused denseBlock op is built (one shared buffer, BN-ReLU inside the
// convolutions; see engine/ops/dense_block.ts). `memoryEfficient` chooses between the two, here only.

import { Tensor, cat, denseBlock, type DenseLayerParams } from '../engine/index.js';
import { Module, type BatchNorm2d, type Conv2d } from '../nn/index.js';

/** One BN-ReLU-conv stage of a layer, as the layer's own modules. */
export interface StageModules {
  norm: BatchNorm2d;
  conv: Conv2d;
}

/** A layer of a dense block: the module that computes its new features, and its stages. */
export interface DenseLayerModules {
  module: Module;
  stages: StageModules[];
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
    if (this.memoryEfficient && this.fusable()) return this.forwardFused(x, layers);
    let features = x;
    for (const l of layers) features = cat([features, l.module.forward(features)], 1);
    return features;
  }

  /** The same function as one engine op; does what each BN and conv module's forward would record. */
  private forwardFused(x: Tensor, layers: DenseLayerModules[]): Tensor {
    if (x.ndim !== 4) throw new Error(`${this.where()}: expected an [N, C, H, W] input, got ${x.ndim} dims`);
    const [N, C0, H, W] = x.shape;
    const norms: Array<{ bn: BatchNorm2d; shape: number[] }> = [];
    let cin = C0;
    const params: DenseLayerParams[] = layers.map(({ stages }) => {
      let c = cin;
      const fused = stages.map(({ norm, conv }) => {
        // Lazy layers are sized here, as their first forward would; built ones check the channel count.
        norm.initialize(c);
        conv.initialize(c);
        norms.push({ bn: norm, shape: [N, c, H, W] });
        conv.recordFlops([N, c, H, W], [N, conv.outChannels, H, W], true);
        c = conv.outChannels;
        return {
          norm: { gamma: norm.weight, beta: norm.bias, runningMean: norm.runningMean, runningVar: norm.runningVar, numBatchesTracked: norm.batchesTrackedBuffer },
          conv: { weight: conv.weight, bias: conv.bias },
        };
      });
      cin += c;
      return { stages: fused };
    });
    const { eps, momentum } = norms[0].bn;
    for (const { bn, shape } of norms) {
      if (bn.eps !== eps || bn.momentum !== momentum) {
        throw new Error(`${bn.where()}: the memory-efficient block needs the same eps and momentum in every batch norm`);
      }
      if (this.training) bn.countBatch(shape);
    }
    return denseBlock(x, params, { training: this.training, momentum, eps });
  }
}

/** Sets the implementation of every dense block in `model`; returns the model. */
export function setMemoryEfficient<M extends Module>(model: M, on: boolean): M {
  model.apply((m) => {
    if (m instanceof FusableDenseBlock) m.memoryEfficient = on;
  });
  return model;
}
