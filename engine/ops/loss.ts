// Cross-entropy loss (torch.nn.functional.cross_entropy with class-index targets, reduction 'mean').
// Forward (one workgroup) saves each row's log-sum-exp; backward is one elementwise kernel.
// Labels given as host arrays are checked on the host; a label tensor is not read back: a label that is
// not an integer in [0, C) makes the loss NaN, and a NaN loss makes the whole gradient NaN, so that no
// optimiser step on it can pass as a finite one.

import { defineOp } from '../autograd.js';
import { dispatch, f32bits, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { fmt } from '../shape.js';
import { empty, fromData, scope, Tensor } from '../tensor.js';
import { checkFloat32 } from './check.js';
import { add, mulScalar, neg } from './elementwise.js';
import { mean } from './reduce.js';
import { logSoftmax } from './softmax.js';
import ceSrc from '../../shaders/cross_entropy.wgsl';

const ceShader: KernelSource = { file: 'cross_entropy.wgsl', source: ceSrc };

const NAN_BITS = 0x7fc00000;

function ceParams(logits: Tensor, labels: Tensor, gOffset: number): Uint32Array {
  const [B, C] = logits.shape;
  const p = new Uint32Array(PARAM_WORDS);
  p.set([B, C, logits.offset, logits.strides[0], logits.strides[1], labels.offset, labels.strides[0], gOffset, f32bits(1 / B), NAN_BITS]);
  return p;
}

const crossEntropyOp = defineOp<{ labels: Tensor; uploaded: boolean }>({
  name: 'crossEntropy',
  forward: ([logits], { labels, uploaded }, saved) => {
    const B = logits.shape[0];
    const out = empty([]);
    // Row b's log-sum-exp, then the loss itself at [B] (backward reads it to spread a NaN loss).
    const lse = empty([B + 1], 'ce-lse');
    dispatch(
      { shader: ceShader, entry: 'ce_fwd' },
      { params: ceParams(logits, labels, 0), buffers: [logits.buffer, labels.buffer, logits.buffer, lse.buffer, out.buffer], workgroups: [1] },
    );
    saved.push(lse);
    // Labels uploaded by crossEntropy() belong to the op: freed with the graph, or at once without one.
    if (uploaded) saved.push(labels);
    return out;
  },
  backward: ({ inputs: [logits], attrs: { labels }, saved: [lse] }, g) => {
    const [B, C] = logits.shape;
    const dl = empty([B, C]);
    dispatch(
      { shader: ceShader, entry: 'ce_bwd' },
      { params: ceParams(logits, labels, g.offset), buffers: [logits.buffer, labels.buffer, g.buffer, lse.buffer, dl.buffer], workgroups: grid1d(Math.ceil((B * C) / 256)) },
    );
    return [dl];
  },
});

export interface CrossEntropyOptions {
  /** Mixes the one-hot target with the uniform distribution: (1 - e) * onehot + e / C (torch's label_smoothing). */
  labelSmoothing?: number;
}

/**
 * Mean cross-entropy of `logits` [B, C] against class indices: a Tensor [B] of integer-valued float32
 * (a label out of range, negative, fractional or NaN gives a NaN loss and a NaN gradient; not checked on
 * the host), or host numbers (checked here, then uploaded).
 */
export function crossEntropy(logits: Tensor, labels: Tensor | Int32Array | readonly number[], { labelSmoothing = 0 }: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  if (typeof labelSmoothing !== 'number' || !(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  if (!(logits instanceof Tensor)) throw new Error(`${op}: logits must be a Tensor`);
  if (logits.ndim !== 2 || logits.shape[0] === 0 || logits.shape[1] === 0) {
    throw new Error(`${op}: expected logits of shape [B, C] with B, C > 0, got ${fmt(logits.shape)}`);
  }
  checkFloat32(op, 'logits', logits);
  const [B, C] = logits.shape;
  let lab: Tensor;
  if (labels instanceof Tensor) {
    checkFloat32(op, 'labels', labels);
    if (labels.ndim !== 1 || labels.shape[0] !== B) throw new Error(`${op}: labels have shape ${fmt(labels.shape)}, expected [${B}] for logits of shape ${fmt(logits.shape)}`);
    lab = labels;
  } else {
    if (labels.length !== B) throw new Error(`${op}: ${labels.length} labels for logits of shape ${fmt(logits.shape)}`);
    for (let i = 0; i < B; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y >= C) {
        throw new Error(`${op}: label ${i} is ${y}; expected an integer class index in [0, ${C}) for logits of shape ${fmt(logits.shape)}`);
      }
    }
    lab = fromData(Float32Array.from(labels), [B], 'labels');
  }
  const hard = crossEntropyOp([logits], { labels: lab, uploaded: lab !== labels });
  // Label smoothing (PyTorch's): (1 - e) * loss + e * mean over rows and classes of -logSoftmax(logits).
  const smooth = () => add(mulScalar(hard, 1 - labelSmoothing), mulScalar(mean(neg(logSoftmax(logits, 1))), labelSmoothing));
  const out = labelSmoothing === 0 ? hard : hard.node ? smooth() : scope(smooth);
  if (out !== hard && !hard.node) hard.dispose();
  return out;
}
