// The memory-efficient dense block: one autograd op for a whole DenseNet block.
//
// Forward: one buffer [N, C0 + L*k, H, W] holds every channel the block produces. The input is copied
// into channels [0, C0); layer i reads the channel prefix [0, C0 + i*k) and its convolution writes
// straight into channels [C0 + i*k, C0 + (i+1)*k). Each pre-activation BN-ReLU is applied inside the
// convolution's input load (a per-channel scale and shift, then max with 0), so no normalised or
// rectified activation is stored. In training the batch statistics of a channel are computed once,
// when the channel is written, into a shared [3, C0 + L*k] table that every later layer reads; each
// layer's running statistics are updated from its prefix of that table, as PyTorch's BN layers would,
// in the same dispatch that makes the layer's prologue (scale and shift).
//
// DenseNet-BC layers have a bottleneck (BN-ReLU-1x1 conv to bnSize*k channels, then BN-ReLU-3x3 conv
// to k): the bottleneck output is the only per-layer intermediate. Forward frees it after use;
// backward recomputes it with one 1x1 convolution (its statistics are saved, so the recomputation is
// exact).
//
// Backward: one gradient buffer of the block's shape (a copy of the incoming gradient). From the last
// layer to the first: the layer's output gradient is its slice of the buffer (complete, because every
// later layer has already added into it); the weight-gradient kernel recomputes BN-ReLU on the fly; the
// input-gradient kernel masks by the recomputed pre-activation sign; BN's backward needs only per-channel
// sums of that masked gradient, and its dx is added straight into the prefix of the gradient buffer.
// Peak memory is about two block buffers plus one layer's temporaries: linear in depth.

import { defineOp } from '../autograd.js';
import { fmt } from '../shape.js';
import { empty, view, type Tensor } from '../tensor.js';
import {
  batchNormBackwardDxRaw, batchNormEvalStats, batchNormGradSums, batchNormPrologue, batchNormStats,
} from './batchnorm.js';
import { conv2dBiasGradRaw, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, type ConvPrologue } from './conv.js';
import { B, updateMap } from './map.js';
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

/** One layer of a dense block. d2l: BN-ReLU-3x3 conv (with bias). BC: BN-ReLU-1x1 conv, BN-ReLU-3x3 conv. */
export interface DenseLayerParams {
  norm1: BnParams;
  conv1: { weight: Tensor; bias: Tensor | null };
  /** DenseNet-BC's second BN and 3x3 conv (conv1 is then the 1x1 bottleneck). */
  norm2?: BnParams;
  conv2?: { weight: Tensor; bias: Tensor | null };
}

export interface DenseBlockOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

interface Attrs {
  layers: DenseLayerParams[];
  training: boolean;
  momentum: number;
  eps: number;
  growth: number;
}

/** The channel view [c0, c1) of an [N, C, H, W] buffer (no copy). */
function channels(buf: Tensor, c0: number, c1: number): Tensor {
  const [N, , H, W] = buf.shape;
  return view(buf, [N, c1 - c0, H, W], buf.strides, buf.offset + c0 * buf.strides[1]);
}

/**
 * dst = src for a channel view dst of a block buffer and a contiguous src of its shape: one buffer copy
 * per image (no dispatch), or an elementwise copy for other layouts.
 */
function copyInto(dst: Tensor, src: Tensor): void {
  const [N, C, H, W] = dst.shape;
  const per = C * H * W;
  if (!src.isContiguous || dst.strides[3] !== 1 || dst.strides[2] !== W || (C > 1 && dst.strides[1] !== H * W) || dst.storage === src.storage) {
    updateMap(dst, src, B.assign);
    return;
  }
  for (let n = 0; n < N; n++) copyBuffer(src.buffer, (src.offset + n * per) * 4, dst.buffer, (dst.offset + n * dst.strides[0]) * 4, per * 4);
}

/**
 * BN as scale and shift per channel (scale = gamma * invstd, shift = beta - mean * scale), with the
 * running statistics and batch counter updated in the same dispatch when training: one kernel per layer.
 */
function affine(a: Attrs, stats: Tensor, bn: BnParams, count: number): ConvPrologue {
  const running = a.training
    ? { runningMean: bn.runningMean, runningVar: bn.runningVar, numBatchesTracked: bn.numBatchesTracked, momentum: a.momentum, count }
    : null;
  const both = batchNormPrologue(stats, bn.gamma, bn.beta, running);
  const C = bn.gamma.shape[0];
  const pro = { scale: view(both, [C], [1], both.offset), shift: view(both, [C], [1], both.offset + C) };
  both.dispose();
  return pro;
}

/** Everything forward keeps for backward, per layer. */
interface LayerSaved {
  /** Statistics of the layer's input prefix (training: the shared table; eval: from running stats). */
  stats1: Tensor;
  pro1: ConvPrologue;
  stats2?: Tensor;
  pro2?: ConvPrologue;
}

/** Batch statistics of x (training) or the layer's running statistics (eval), as a [3, C] table. */
function bnStats(a: Attrs, x: Tensor, bn: BnParams): Tensor {
  return a.training ? batchNormStats(x, a.eps) : batchNormEvalStats(bn.runningMean, bn.runningVar, a.eps);
}

function forward(x: Tensor, a: Attrs, keep: LayerSaved[]): Tensor {
  const [N, C0, H, W] = x.shape;
  const k = a.growth;
  const L = a.layers.length;
  const total = C0 + L * k;
  const count = N * H * W;
  const buf = empty([N, total, H, W], 'dense-block');
  const head = channels(buf, 0, C0);
  copyInto(head, x);
  const shared = a.training ? empty([3, total], 'bn-stats') : null;
  if (shared) batchNormStats(head, a.eps, { stats: shared, channel: 0 });
  head.dispose();
  a.layers.forEach((layer, i) => {
    const cin = C0 + i * k;
    const xin = channels(buf, 0, cin);
    const out = channels(buf, cin, cin + k);
    // Training: the shared table, whose columns [0, cin) are this layer's input statistics.
    const stats1 = shared ?? bnStats(a, xin, layer.norm1);
    const pro1 = affine(a, stats1, layer.norm1, count);
    const saved: LayerSaved = { stats1, pro1 };
    if (!layer.norm2) {
      conv2dForwardRaw(xin, layer.conv1.weight, { bias: layer.conv1.bias, padding: layer.conv1.weight.shape[2] >> 1, prologue: pro1, out });
    } else {
      const mid = conv2dForwardRaw(xin, layer.conv1.weight, { bias: layer.conv1.bias, prologue: pro1 });
      const stats2 = bnStats(a, mid, layer.norm2);
      const pro2 = affine(a, stats2, layer.norm2, count);
      conv2dForwardRaw(mid, layer.conv2!.weight, { bias: layer.conv2!.bias, padding: layer.conv2!.weight.shape[2] >> 1, prologue: pro2, out });
      mid.dispose();
      Object.assign(saved, { stats2, pro2 });
    }
    if (shared) batchNormStats(out, a.eps, { stats: shared, channel: cin });
    keep.push(saved);
    xin.dispose();
    out.dispose();
  });
  return buf;
}

/** Gradients of a BN-ReLU-conv stage: adds the input gradient into `dxOut`, returns the parameter grads. */
function stageBackward(
  a: Attrs, x: Tensor, dy: Tensor, conv: { weight: Tensor; bias: Tensor | null }, bn: BnParams, stats: Tensor, pro: ConvPrologue,
  dxOut: Tensor, accumulate: boolean,
): { dgamma: Tensor; dbeta: Tensor; dw: Tensor | null; db: Tensor | null } {
  const padding = conv.weight.shape[2] >> 1;
  // Frozen parameters get no gradient (and cost nothing). The weight-gradient kernel also sums dy into
  // the bias gradient (one more GEMM column).
  const wantDb = !!conv.bias?.requiresGrad;
  const db = wantDb ? (conv.weight.requiresGrad ? empty([conv.weight.shape[0]]) : conv2dBiasGradRaw(dy)) : null;
  const dw = conv.weight.requiresGrad ? conv2dWeightGradRaw(x, dy, conv.weight.shape, { padding, prologue: pro, biasOut: db }) : null;
  // The gradient at the BN output, masked by the recomputed ReLU sign.
  const da = conv2dInputGradRaw(dy, conv.weight, x.shape, { padding, mask: { x, scale: pro.scale, shift: pro.shift } });
  const sums = batchNormGradSums(x, da, stats);
  const C = x.shape[1];
  // gamma's gradient is copied out of the sums by the same dispatch (autograd would copy a view at an offset).
  const dgamma = empty([C], 'bn-grad');
  batchNormBackwardDxRaw(x, da, stats, bn.gamma, sums, a.training, { out: dxOut, accumulate, dgammaOut: dgamma });
  da.dispose();
  const dbeta = view(sums, [C], [1], sums.offset);
  sums.dispose();
  return { dgamma, dbeta, dw, db };
}

function backward(a: Attrs, buf: Tensor, g: Tensor, saved: LayerSaved[], x: Tensor): Array<Tensor | null> {
  const [N, total, H, W] = buf.shape;
  const k = a.growth;
  const L = a.layers.length;
  const C0 = total - L * k;
  const gbuf = empty([N, total, H, W], 'dense-block-grad');
  copyInto(gbuf, g);
  const grads: Array<Tensor | null> = [];
  for (let i = L - 1; i >= 0; i--) {
    const layer = a.layers[i];
    const s = saved[i];
    const cin = C0 + i * k;
    const xin = channels(buf, 0, cin);
    const dy = channels(gbuf, cin, cin + k);
    const dxin = channels(gbuf, 0, cin);
    const layerGrads: Array<Tensor | null> = [];
    if (!layer.norm2) {
      const r = stageBackward(a, xin, dy, layer.conv1, layer.norm1, s.stats1, s.pro1, dxin, true);
      layerGrads.push(r.dgamma, r.dbeta, r.dw, r.db);
    } else {
      // Recompute the bottleneck output, then back through the 3x3 stage into a fresh gradient.
      const mid = conv2dForwardRaw(xin, layer.conv1.weight, { bias: layer.conv1.bias, prologue: s.pro1 });
      const dmid = empty(mid.shape, 'dense-block-grad');
      const r2 = stageBackward(a, mid, dy, layer.conv2!, layer.norm2, s.stats2!, s.pro2!, dmid, false);
      mid.dispose();
      const r1 = stageBackward(a, xin, dmid, layer.conv1, layer.norm1, s.stats1, s.pro1, dxin, true);
      dmid.dispose();
      layerGrads.push(r1.dgamma, r1.dbeta, r1.dw, r1.db, r2.dgamma, r2.dbeta, r2.dw, r2.db);
    }
    grads.unshift(...layerGrads);
    xin.dispose();
    dy.dispose();
    dxin.dispose();
  }
  // The input gradient: a view of the gradient buffer's head (the view keeps the buffer alive).
  const dx = x.requiresGrad ? channels(gbuf, 0, C0) : null;
  gbuf.dispose();
  return [dx, ...grads];
}

/** Inputs of the op: x, then per layer gamma1, beta1, w1, b1 (and gamma2, beta2, w2, b2 for BC). */
function flatten(layers: DenseLayerParams[]): Array<Tensor | null> {
  const out: Array<Tensor | null> = [];
  for (const l of layers) {
    out.push(l.norm1.gamma, l.norm1.beta, l.conv1.weight, l.conv1.bias);
    if (l.norm2) out.push(l.norm2.gamma, l.norm2.beta, l.conv2!.weight, l.conv2!.bias);
  }
  return out;
}

const denseBlockOp = defineOp<Attrs>({
  name: 'denseBlock',
  forward: ([x], a, savedTensors) => {
    const keep: LayerSaved[] = [];
    const out = forward(x, a, keep);
    for (const s of keep) {
      savedTensors.push(s.stats1, s.pro1.scale, s.pro1.shift);
      if (s.stats2) savedTensors.push(s.stats2, s.pro2!.scale, s.pro2!.shift);
    }
    return out;
  },
  backward: ({ inputs, attrs, output, saved: flat }, g) => {
    // Rebuild each layer's saved statistics and prologues from the flat list forward wrote.
    let at = 0;
    const saved: LayerSaved[] = attrs.layers.map((l) => {
      const s: LayerSaved = { stats1: flat[at], pro1: { scale: flat[at + 1], shift: flat[at + 2] } };
      at += 3;
      if (l.norm2) {
        Object.assign(s, { stats2: flat[at], pro2: { scale: flat[at + 1], shift: flat[at + 2] } });
        at += 3;
      }
      return s;
    });
    const grads = backward(attrs, output, g, saved, inputs[0]);
    // Inputs without a tensor (no bias) were left out of `inputs`: drop their gradients too.
    const present = flatten(attrs.layers);
    const out: Array<Tensor | null> = [grads[0]];
    present.forEach((t, i) => {
      if (t) out.push(grads[i + 1]);
      else grads[i + 1]?.dispose();
    });
    return out;
  },
});

/**
 * A whole dense block as one op: the output is the concatenation [x, y1, ..., yL] on the channel axis,
 * computed in one shared buffer (see the header). Differentiable in x and every layer's parameters.
 */
export function denseBlock(x: Tensor, layers: DenseLayerParams[], { training, momentum = 0.1, eps = 1e-5 }: DenseBlockOptions): Tensor {
  if (x.ndim !== 4) throw new Error(`denseBlock: expected x of shape [N, C, H, W], got ${fmt(x.shape)}`);
  if (!layers.length) throw new Error('denseBlock: a block needs at least one layer');
  const k = (layers[0].conv2 ?? layers[0].conv1).weight.shape[0];
  layers.forEach((l, i) => {
    const cin = x.shape[1] + i * k;
    const w1 = l.conv1.weight;
    if (w1.shape[1] !== cin || l.norm1.gamma.shape[0] !== cin) {
      throw new Error(`denseBlock: layer ${i} expects ${cin} input channels, its weight has shape ${fmt(w1.shape)} and its BN ${fmt(l.norm1.gamma.shape)}`);
    }
    const last = l.conv2 ?? l.conv1;
    if (last.weight.shape[0] !== k || last.weight.shape[2] % 2 !== 1) throw new Error(`denseBlock: layer ${i} must output ${k} channels with an odd kernel, got ${fmt(last.weight.shape)}`);
  });
  if (training && x.shape[0] * x.shape[2] * x.shape[3] <= 1) {
    throw new Error(`denseBlock: expected more than 1 value per channel when training, got input of shape ${fmt(x.shape)}`);
  }
  const inputs = [x, ...flatten(layers).filter((t): t is Tensor => t !== null)];
  return denseBlockOp(inputs, { layers, training, momentum, eps, growth: k });
}
