// Layers with PyTorch's names, arguments, parameter names and default initialisation.
// Lazy variants take their input size from the first forward call (LazyConv2d, LazyBatchNorm2d,
// LazyLinear are the eager classes constructed with an unknown input size).

import {
  Tensor, copyInto, noGrad, float, adaptiveAvgPool2d, avgPool2d, batchNorm2d, batchNormRelu2d, batchNormReluMaxPool2d, conv2d, flatten, fmt, linear, maxPool2d, ones, pair, relu, zeros,
  type DType, type Pool2dOptions,
} from '../engine/index.js';
import { Module } from './module.js';
import { recordFlops, recordLayer } from './flops.js';
import { kaimingUniformDefault, uniformBias, xavierUniform_ } from './init.js';

type Pair = number | [number, number];

function checkRank(m: Module, x: Tensor, rank: number, what: string): void {
  if (!(x instanceof Tensor)) throw new Error(`${m.where()}: expected a Tensor input`);
  if (x.ndim !== rank) throw new Error(`${m.where()}: expected a ${rank}-D input (${what}), got shape ${fmt(x.shape)}`);
}

/** Applies `fn` to every module once (used by lazy layers to run initialisers after materialising). */
type Init = (m: Module) => void;

/** A layer whose parameters may wait for the first input; initialisers applied early are replayed then. */
abstract class LazyCapable extends Module {
  protected pendingInits: Init[] = [];
  /** Registers an initialiser to run once the parameters exist (apply() calls on lazy layers use it). */
  deferInit(fn: Init): void {
    this.pendingInits.push(fn);
  }
  protected runPendingInits(): void {
    const fns = this.pendingInits.splice(0);
    for (const f of fns) f(this);
  }
  abstract get initialised(): boolean;
}

/** A layer with a weight and an optional bias (Conv2d, Linear). */
abstract class WeightedLayer extends LazyCapable {
  abstract readonly hasBias: boolean;
  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor | null {
    return this.hasBias ? this.param('bias') : null;
  }
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  bias?: boolean;
}

/** 2-D convolution, NCHW, like torch.nn.Conv2d (groups 1, dilation 1). */
export class Conv2d extends WeightedLayer {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly hasBias: boolean;
  /**
   * The output's storage type; null (the default) follows the input's. A mixed-precision model sets its
   * stem's to float16: a float32 image in, float16 activations out (models/precision.ts).
   */
  outputDtype: DType | null = null;

  constructor(
    public inChannels: number | null,
    readonly outChannels: number,
    kernelSize: Pair,
    { stride = 1, padding = 0, bias = true }: Conv2dOptions = {},
  ) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(stride);
    this.padding = pair(padding);
    this.hasBias = bias;
    if (this.stride[0] !== this.stride[1] || this.padding[0] !== this.padding[1]) {
      throw new Error(`${this.constructor.name}: different strides or paddings per axis are not supported (got stride ${this.stride}, padding ${this.padding})`);
    }
    for (const [n, v] of [['outChannels', outChannels], ['kernelSize', this.kernelSize[0]], ['kernelSize', this.kernelSize[1]], ['stride', this.stride[0]], ['stride', this.stride[1]]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${this.constructor.name}: ${n} must be a positive integer, got ${v}`);
    }
    this.registerParameter('weight', null);
    if (bias) this.registerParameter('bias', null);
    if (inChannels !== null) this.build(inChannels);
  }

  get initialised(): boolean {
    return this.inChannels !== null;
  }

  /** Creates the parameters of a lazy layer for `inChannels` (or checks a built one). */
  initialize(inChannels: number): this {
    if (this.inChannels === null) this.build(inChannels);
    else if (this.inChannels !== inChannels) throw new Error(`${this.where()}: built for ${this.inChannels} input channels, asked for ${inChannels}`);
    return this;
  }

  /** Reports this layer's FLOPs (forward calls it; fused paths that bypass forward call it too). */
  recordFlops(input: readonly number[], output: readonly number[], inputNeedsGrad: boolean): void {
    const outSize = output.reduce((a, b) => a * b, 1);
    const macs = outSize * this.inChannels! * this.kernelSize[0] * this.kernelSize[1];
    recordFlops(2 * macs, 2 * macs * (inputNeedsGrad ? 2 : 1), this.hasBias ? outSize : 0);
    recordLayer({ kind: 'conv', input: [...input], output: [...output], weight: [...this.param('weight').shape], stride: this.stride[0], padding: this.padding[0] });
  }

  private build(inChannels: number): void {
    this.inChannels = inChannels;
    const [kh, kw] = this.kernelSize;
    const fanIn = inChannels * kh * kw;
    this.registerParameter('weight', kaimingUniformDefault([this.outChannels, inChannels, kh, kw], fanIn));
    if (this.hasBias) this.registerParameter('bias', uniformBias([this.outChannels], fanIn));
    this.runPendingInits();
  }

  protected override inferFrom(name: string, v: Tensor): void {
    if (name === 'weight' && this.inChannels === null && v.ndim === 4) this.build(v.shape[1]);
  }

  override describe(): string {
    return `Conv2d(${this.inChannels ?? '?'}, ${this.outChannels}, kernel_size=(${this.kernelSize}), stride=(${this.stride}), padding=(${this.padding}))`;
  }

  forward(x: Tensor): Tensor {
    checkRank(this, x, 4, 'N, C, H, W');
    if (this.inChannels === null) this.build(x.shape[1]);
    if (x.shape[1] !== this.inChannels) {
      throw new Error(`${this.where()}: input has ${x.shape[1]} channels, expected ${this.inChannels} (input shape ${fmt(x.shape)})`);
    }
    const y = conv2d(x, this.param('weight'), this.hasBias ? this.param('bias') : null, { stride: this.stride[0], padding: this.padding[0], dtype: this.outputDtype ?? x.dtype });
    this.recordFlops(x.shape, y.shape, x.requiresGrad);
    return y;
  }
}

/** Conv2d that infers its input channels at the first forward call. */
export class LazyConv2d extends Conv2d {
  constructor(outChannels: number, kernelSize: Pair, options: Conv2dOptions = {}) {
    super(null, outChannels, kernelSize, options);
  }
}

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
}

/** Batch normalisation over N, H, W per channel, like torch.nn.BatchNorm2d (affine, tracking stats). */
export class BatchNorm2d extends LazyCapable {
  readonly eps: number;
  readonly momentum: number;
  /** Training steps taken (PyTorch's num_batches_tracked). */
  numBatchesTracked = 0;

  constructor(
    public numFeatures: number | null,
    { eps = 1e-5, momentum = 0.1 }: BatchNormOptions = {},
  ) {
    super();
    this.eps = eps;
    this.momentum = momentum;
    this.registerParameter('weight', null);
    this.registerParameter('bias', null);
    this.registerBuffer('running_mean', null);
    this.registerBuffer('running_var', null);
    this.registerBuffer('num_batches_tracked', null);
    if (numFeatures !== null) this.build(numFeatures);
  }

  get initialised(): boolean {
    return this.numFeatures !== null;
  }

  /** Creates the parameters and buffers of a lazy layer for `c` channels (or checks a built one). */
  initialize(c: number): this {
    if (this.numFeatures === null) this.build(c);
    else if (this.numFeatures !== c) throw new Error(`${this.where()}: built for ${this.numFeatures} channels, asked for ${c}`);
    return this;
  }

  /**
   * The records of one call on an input of this shape (forward does this; fused paths call it), and in
   * training the batch counted. The GPU's num_batches_tracked is advanced by the kernel that updates the
   * running statistics (batchNorm2d or the fused dense block).
   */
  record(shape: readonly number[]): void {
    if (this.training) this.numBatchesTracked++;
    recordFlops(0, 0, 2 * shape.reduce((a, b) => a * b, 1));
    recordLayer({ kind: 'batchnorm', input: [...shape], output: [...shape] });
  }

  private build(c: number): void {
    this.numFeatures = c;
    this.registerParameter('weight', ones([c]));
    this.registerParameter('bias', zeros([c]));
    this.registerBuffer('running_mean', zeros([c]));
    this.registerBuffer('running_var', ones([c]));
    this.registerBuffer('num_batches_tracked', zeros([]));
    this.runPendingInits();
  }

  protected override inferFrom(name: string, v: Tensor): void {
    if (this.numFeatures === null && name !== 'num_batches_tracked' && v.ndim === 1) this.build(v.shape[0]);
  }

  override describe(): string {
    return `BatchNorm2d(${this.numFeatures ?? '?'}, eps=${this.eps}, momentum=${this.momentum})`;
  }

  forward(x: Tensor): Tensor {
    return this.run(x, false);
  }

  /** relu(this.forward(x)) as one fused op (Sequential runs a BatchNorm2d followed by a ReLU this way). */
  forwardRelu(x: Tensor): Tensor {
    return this.run(x, true);
  }

  /**
   * Followed by a ReLU: batch norm's kernels alone, no BN output kept; and when a MaxPool2d comes next,
   * the pooling reads the BN-ReLU as its prologue, so nothing normalised is stored at all. Only modules
   * without a forward of their own (a subclass's) fuse.
   */
  override fuseForward(x: Tensor, following: readonly Module[]): { y: Tensor; consumed: number } | null {
    const [relu, pool] = following;
    if (!(relu instanceof ReLU) || this.forward !== BatchNorm2d.prototype.forward || relu.forward !== ReLU.prototype.forward) return null;
    if (!(pool instanceof MaxPool2d) || pool.forward !== MaxPool2d.prototype.forward) {
      const y = this.forwardRelu(x);
      relu.record(y.shape);
      return { y, consumed: 1 };
    }
    const y = this.run(x, true, { kernel: pool.kernelSize, stride: pool.stride, padding: pool.padding });
    relu.record(x.shape);
    pool.record(x.shape, y.shape);
    return { y, consumed: 2 };
  }

  private run(x: Tensor, withRelu: boolean, pool: Pool2dOptions | null = null): Tensor {
    checkRank(this, x, 4, 'N, C, H, W');
    if (this.numFeatures === null) this.build(x.shape[1]);
    if (x.shape[1] !== this.numFeatures) {
      throw new Error(`${this.where()}: input has ${x.shape[1]} channels, expected ${this.numFeatures} (input shape ${fmt(x.shape)})`);
    }
    this.record(x.shape);
    const options = { training: this.training, momentum: this.momentum, eps: this.eps, numBatchesTracked: this.buffer('num_batches_tracked') };
    const args = [x, this.param('weight'), this.param('bias'), this.buffer('running_mean')!, this.buffer('running_var')!] as const;
    if (pool) return batchNormReluMaxPool2d(...args, { ...options, pool });
    return (withRelu ? batchNormRelu2d : batchNorm2d)(...args, options);
  }

  get weight(): Tensor {
    return this.param('weight');
  }
  get bias(): Tensor {
    return this.param('bias');
  }
  get runningMean(): Tensor {
    return this.buffer('running_mean')!;
  }
  get runningVar(): Tensor {
    return this.buffer('running_var')!;
  }
  /** The num_batches_tracked buffer (one float on the GPU). */
  get batchesTrackedBuffer(): Tensor {
    return this.buffer('num_batches_tracked')!;
  }
}

/** BatchNorm2d that infers its channel count at the first forward call. */
export class LazyBatchNorm2d extends BatchNorm2d {
  constructor(options: BatchNormOptions = {}) {
    super(null, options);
  }
}

/** Fully connected layer y = x W^T + b, like torch.nn.Linear (W is [out, in]). */
export class Linear extends WeightedLayer {
  constructor(
    public inFeatures: number | null,
    readonly outFeatures: number,
    readonly hasBias = true,
  ) {
    super();
    if (!Number.isInteger(outFeatures) || outFeatures < 1) throw new Error(`Linear: outFeatures must be a positive integer, got ${outFeatures}`);
    this.registerParameter('weight', null);
    if (hasBias) this.registerParameter('bias', null);
    if (inFeatures !== null) this.build(inFeatures);
  }

  get initialised(): boolean {
    return this.inFeatures !== null;
  }

  private build(n: number): void {
    this.inFeatures = n;
    this.registerParameter('weight', kaimingUniformDefault([this.outFeatures, n], n));
    if (this.hasBias) this.registerParameter('bias', uniformBias([this.outFeatures], n));
    this.runPendingInits();
  }

  protected override inferFrom(name: string, v: Tensor): void {
    if (name === 'weight' && this.inFeatures === null && v.ndim === 2) this.build(v.shape[1]);
  }

  override describe(): string {
    return `Linear(in_features=${this.inFeatures ?? '?'}, out_features=${this.outFeatures})`;
  }

  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor) || x.ndim < 1) throw new Error(`${this.where()}: expected a Tensor with at least 1 dimension`);
    const n = x.shape[x.ndim - 1];
    if (this.inFeatures === null) this.build(n);
    if (n !== this.inFeatures) throw new Error(`${this.where()}: input has ${n} features, expected ${this.inFeatures} (input shape ${fmt(x.shape)})`);
    // Mixed precision: float16 activations come back to float32 here (the classifier runs in float32).
    const y = linear(float(x), this.param('weight'), this.hasBias ? this.param('bias') : null);
    const macs = y.size * n;
    recordFlops(2 * macs, 2 * macs * (x.requiresGrad ? 2 : 1), this.hasBias ? y.size : 0);
    recordLayer({ kind: 'linear', input: [...x.shape], output: [...y.shape], weight: [...this.param('weight').shape] });
    return y;
  }
}

/** Linear that infers its input features at the first forward call. */
export class LazyLinear extends Linear {
  constructor(outFeatures: number, bias = true) {
    super(null, outFeatures, bias);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    this.record(x.shape);
    return relu(x);
  }
  /** The FLOP and layer records of one call (also made when Sequential fuses this ReLU into a BatchNorm2d). */
  record(shape: readonly number[]): void {
    recordFlops(0, 0, shape.reduce((a, b) => a * b, 1));
    recordLayer({ kind: 'relu', input: [...shape], output: [...shape] });
  }
  override describe(): string {
    return 'ReLU()';
  }
}

/** A pool layer's kernel size, checked when the layer is made. */
function poolKernel(layer: string, v: Pair): [number, number] {
  if (typeof v !== 'number' && !(Array.isArray(v) && v.length === 2)) {
    throw new Error(`${layer}: kernelSize (the window size, a number or [h, w]) is required, got ${v === undefined ? 'none' : JSON.stringify(v)}`);
  }
  return pair(v);
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
}

/** What distinguishes the two window pools: the engine op, the kind recorded for FLOP counts, the name. */
interface PoolKind {
  op: (x: Tensor, o: Pool2dOptions) => Tensor;
  kind: 'maxpool' | 'avgpool';
  name: string;
}

/** A 2-D window pool (MaxPool2d, AvgPool2d): kernel, stride (the kernel by default) and padding. */
abstract class Pool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  constructor(private readonly pooling: PoolKind, kernelSize: Pair, { stride, padding = 0 }: PoolOptions = {}) {
    super();
    this.kernelSize = poolKernel(pooling.name, kernelSize);
    this.stride = pair(stride ?? kernelSize);
    this.padding = pair(padding);
  }
  forward(x: Tensor): Tensor {
    checkRank(this, x, 4, 'N, C, H, W');
    const y = this.pooling.op(x, { kernel: this.kernelSize, stride: this.stride, padding: this.padding });
    this.record(x.shape, y.shape);
    return y;
  }
  /** The FLOP and layer records of one call (also made when Sequential fuses a max pool into a batch norm). */
  record(input: readonly number[], output: readonly number[]): void {
    recordFlops(0, 0, output.reduce((a, b) => a * b, 1) * this.kernelSize[0] * this.kernelSize[1]);
    recordLayer({ kind: this.pooling.kind, input: [...input], output: [...output], kernel: this.kernelSize, stride: this.stride[0], padding: this.padding[0] });
  }
  override describe(): string {
    return `${this.pooling.name}(kernel_size=(${this.kernelSize}), stride=(${this.stride}), padding=(${this.padding}))`;
  }
}

export class MaxPool2d extends Pool2d {
  constructor(kernelSize: Pair, options: PoolOptions = {}) {
    super({ op: maxPool2d, kind: 'maxpool', name: 'MaxPool2d' }, kernelSize, options);
  }
}

export class AvgPool2d extends Pool2d {
  constructor(kernelSize: Pair, options: PoolOptions = {}) {
    super({ op: avgPool2d, kind: 'avgpool', name: 'AvgPool2d' }, kernelSize, options);
  }
}

export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];
  constructor(outputSize: Pair) {
    super();
    this.outputSize = pair(outputSize);
  }
  forward(x: Tensor): Tensor {
    checkRank(this, x, 4, 'N, C, H, W');
    const y = adaptiveAvgPool2d(x, this.outputSize);
    recordFlops(0, 0, x.size);
    recordLayer({ kind: 'adaptiveavgpool', input: [...x.shape], output: [...y.shape] });
    return y;
  }
  override describe(): string {
    return `AdaptiveAvgPool2d(output_size=(${this.outputSize}))`;
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
  override describe(): string {
    return `Flatten(start_dim=${this.startDim}, end_dim=${this.endDim})`;
  }
}

/**
 * Runs children in order; children are named 0, 1, ... unless added with addModule(name, m). A child
 * that can fuse with the ones after it (Module.fuseForward: BatchNorm2d with a ReLU and a max pool, a
 * memory-efficient dense block with the transition after it) runs them as one computation.
 */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.addModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    const mods = this.children();
    let y = x;
    for (let i = 0; i < mods.length; i++) {
      const fused = i + 1 < mods.length ? mods[i].fuseForward(y, mods.slice(i + 1)) : null;
      if (fused) {
        y = fused.y;
        i += fused.consumed;
      } else y = mods[i].forward(y);
    }
    return y;
  }
  /** Appends a module under the next free number. */
  append(m: Module): this {
    this.addModule(String(this.children().length), m);
    return this;
  }
  override describe(): string {
    return 'Sequential';
  }
}

/**
 * d2l's init_cnn: Xavier uniform on the weights of every Conv2d and Linear. On a lazy layer that has
 * no weights yet, the initialiser runs when its first forward call creates them.
 */
export function initCnn(m: Module): void {
  if (!(m instanceof Conv2d || m instanceof Linear)) return;
  if (m.initialised) xavierUniform_(m.weight);
  else m.deferInit(initCnn);
}
