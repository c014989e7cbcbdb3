// The seed's DenseNet (d2l.ai, "Densely Connected Networks"), with the same module tree and therefore
// the same state-dict keys as the d2l PyTorch code: conv_block = BN, ReLU, 3x3 conv; DenseBlock
// concatenates each block's input and output on the channel axis; transition_block = BN, ReLU, 1x1
// conv, 2x2 average pool; DenseNet = stem, dense blocks with transitions, BN, ReLU, global average
// pool, flatten, linear; initialised with d2l's init_cnn (Xavier uniform on conv and linear weights).

import type { Precision, Tensor } from '../engine/index.js';
import {
  AdaptiveAvgPool2d, AvgPool2d, Conv2d, BatchNorm2d, Flatten, LazyBatchNorm2d, LazyConv2d, LazyLinear, MaxPool2d, ReLU, Sequential, initCnn,
} from '../nn/index.js';
import { FusableDenseBlock, setMemoryEfficient, type DenseLayerModules } from './dense_block.js';
import { checkInputSize } from './input_size.js';
import { PrecisionModel } from './precision.js';

/** BN, ReLU, 3x3 convolution with padding 1 (d2l's conv_block): a Sequential, so its keys are 0, 1, 2. */
export class ConvBlock extends Sequential {
  readonly norm: BatchNorm2d;
  readonly relu: ReLU;
  readonly conv: Conv2d;

  constructor(numChannels: number) {
    const norm = new LazyBatchNorm2d();
    const relu = new ReLU();
    const conv = new LazyConv2d(numChannels, 3, { padding: 1 });
    super(norm, relu, conv);
    this.norm = norm;
    this.relu = relu;
    this.conv = conv;
  }
}

/** d2l's conv_block(num_channels). */
export function convBlock(numChannels: number): ConvBlock {
  return new ConvBlock(numChannels);
}

export interface DenseBlockOptions {
  /** One shared buffer with BN-ReLU fused into the convolutions (the default); false concatenates, as d2l does. */
  memoryEfficient?: boolean;
}

/** numConvs conv blocks; each one's output is concatenated to its input on the channel axis. */
export class DenseBlock extends FusableDenseBlock {
  readonly net: Sequential;
  private readonly blocks: ConvBlock[] = [];

  constructor(
    readonly numConvs: number,
    readonly numChannels: number,
    { memoryEfficient = true }: DenseBlockOptions = {},
  ) {
    super(memoryEfficient);
    this.net = this.addModule('net', new Sequential());
    for (let i = 0; i < numConvs; i++) {
      const block = convBlock(numChannels);
      this.blocks.push(block);
      this.net.append(block);
    }
  }

  protected denseLayers(): DenseLayerModules[] {
    return this.blocks.map((b) => ({ module: b, stages: [{ norm: b.norm, conv: b.conv, relu: b.relu }] }));
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
  /** 'fp32' or 'mixed' (float16 activations, see models/precision.ts); default: the engine's. */
  precision?: Precision;
}

/** d2l's DenseNet(num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), num_classes=10). */
export class DenseNet extends PrecisionModel {
  readonly net: Sequential;
  private readonly transitions: number;

  constructor({ numChannels = 64, growthRate = 32, arch = [4, 4, 4, 4], numClasses = 10, memoryEfficient = true, precision }: D2lDenseNetOptions = {}) {
    super('DenseNet', precision);
    this.net = this.addModule('net', new Sequential(DenseNet.b1()));
    this.transitions = arch.length - 1;
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
    this.applyPrecision();
  }

  static b1(): Sequential {
    return new Sequential(new LazyConv2d(64, 7, { stride: 2, padding: 3 }), new LazyBatchNorm2d(), new ReLU(), new MaxPool2d(3, { stride: 2, padding: 1 }));
  }

  forward(x: Tensor): Tensor {
    checkInputSize('DenseNet', x, this.transitions);
    return this.net.forward(x);
  }

  protected stemConv(): Conv2d {
    return this.net.children()[0].children()[0] as Conv2d;
  }

  /** Sets the dense blocks' implementation. */
  setMemoryEfficient(on: boolean): this {
    return setMemoryEfficient(this, on);
  }
}
