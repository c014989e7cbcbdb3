// The seed's DenseNet (d2l.ai, "Densely Connected Networks"), with the same module tree and therefore
// the same state-dict keys as the d2l PyTorch code: conv_block = BN, ReLU, 3x3 conv; DenseBlock
// concatenates each block's input and output on the channel axis; transition_block = BN, ReLU, 1x1
// conv, 2x2 average pool; DenseNet = stem, dense blocks with transitions, BN, ReLU, global average
// pool, flatten, linear; initialised with d2l's init_cnn (Xavier uniform on conv and linear weights).

import { Tensor, cat, noGrad } from '../engine/index.js';
import {
  AdaptiveAvgPool2d, AvgPool2d, Flatten, LazyBatchNorm2d, LazyConv2d, LazyLinear, MaxPool2d, Module, ReLU, Sequential, initCnn,
} from '../nn/index.js';

/** BN, ReLU, 3x3 convolution with padding 1 (d2l's conv_block). */
export function convBlock(numChannels: number): Sequential {
  return new Sequential(new LazyBatchNorm2d(), new ReLU(), new LazyConv2d(numChannels, 3, { padding: 1 }));
}

export interface DenseBlockOptions {
  /** Use the shared-buffer, fused implementation (issue 5); the plain path concatenates. */
  memoryEfficient?: boolean;
}

/** numConvs conv blocks; each one's output is concatenated to its input on the channel axis. */
export class DenseBlock extends Module {
  readonly net: Sequential;
  memoryEfficient: boolean;

  constructor(
    readonly numConvs: number,
    readonly numChannels: number,
    { memoryEfficient = false }: DenseBlockOptions = {},
  ) {
    super();
    this.net = this.addModule('net', new Sequential());
    for (let i = 0; i < numConvs; i++) this.net.append(convBlock(numChannels));
    this.memoryEfficient = memoryEfficient;
  }

  forward(x: Tensor): Tensor {
    let X = x;
    for (const blk of this.net.children()) {
      const Y = blk.forward(X);
      X = cat([X, Y], 1);
    }
    return X;
  }

  override describe(): string {
    return `DenseBlock(${this.numConvs}, ${this.numChannels})`;
  }
}

/** BN, ReLU, 1x1 convolution to numChannels, 2x2 average pool with stride 2 (d2l's transition_block). */
export function transitionBlock(numChannels: number): Sequential {
  return new Sequential(new LazyBatchNorm2d(), new ReLU(), new LazyConv2d(numChannels, 1), new AvgPool2d(2, { stride: 2 }));
}

export interface D2lDenseNetOptions {
  numChannels?: number;
  growthRate?: number;
  arch?: number[];
  numClasses?: number;
  memoryEfficient?: boolean;
}

/** d2l's DenseNet(num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), num_classes=10). */
export class DenseNet extends Module {
  readonly net: Sequential;

  constructor({ numChannels = 64, growthRate = 32, arch = [4, 4, 4, 4], numClasses = 10, memoryEfficient = false }: D2lDenseNetOptions = {}) {
    super();
    this.net = this.addModule('net', new Sequential(DenseNet.b1()));
    let channels = numChannels;
    arch.forEach((numConvs, i) => {
      this.net.addModule(`dense_blk${i + 1}`, new DenseBlock(numConvs, growthRate, { memoryEfficient }));
      channels += numConvs * growthRate;
      if (i !== arch.length - 1) {
        channels = Math.floor(channels / 2);
        this.net.addModule(`tran_blk${i + 1}`, transitionBlock(channels));
      }
    });
    this.net.addModule(
      'last',
      new Sequential(new LazyBatchNorm2d(), new ReLU(), new AdaptiveAvgPool2d([1, 1]), new Flatten(), new LazyLinear(numClasses)),
    );
    this.net.apply(initCnn);
    this.nameModules();
  }

  static b1(): Sequential {
    return new Sequential(new LazyConv2d(64, 7, { stride: 2, padding: 3 }), new LazyBatchNorm2d(), new ReLU(), new MaxPool2d(3, { stride: 2, padding: 1 }));
  }

  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }

  /** Class scores in eval mode without recording gradients. Restores the previous mode. */
  predict(x: Tensor): Tensor {
    const was = this.training;
    this.eval();
    try {
      return noGrad(() => this.forward(x));
    } finally {
      this.train(was);
    }
  }

  /** Sets the dense blocks' implementation. */
  setMemoryEfficient(on: boolean): this {
    this.apply((m) => {
      if (m instanceof DenseBlock) m.memoryEfficient = on;
    });
    return this;
  }
}
