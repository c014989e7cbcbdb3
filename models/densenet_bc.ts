// DenseNet-BC as torchvision builds it (densenet121/169/201/264): the same module names, so weights
// exported from torchvision as safetensors load as they are:
//   features.{conv0,norm0,relu0,pool0}, features.denseblockI.denselayerJ.{norm1,relu1,conv1,norm2,relu2,conv2},
//   features.transitionI.{norm,relu,conv,pool}, features.norm5, classifier.
// Initialisation as torchvision: Kaiming normal on convs, BN weight 1 and bias 0, linear bias 0.

import { Tensor, dropout, relu, adaptiveAvgPool2d, flatten, type Precision } from '../engine/index.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Module, ReLU, Sequential, constant_, kaimingNormal_ } from '../nn/index.js';
import { FusableDenseBlock, setMemoryEfficient, type DenseLayerModules } from './dense_block.js';
import { checkInputSize } from './input_size.js';
import { PrecisionModel } from './precision.js';

/** BN-ReLU-1x1 conv (bottleneck to bnSize * growthRate), BN-ReLU-3x3 conv (to growthRate). */
export class DenseLayer extends Module {
  readonly norm1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly norm2: BatchNorm2d;
  readonly conv2: Conv2d;

  constructor(numInputFeatures: number, growthRate: number, bnSize: number, readonly dropRate = 0) {
    super();
    if (typeof dropRate !== 'number' || !(dropRate >= 0 && dropRate < 1)) throw new Error(`DenseLayer: dropRate must be in [0, 1), got ${dropRate}`);
    this.norm1 = this.addModule('norm1', new BatchNorm2d(numInputFeatures));
    this.addModule('relu1', new ReLU());
    this.conv1 = this.addModule('conv1', new Conv2d(numInputFeatures, bnSize * growthRate, 1, { bias: false }));
    this.norm2 = this.addModule('norm2', new BatchNorm2d(bnSize * growthRate));
    this.addModule('relu2', new ReLU());
    this.conv2 = this.addModule('conv2', new Conv2d(bnSize * growthRate, growthRate, 3, { padding: 1, bias: false }));
  }

  /** The new features from the concatenation of all earlier ones. */
  forward(x: Tensor): Tensor {
    const bottleneck = this.conv1.forward(relu(this.norm1.forward(x)));
    const y = this.conv2.forward(relu(this.norm2.forward(bottleneck)));
    // torchvision's F.dropout after conv2 (no module, so the state-dict keys are unchanged).
    return this.dropRate > 0 ? dropout(y, this.dropRate, { training: this.training }) : y;
  }
}

export class DenseBlockBC extends FusableDenseBlock {
  readonly layers: DenseLayer[] = [];

  constructor(numLayers: number, numInputFeatures: number, bnSize: number, growthRate: number, { memoryEfficient = true, dropRate = 0 } = {}) {
    super(memoryEfficient);
    for (let i = 0; i < numLayers; i++) {
      this.layers.push(this.addModule(`denselayer${i + 1}`, new DenseLayer(numInputFeatures + i * growthRate, growthRate, bnSize, dropRate)));
    }
  }

  protected denseLayers(): DenseLayerModules[] {
    return this.layers.map((l) => ({ module: l, stages: [{ norm: l.norm1, conv: l.conv1 }, { norm: l.norm2, conv: l.conv2 }] }));
  }

  /** The shared-buffer kernel has no dropout: with dropRate > 0 in training the block concatenates. */
  protected override fusable(): boolean {
    return !(this.training && this.layers.some((l) => l.dropRate > 0));
  }
}

export class Transition extends Sequential {
  constructor(numInputFeatures: number, numOutputFeatures: number) {
    super();
    this.addModule('norm', new BatchNorm2d(numInputFeatures));
    this.addModule('relu', new ReLU());
    this.addModule('conv', new Conv2d(numInputFeatures, numOutputFeatures, 1, { bias: false }));
    this.addModule('pool', new AvgPool2d(2, { stride: 2 }));
  }
}

export interface DenseNetBCOptions {
  growthRate?: number;
  blockConfig?: number[];
  numInitFeatures?: number;
  bnSize?: number;
  dropRate?: number;
  numClasses?: number;
  inChannels?: number;
  memoryEfficient?: boolean;
  /** 'fp32' or 'mixed' (float16 activations, see models/precision.ts); default: the engine's. */
  precision?: Precision;
}

export class DenseNetBC extends PrecisionModel {
  readonly features: Sequential;
  readonly classifier: Linear;
  private readonly transitions: number;

  constructor({
    growthRate = 32, blockConfig = [6, 12, 24, 16], numInitFeatures = 64, bnSize = 4, dropRate = 0, numClasses = 1000, inChannels = 3,
    memoryEfficient = true, precision,
  }: DenseNetBCOptions = {}) {
    super('DenseNetBC', precision);
    if (typeof dropRate !== 'number' || !(dropRate >= 0 && dropRate < 1)) throw new Error(`DenseNetBC: dropRate must be in [0, 1), got ${dropRate}`);
    this.features = this.addModule('features', new Sequential());
    this.transitions = blockConfig.length - 1;
    this.features.addModule('conv0', new Conv2d(inChannels, numInitFeatures, 7, { stride: 2, padding: 3, bias: false }));
    this.features.addModule('norm0', new BatchNorm2d(numInitFeatures));
    this.features.addModule('relu0', new ReLU());
    this.features.addModule('pool0', new MaxPool2d(3, { stride: 2, padding: 1 }));
    let n = numInitFeatures;
    blockConfig.forEach((numLayers, i) => {
      this.features.addModule(`denseblock${i + 1}`, new DenseBlockBC(numLayers, n, bnSize, growthRate, { memoryEfficient, dropRate }));
      n += numLayers * growthRate;
      if (i !== blockConfig.length - 1) {
        this.features.addModule(`transition${i + 1}`, new Transition(n, Math.floor(n / 2)));
        n = Math.floor(n / 2);
      }
    });
    this.features.addModule('norm5', new BatchNorm2d(n));
    this.classifier = this.addModule('classifier', new Linear(n, numClasses));
    this.apply((m) => {
      if (m instanceof Conv2d) kaimingNormal_(m.weight);
      else if (m instanceof BatchNorm2d) {
        constant_(m.weight, 1);
        constant_(m.bias, 0);
      } else if (m instanceof Linear && m.bias) constant_(m.bias, 0);
    });
    this.nameModules();
    this.applyPrecision();
  }

  forward(x: Tensor): Tensor {
    checkInputSize('DenseNetBC', x, this.transitions);
    const f = this.features.forward(x);
    return this.classifier.forward(flatten(adaptiveAvgPool2d(relu(f), [1, 1]), 1));
  }

  protected stemConv(): Conv2d {
    return this.features.children()[0] as Conv2d;
  }

  /** Sets the dense blocks' implementation. */
  setMemoryEfficient(on: boolean): this {
    return setMemoryEfficient(this, on);
  }
}

type Variant = Omit<DenseNetBCOptions, 'growthRate' | 'blockConfig' | 'numInitFeatures'>;
export const densenet121 = (o: Variant = {}) => new DenseNetBC({ ...o, growthRate: 32, blockConfig: [6, 12, 24, 16], numInitFeatures: 64 });
export const densenet169 = (o: Variant = {}) => new DenseNetBC({ ...o, growthRate: 32, blockConfig: [6, 12, 32, 32], numInitFeatures: 64 });
export const densenet201 = (o: Variant = {}) => new DenseNetBC({ ...o, growthRate: 32, blockConfig: [6, 12, 48, 32], numInitFeatures: 64 });
export const densenet264 = (o: Variant = {}) => new DenseNetBC({ ...o, growthRate: 32, blockConfig: [6, 12, 64, 48], numInitFeatures: 64 });
