// Multi-tensor optimiser kernels: one dispatch updates a whole range of packed parameters.
//
// WebGPU binds whole buffers, and every parameter and gradient lives in its own pooled buffer, so a
// kernel cannot walk a list of them. The optimiser (nn/optim.ts) therefore keeps its state (momentum,
// moments) packed in one flat buffer per parameter group, with each parameter at a fixed element offset;
// before a step it packs the parameters and gradients at the same offsets into two flat scratch tensors
// (`packInto`: one buffer-to-buffer copy each, no dispatch), runs one update dispatch over the range
// (`sgdUpdate` / `adamUpdate`), and copies the parameters back (`unpackFrom`). No autograd.

import { copyBuffer, dispatch, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { fmt } from '../shape.js';
import { empty, keep, type Tensor } from '../tensor.js';
import sgdSrc from '../../shaders/sgd.wgsl';
import adamSrc from '../../shaders/adam.wgsl';

const sgdShader: KernelSource = { file: 'sgd.wgsl', source: sgdSrc };
const adamShader: KernelSource = { file: 'adam.wgsl', source: adamSrc };
/** Every WGSL file of this module (tests compile each one). */
export const optimShaders = [sgdShader, adamShader];

const f32bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];

function checkFlat(op: string, name: string, t: Tensor, end: number): void {
  t.assertAlive(op);
  if (t.ndim !== 1 || !t.isContiguous || t.shape[0] < end) throw new Error(`${op}: ${name} must be a contiguous 1-D tensor of at least ${end} elements, got ${fmt(t.shape)}`);
}

/** Copies each tensor (contiguous) into `flat` starting at element `offsets[i]` (copy commands, no dispatch). */
export function packInto(flat: Tensor, ts: readonly Tensor[], offsets: readonly number[]): void {
  ts.forEach((t, i) => {
    t.assertAlive('packInto');
    if (!t.isContiguous) throw new Error(`packInto: ${t} must be contiguous`);
    checkFlat('packInto', 'the packed tensor', flat, offsets[i] + t.size);
    copyBuffer(t.buffer, t.offset * 4, flat.buffer, (flat.offset + offsets[i]) * 4, t.size * 4);
  });
}

/** Copies elements [offsets[i], offsets[i] + size) of `flat` back into each tensor (contiguous). */
export function unpackFrom(flat: Tensor, ts: readonly Tensor[], offsets: readonly number[]): void {
  ts.forEach((t, i) => {
    t.assertAlive('unpackFrom');
    if (!t.isContiguous) throw new Error(`unpackFrom: ${t} must be contiguous`);
    checkFlat('unpackFrom', 'the packed tensor', flat, offsets[i] + t.size);
    copyBuffer(flat.buffer, (flat.offset + offsets[i]) * 4, t.buffer, t.offset * 4, t.size * 4);
  });
}

/** Elements [start, start + count) of the packed buffers, with offset 0 (flat tensors from empty()). */
export interface PackedRange {
  start: number;
  count: number;
}

export interface SgdUpdate {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  /** The momentum buffers of this range are uninitialised: buf = d (PyTorch's first step). */
  first: boolean;
}

function checkRange(op: string, r: PackedRange, ...flats: Array<[string, Tensor]>): void {
  if (!Number.isInteger(r.start) || !Number.isInteger(r.count) || r.start < 0 || r.count < 0) throw new Error(`${op}: invalid range start ${r.start}, count ${r.count}`);
  for (const [name, t] of flats) {
    checkFlat(op, name, t, r.start + r.count);
    if (t.offset !== 0) throw new Error(`${op}: ${name} must start at element 0 of its buffer`);
  }
}

// Bound as BUF when there is no momentum (never read or written then; a binding needs some buffer).
let dummy: Tensor | null = null;

/** One SGD step over a range of packed parameters `p`, gradients `g` and momentum buffers `buf`. */
export function sgdUpdate(p: Tensor, g: Tensor, buf: Tensor | null, r: PackedRange, o: SgdUpdate): void {
  const op = 'sgdUpdate';
  checkRange(op, r, ['the parameters', p], ['the gradients', g], ...(buf ? [['the momentum buffers', buf] as [string, Tensor]] : []));
  if (o.momentum !== 0 && !buf) throw new Error(`${op}: momentum ${o.momentum} needs momentum buffers`);
  if (!r.count) return;
  const pr = new Uint32Array(PARAM_WORDS);
  const flags = (o.momentum !== 0 ? 1 : 0) | (o.first ? 2 : 0) | (o.nesterov ? 4 : 0);
  pr.set([r.count, r.start, f32bits(o.lr), f32bits(o.momentum), f32bits(1 - o.dampening), f32bits(o.weightDecay), flags]);
  dispatch({ shader: sgdShader, entry: 'sgd_step' }, { params: pr, buffers: [g.buffer, p.buffer, (buf ?? (dummy ??= keep(empty([1], 'sgd-momentum')))).buffer], workgroups: grid1d(Math.ceil(r.count / 1024)) });
}

export interface AdamUpdate {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay the parameters by 1 - lr * weightDecay instead of adding weightDecay * p to the gradient. */
  decoupled: boolean;
  /** The step number after this update (1 on the first step), for the bias corrections. */
  step: number;
}

/** One Adam/AdamW step over a range of packed parameters, gradients and moments. */
export function adamUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, r: PackedRange, o: AdamUpdate): void {
  checkRange('adamUpdate', r, ['the parameters', p], ['the gradients', g], ['exp_avg', m], ['exp_avg_sq', v]);
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`adamUpdate: step must be an integer >= 1, got ${o.step}`);
  if (!r.count) return;
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const pr = new Uint32Array(PARAM_WORDS);
  pr.set([
    r.count, r.start, f32bits(o.lr), f32bits(o.weightDecay), f32bits(o.beta1), f32bits(o.beta2), f32bits(o.eps),
    f32bits(o.lr / bc1), f32bits(Math.sqrt(bc2)), o.decoupled ? 1 : 0, f32bits(1 - o.lr * o.weightDecay), f32bits(1 - o.beta1), f32bits(1 - o.beta2),
  ]);
  dispatch({ shader: adamShader, entry: 'adam_step' }, { params: pr, buffers: [g.buffer, p.buffer, m.buffer, v.buffer], workgroups: grid1d(Math.ceil(r.count / 1024)) });
}
