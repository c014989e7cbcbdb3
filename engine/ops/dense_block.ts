// The memory-efficient dense block: one autograd op for a whole DenseNet block.
//
// Forward: one buffer [N, C0 + L*k, H, W] holds every channel the block produces. The input is copied
// into channels [0, C0); layer i reads the channel prefix [0, C0 + i*k) and its convolution writes
// straight into channels [C0 + i*k, C0 + (i+1)*k). Each pre-activation BN-ReLU is applied inside the
// convolution's input load (a per-channel scale and shift, then max with 0), so no normalised or
// rectified activation is stored. In training the batch statistics of a channel are computed once,
// into a shared [3, C0 + L*k] table that every later layer reads: by the next layer's one bookkeeping
// dispatch, which first computes the statistics of the channels the layer before wrote, then updates the
// layer's running statistics from its prefix of the table (as PyTorch's BN layers would) and makes its
// prologue (scale and shift).
//
// A layer is a list of BN-ReLU-conv stages: one for d2l (3x3 conv to k channels), two for DenseNet-BC
// (a 1x1 bottleneck to bnSize*k channels, then 3x3 to k). Only the last stage writes into the block
// buffer; an earlier stage's output is the only per-layer intermediate. Forward frees it after use;
// backward recomputes it with one convolution (its statistics are saved, so the recomputation is exact).
//
// Backward: one gradient buffer of the block's shape (a copy of the incoming gradient). From the last
// layer to the first: the layer's output gradient is its slice of the buffer (complete, because every
// later layer has already added into it); the weight-gradient kernel recomputes BN-ReLU on the fly; the
// input-gradient kernel masks by the recomputed pre-activation sign; BN's backward needs only per-channel
// sums of that masked gradient, and its dx is added straight into the prefix of the gradient buffer.
// Peak memory is about two block buffers plus one layer's temporaries: linear in depth.
//
// A tail (the transition after the block: BN-ReLU-conv, then an average pooling) can run inside the op
// as one more stage that reads every channel of the buffer: the op then returns the tail's output, the
// transition's BN-ReLU output is never stored, the conv's output only until it is pooled, and the
// transition's input gradient is written straight into the block's gradient buffer (no gradient tensor
// of the block's output, no copy of it). A 1x1 tail conv with an unpadded pooling runs after the pooling
// instead (poolsFirst: they commute), on a quarter of the pixels for 2x2 pooling.
//
// Storage type: the block buffer, its gradient buffer, the bottleneck outputs and the per-layer
// gradient temporaries take the dtype of the input x (float16 under mixed precision: half the bytes);
// statistics, prologues and parameter gradients are float32, and every kernel computes in float32.

import { defineOp } from '../autograd.js';
import { fmt } from '../shape.js';
import { empty, view, type Tensor } from '../tensor.js';
import {
  batchNormBackwardRaw, batchNormPrologue,
} from './batchnorm.js';
import { conv2dBiasGradRaw, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, type ConvPrologue } from './conv.js';
import { assignMap } from './map.js';
import { avgPoolRaw, type AvgPoolGeometry, type Pool2dOptions } from './pool2d.js';
import { copyBuffer } from '../runtime.js';

/** A pre-activation batch norm's tensors: affine weight and bias, running mean and variance, batch counter. */
export interface BnParams {
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  /** num_batches_tracked (one float), advanced with the running statistics in training. */
  numBatchesTracked?: Tensor | null;
}

/** One BN-ReLU-conv stage: the convolution reads relu(batchnorm(x)). */
export interface DenseStage {
  norm: BnParams;
  conv: { weight: Tensor; bias: Tensor | null };
}

/** One layer of a dense block: its stages in order; the last one outputs the layer's k new channels. */
export interface DenseLayerParams {
  stages: readonly DenseStage[];
}

export interface DenseBlockOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** A BN-ReLU-conv stage on the whole block output (a transition's), run inside the op: the op returns its conv's output, */
  tail?: DenseStage | null;
  /** or that output average-pooled with these options. */
  tailPool?: Pool2dOptions | null;
}

interface Attrs {
  layers: readonly DenseLayerParams[];
  training: boolean;
  momentum: number;
  eps: number;
  growth: number;
  tail: DenseStage | null;
  tailPool: AvgPoolGeometry | null;
}

/** What forward keeps for backward, per stage: the statistics of its input and its BN-ReLU prologue. */
interface StageSaved {
  /** Training: the first stage's is the block's shared table; eval: from the running statistics. */
  stats: Tensor;
  pro: ConvPrologue;
}

/** With a tail, what its backward needs: the block buffer (no longer the op's output) and the tail's stage. */
interface TailSaved {
  buf: Tensor;
  tail: StageSaved;
}

/** Saved per layer, per stage; then, with a tail, its entry. */
type Saved = Array<StageSaved[] | TailSaved>;

/** The channel view [c0, c1) of an [N, C, H, W] buffer (no copy). */
function channels(buf: Tensor, c0: number, c1: number): Tensor {
  const [N, , H, W] = buf.shape;
  return view(buf, [N, c1 - c0, H, W], buf.strides, buf.offset + c0 * buf.strides[1]);
}

/**
 * dst = src for a channel view dst of a block buffer and a contiguous src of its shape: one buffer copy
 * per image (no dispatch) when both have the same dtype and the copies are whole 4-byte words, else an
 * elementwise copy (which also converts between float32 and float16).
 */
function copyInto(dst: Tensor, src: Tensor): void {
  const [N, C, H, W] = dst.shape;
  const per = C * H * W;
  const b = dst.itemBytes;
  const words = (elements: number) => (elements * b) % 4 === 0;
  const rowsOk = dst.strides[3] === 1 && dst.strides[2] === W && (C === 1 || dst.strides[1] === H * W);
  const aligned = words(per) && words(src.offset) && words(dst.offset) && words(dst.strides[0]);
  if (!src.isContiguous || !rowsOk || src.dtype !== dst.dtype || !aligned || dst.storage === src.storage) {
    assignMap(dst, src);
    return;
  }
  for (let n = 0; n < N; n++) copyBuffer(src.buffer, (src.offset + n * per) * b, dst.buffer, (dst.offset + n * dst.strides[0]) * b, per * b);
}

/**
 * BN as scale and shift per channel (scale = gamma * invstd, shift = beta - mean * scale), with the
 * running statistics and batch counter updated in the same dispatch when training, and the statistics
 * of the `fresh` channels (the last ones of the stage's input, none computed yet) computed first, into
 * `stats`: a layer's batch-norm bookkeeping is one kernel.
 */
function affine(a: Attrs, stats: Tensor, bn: BnParams, count: number, fresh: Tensor | null = null): ConvPrologue {
  const running = a.training
    ? { runningMean: bn.runningMean, runningVar: bn.runningVar, numBatchesTracked: bn.numBatchesTracked, momentum: a.momentum, count }
    : null;
  const fromRunning = a.training ? null : { runningMean: bn.runningMean, runningVar: bn.runningVar, eps: a.eps };
  const both = batchNormPrologue(stats, bn.gamma, bn.beta, running, { fresh: fresh && { x: fresh, eps: a.eps }, fromRunning });
  const C = bn.gamma.shape[0];
  const pro = { scale: view(both, [C], [1], both.offset), shift: view(both, [C], [1], both.offset + C) };
  both.dispose();
  return pro;
}



/** A stage's convolution of x (prologue applied), into `out` when given. */
function stageConv(x: Tensor, st: DenseStage, pro: ConvPrologue, out?: Tensor): Tensor {
  return conv2dForwardRaw(x, st.conv.weight, { bias: st.conv.bias, padding: st.conv.weight.shape[2] >> 1, prologue: pro, out });
}

function forward(x: Tensor, a: Attrs, saved: Saved): Tensor {
  const [N, C0, H, W] = x.shape;
  const k = a.growth;
  const L = a.layers.length;
  const total = C0 + L * k;
  const count = N * H * W;
  const buf = empty([N, total, H, W], 'dense-block', x.dtype);
  const head = channels(buf, 0, C0);
  copyInto(head, x);
  const shared = a.training ? empty([3, total], 'bn-stats') : null;
  head.dispose();
  a.layers.forEach(({ stages }, i) => {
    const cin = C0 + i * k;
    const xin = channels(buf, 0, cin);
    const out = channels(buf, cin, cin + k);
    const layerSaved: StageSaved[] = [];
    let input = xin;
    stages.forEach((st, j) => {
      // Training: the first stage reads the shared table, whose columns [0, cin) are this layer's input
      // statistics: those of the channels the layer before wrote (the block input's, for the first
      // layer) are computed by the same dispatch that makes the prologue and updates the running
      // statistics. A later stage's input (the bottleneck output) is all new.
      let stats: Tensor;
      let fresh: Tensor | null = null;
      // Eval: affine() fills the table from the running statistics in its one dispatch.
      if (!shared) stats = empty([3, input.shape[1]], 'bn-stats');
      else if (j === 0) {
        stats = shared;
        fresh = channels(buf, i === 0 ? 0 : cin - k, cin);
      } else {
        stats = empty([3, input.shape[1]], 'bn-stats');
        fresh = input;
      }
      const pro = affine(a, stats, st.norm, count, fresh);
      if (fresh && fresh !== input) fresh.dispose();
      layerSaved.push({ stats, pro });
      const last = j === stages.length - 1;
      const y = stageConv(input, st, pro, last ? out : undefined);
      if (input !== xin) input.dispose();
      if (!last) input = y;
    });
    saved.push(layerSaved);
    xin.dispose();
    out.dispose();
  });
  if (!a.tail) return buf;
  const stats = shared ?? empty([3, total], 'bn-stats');
  const last = shared ? channels(buf, total - k, total) : null;
  const pro = affine(a, stats, a.tail.norm, count, last);
  last?.dispose();
  saved.push({ buf, tail: { stats, pro } });
  if (poolsFirst(a)) {
    const pooled = avgPoolRaw.forward(buf, a.tailPool!, pro);
    const y = conv2dForwardRaw(pooled, a.tail.conv.weight, { bias: a.tail.conv.bias, padding: 0 });
    pooled.dispose();
    return y;
  }
  const y = stageConv(buf, a.tail, pro);
  if (!a.tailPool) return y;
  const pooled = avgPoolRaw.forward(y, a.tailPool);
  y.dispose();
  return pooled;
}

/**
 * Whether the tail pools before its conv: a 1x1 conv (stride 1, no padding) and an average pooling
 * without padding commute (every window averages real pixels, with weights summing to 1, so the bias
 * passes through too), and the conv then runs on a quarter of the pixels (2x2 pooling): the transition's
 * conv, its input gradient and its weight gradient each cost a quarter, and the pooling reads the BN-ReLU
 * as its prologue. The same function up to float32 rounding (the sums are reassociated).
 */
function poolsFirst(a: Attrs): boolean {
  const w = a.tail?.conv.weight;
  return !!w && !!a.tailPool && w.shape[2] === 1 && w.shape[3] === 1 && a.tailPool.ph === 0 && a.tailPool.pw === 0;
}

/**
 * The gradients of a stage's conv parameters from dy and its input x (read through `prologue`, the
 * BN-ReLU, when given). Frozen parameters get no gradient (and cost nothing). The weight-gradient
 * kernel also sums dy into the bias gradient (one more GEMM column).
 */
function convParamGrads(x: Tensor, dy: Tensor, conv: DenseStage['conv'], prologue: ConvPrologue | undefined, grads: Map<Tensor, Tensor | null>): void {
  const padding = conv.weight.shape[2] >> 1;
  const wantDb = !!conv.bias?.requiresGrad;
  const db = wantDb ? (conv.weight.requiresGrad ? empty([conv.weight.shape[0]]) : conv2dBiasGradRaw(dy)) : null;
  if (conv.bias) grads.set(conv.bias, db);
  grads.set(conv.weight, conv.weight.requiresGrad ? conv2dWeightGradRaw(x, dy, conv.weight.shape, { padding, prologue, biasOut: db }) : null);
}

/**
 * The batch norm's backward from da, the gradient at the ReLU's output (masked here by the ReLU's
 * recomputed sign: reluBeta): adds the input gradient into `dxOut`, sets gamma's and beta's gradients.
 */
function bnGrads(a: Attrs, x: Tensor, da: Tensor, bn: DenseStage['norm'], s: StageSaved, dxOut: Tensor, accumulate: boolean, grads: Map<Tensor, Tensor | null>): void {
  const C = x.shape[1];
  // gamma's gradient is copied out of the sums by the same dispatch (autograd would copy a view at an offset).
  const dgamma = empty([C], 'bn-grad');
  const { sums } = batchNormBackwardRaw(x, da, s.stats, bn.gamma, a.training, { out: dxOut, accumulate, dgammaOut: dgamma, reluBeta: bn.beta });
  grads.set(bn.beta, view(sums, [C], [1], sums.offset));
  grads.set(bn.gamma, dgamma);
  sums.dispose();
}

/** Gradients of a BN-ReLU-conv stage: adds the input gradient into `dxOut`, sets the parameters' gradients. */
function stageBackward(
  a: Attrs, x: Tensor, dy: Tensor, st: DenseStage, s: StageSaved, dxOut: Tensor, accumulate: boolean, grads: Map<Tensor, Tensor | null>,
): void {
  convParamGrads(x, dy, st.conv, s.pro, grads);
  // The gradient at the ReLU's output, unmasked: the batch norm's backward masks it where it reads x
  // anyway (masked in the input gradient's stores instead, every output element cost one more load of x
  // there: on lavapipe the seed step's input gradients took ~1.07x the time).
  const da = conv2dInputGradRaw(dy, st.conv.weight, x.shape, { padding: st.conv.weight.shape[2] >> 1 });
  bnGrads(a, x, da, st.norm, s, dxOut, accumulate, grads);
  da.dispose();
}

/**
 * The backward of a tail that pools first (poolsFirst): the pooled BN-ReLU input is recomputed (a
 * quarter of the buffer, for the time of the conv's gradients), the conv's input gradient is spread
 * back by the pooling's backward to the ReLU's output, and the batch norm's backward writes dxOut.
 * `release` frees dy as soon as the conv's gradients are taken.
 */
function pooledTailBackward(a: Attrs, buf: Tensor, dy: Tensor, s: StageSaved, dxOut: Tensor, grads: Map<Tensor, Tensor | null>, release: () => void): void {
  const { conv, norm } = a.tail!;
  const pooled = avgPoolRaw.forward(buf, a.tailPool!, s.pro);
  convParamGrads(pooled, dy, conv, undefined, grads);
  const dpooled = conv2dInputGradRaw(dy, conv.weight, pooled.shape, { padding: 0 });
  pooled.dispose();
  release();
  const da = avgPoolRaw.backward(dpooled, buf.shape, a.tailPool!, buf.dtype);
  dpooled.dispose();
  bnGrads(a, buf, da, norm, s, dxOut, false, grads);
  da.dispose();
}

/**
 * The gradient of the block input and of every parameter, by tensor. `g` is the gradient of the op's
 * output: the block buffer's, or with a tail, the tail conv's.
 */
function backward(a: Attrs, output: Tensor, g: Tensor, saved: Saved, x: Tensor, release: () => void): Map<Tensor, Tensor | null> {
  const k = a.growth;
  const L = a.layers.length;
  const tailSaved = a.tail ? (saved[L] as TailSaved) : null;
  const buf = tailSaved?.buf ?? output;
  const [N, total, H, W] = buf.shape;
  const C0 = total - L * k;
  const gbuf = empty([N, total, H, W], 'dense-block-grad', buf.dtype);
  const grads = new Map<Tensor, Tensor | null>();
  // The tail's input gradient is the block output's: written into the gradient buffer (every channel).
  if (a.tail && tailSaved && poolsFirst(a)) pooledTailBackward(a, buf, g, tailSaved.tail, gbuf, grads, release);
  else if (a.tail && tailSaved) {
    const gy = a.tailPool ? avgPoolRaw.backward(g, [N, a.tail.conv.weight.shape[0], H, W], a.tailPool, buf.dtype) : g;
    if (gy !== g) release();
    stageBackward(a, buf, gy, a.tail, tailSaved.tail, gbuf, false, grads);
    if (gy !== g) gy.dispose();
  } else copyInto(gbuf, g);
  release(); // g is in the gradient buffer now: it need not live through the layers' backward
  for (let i = L - 1; i >= 0; i--) {
    const { stages } = a.layers[i];
    const s = saved[i] as StageSaved[];
    const cin = C0 + i * k;
    const xin = channels(buf, 0, cin);
    const dy = channels(gbuf, cin, cin + k);
    const dxin = channels(gbuf, 0, cin);
    // Recompute the inputs of the later stages (the bottleneck output), then back from the last stage
    // to the first, each into a fresh gradient; the first adds into the block's gradient buffer.
    const inputs = [xin];
    for (let j = 0; j < stages.length - 1; j++) inputs.push(stageConv(inputs[j], stages[j], s[j].pro));
    let dyj = dy;
    for (let j = stages.length - 1; j >= 0; j--) {
      const dx = j === 0 ? dxin : empty(inputs[j].shape, 'dense-block-grad', inputs[j].dtype);
      stageBackward(a, inputs[j], dyj, stages[j], s[j], dx, j === 0, grads);
      if (j > 0) inputs[j].dispose();
      if (dyj !== dy) dyj.dispose();
      dyj = dx;
    }
    xin.dispose();
    dy.dispose();
    dxin.dispose();
  }
  // The input gradient: a view of the gradient buffer's head (the view keeps the buffer alive until the
  // op before consumes it).
  grads.set(x, x.requiresGrad ? channels(gbuf, 0, C0) : null);
  gbuf.dispose();
  return grads;
}

/** The op's inputs after x: every stage's gamma, beta, weight and bias (when it has one). */
function parameters(layers: readonly DenseLayerParams[]): Tensor[] {
  return layers.flatMap(({ stages }) => stages.flatMap(({ norm, conv }) => (conv.bias ? [norm.gamma, norm.beta, conv.weight, conv.bias] : [norm.gamma, norm.beta, conv.weight])));
}

/** The op's parameter inputs: the layers', then the tail's. */
function allParameters(a: Pick<Attrs, 'layers' | 'tail'>): Tensor[] {
  return parameters(a.tail ? [...a.layers, { stages: [a.tail] }] : a.layers);
}

const denseBlockOp = defineOp<Attrs, Saved>({
  name: 'denseBlock',
  forward: ([x], a, saved) => forward(x, a, saved),
  backward: ({ inputs, attrs, output, saved }, g, release) => {
    const grads = backward(attrs, output, g, saved, inputs[0], release);
    return inputs.map((t) => grads.get(t) ?? null);
  },
});

/**
 * A whole dense block as one op: the output is the concatenation [x, y1, ..., yL] on the channel axis,
 * computed in one shared buffer (see the header); with a tail, conv(relu(bn(that))) of the tail's stage.
 * Differentiable in x and every layer's (and the tail's) parameters.
 */
export function denseBlock(
  x: Tensor, layers: readonly DenseLayerParams[], { training, momentum = 0.1, eps = 1e-5, tail = null, tailPool = null }: DenseBlockOptions,
): Tensor {
  if (x.ndim !== 4) throw new Error(`denseBlock: expected x of shape [N, C, H, W], got ${fmt(x.shape)}`);
  if (!layers.length || layers.some((l) => !l.stages.length)) throw new Error('denseBlock: a block needs at least one layer, and each layer at least one stage');
  const lastConv = (l: DenseLayerParams) => l.stages[l.stages.length - 1].conv;
  const k = lastConv(layers[0]).weight.shape[0];
  layers.forEach((l, i) => {
    let c = x.shape[1] + i * k;
    l.stages.forEach(({ norm, conv }, j) => {
      const w = conv.weight;
      if (w.shape[1] !== c || norm.gamma.shape[0] !== c) {
        throw new Error(`denseBlock: layer ${i} stage ${j} expects ${c} input channels, its weight has shape ${fmt(w.shape)} and its BN ${fmt(norm.gamma.shape)}`);
      }
      if (w.shape[2] % 2 !== 1) throw new Error(`denseBlock: layer ${i} stage ${j} needs an odd kernel, got ${fmt(w.shape)}`);
      c = w.shape[0];
    });
    if (c !== k) throw new Error(`denseBlock: layer ${i} must output ${k} channels, got ${fmt(lastConv(l).weight.shape)}`);
  });
  if (tail) {
    const total = x.shape[1] + layers.length * k;
    const w = tail.conv.weight;
    if (w.shape[1] !== total || tail.norm.gamma.shape[0] !== total) {
      throw new Error(`denseBlock: the tail reads all ${total} channels of the block, its weight has shape ${fmt(w.shape)} and its BN ${fmt(tail.norm.gamma.shape)}`);
    }
    if (w.shape[2] % 2 !== 1) throw new Error(`denseBlock: the tail needs an odd kernel, got ${fmt(w.shape)}`);
  } else if (tailPool) throw new Error('denseBlock: tailPool pools the tail: give a tail too');
  const pool = tail && tailPool ? avgPoolRaw.geometry('avgPool2d (the tail of denseBlock)', [x.shape[0], tail.conv.weight.shape[0], x.shape[2], x.shape[3]], tailPool) : null;
  if (training && x.shape[0] * x.shape[2] * x.shape[3] <= 1) {
    throw new Error(`denseBlock: expected more than 1 value per channel when training, got input of shape ${fmt(x.shape)}`);
  }
  return denseBlockOp([x, ...allParameters({ layers, tail })], { layers, training, momentum, eps, growth: k, tail, tailPool: pool });
}
