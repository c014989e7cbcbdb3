// Multi-tensor optimiser kernels: one dispatch updates a whole range of packed parameters.
//
// WebGPU binds whole buffers, and every parameter and gradient lives in its own pooled buffer, so a
// kernel cannot walk a list of them. The optimiser (nn/optim.ts) therefore keeps its state (momentum,
// moments) packed in one flat buffer per parameter group, with each parameter at a fixed element offset;
// before a step it packs the parameters and gradients at the same offsets into two flat scratch tensors
// (`packInto`: one buffer-to-buffer copy each, no dispatch), runs one update dispatch over the range
// (`sgdUpdate` / `adamUpdate`), and copies the parameters back (`unpackFrom`). No autograd.
//
// Dynamic loss scaling (nn/grad_scaler.ts) adds two things, both without a read-back: `ampUnscale`
// multiplies packed gradients by 1 / scale and raises a found-inf flag in the scaler's state buffer, and
// the update kernels take that flag (`SkipStep`): when it is set they write nothing, and they count the
// skipped step in a small buffer of per-slot counts, from which the step number of Adam's bias
// correction and SGD's first momentum step are computed on the GPU. `ampUpdateScale` then moves the
// scale and growth tracker.

import { copyBuffer, dispatch, f32bits, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { fmt } from '../shape.js';
import { empty, fromData, keep, type Tensor } from '../tensor.js';
import sgdSrc from '../../shaders/sgd.wgsl';
import adamSrc from '../../shaders/adam.wgsl';
import ampSrc from '../../shaders/amp.wgsl';

const sgdShader: KernelSource = { file: 'sgd.wgsl', source: sgdSrc };
const adamShader: KernelSource = { file: 'adam.wgsl', source: adamSrc };
const ampShader: KernelSource = { file: 'amp.wgsl', source: ampSrc };

function checkFlat(op: string, name: string, t: Tensor, end: number): void {
  t.assertAlive(op);
  if (t.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32 (parameters, gradients and optimiser state are), got ${t.dtype} ${t}`);
  if (t.ndim !== 1 || !t.isContiguous || t.shape[0] < end) throw new Error(`${op}: ${name} must be a contiguous 1-D tensor of at least ${end} elements, got ${fmt(t.shape)}`);
}

/**
 * Checks the tensors of a pack or unpack (alive, contiguous, float32) and the packed tensor (long enough
 * for every offset), before any copy: a bad tensor leaves nothing half copied.
 */
function checkPack(op: string, flat: Tensor, ts: readonly Tensor[], offsets: readonly number[]): void {
  let end = 0;
  ts.forEach((t, i) => {
    t.assertAlive(op);
    if (!t.isContiguous) throw new Error(`${op}: ${t} must be contiguous`);
    if (t.dtype !== 'float32') throw new Error(`${op}: ${t} is ${t.dtype}; parameters and gradients must be float32`);
    if (!Number.isInteger(offsets[i]) || offsets[i] < 0) throw new Error(`${op}: invalid offset ${offsets[i]} for ${t}`);
    end = Math.max(end, offsets[i] + t.size);
  });
  checkFlat(op, 'the packed tensor', flat, end);
}

/** Copies each tensor (contiguous) into `flat` starting at element `offsets[i]` (copy commands, no dispatch). */
export function packInto(flat: Tensor, ts: readonly Tensor[], offsets: readonly number[]): void {
  checkPack('packInto', flat, ts, offsets);
  ts.forEach((t, i) => copyBuffer(t.buffer, t.offset * 4, flat.buffer, (flat.offset + offsets[i]) * 4, t.size * 4));
}

/** Copies elements [offsets[i], offsets[i] + size) of `flat` back into each tensor (contiguous). */
export function unpackFrom(flat: Tensor, ts: readonly Tensor[], offsets: readonly number[]): void {
  checkPack('unpackFrom', flat, ts, offsets);
  ts.forEach((t, i) => copyBuffer(flat.buffer, (flat.offset + offsets[i]) * 4, t.buffer, t.offset * 4, t.size * 4));
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

/**
 * An update that a flag on the GPU may skip, with its step number counted on the GPU (nn/optim.ts).
 * The kernel's step number is the host's step number (skips included) minus `skipped[slot]`.
 */
export interface SkipStep {
  /** A 1-element tensor: the update writes nothing when its value is not 0. */
  flag: Tensor;
  /** Counts of skipped steps (float32 integers), one per slot; offset 0. */
  skipped: Tensor;
  slot: number;
  /** Add 1 to skipped[slot] when the update is skipped (set on one update per slot and step). */
  count: boolean;
}

/** Copies skipped[from] to skipped[to] (a copy command, no dispatch): a class of parameters splits. */
export function copySkipCount(skipped: Tensor, from: number, to: number): void {
  skipped.assertAlive('copySkipCount');
  if (skipped.offset !== 0 || ![from, to].every((k) => Number.isInteger(k) && k >= 0 && k < skipped.size)) throw new Error(`copySkipCount: slots ${from} -> ${to} outside ${skipped.size} slots`);
  // WebGPU copies between two different buffers only: go through a 1-word scratch buffer.
  const tmp = empty([1], 'skip-count');
  copyBuffer(skipped.buffer, from * 4, tmp.buffer, 0, 4);
  copyBuffer(tmp.buffer, 0, skipped.buffer, to * 4, 4);
  tmp.dispose();
}

// Bound where a kernel has nothing to bind (a binding needs some buffer): momentum buffers without
// momentum, the skip flag (a zero) and the skipped-step counts without a SkipStep.
const dummies = new Map<string, Tensor>();
const dummy = (name: string) => dummies.get(name) ?? dummies.set(name, keep(fromData(new Float32Array(1), [1], name))).get(name)!;

function checkSkip(op: string, s: SkipStep | null): void {
  if (!s) return;
  s.flag.assertAlive(`${op} (the skip flag)`);
  s.skipped.assertAlive(`${op} (the skipped-step counts)`);
  if (s.flag.size !== 1) throw new Error(`${op}: the skip flag must have 1 element, got ${fmt(s.flag.shape)}`);
  if (!Number.isInteger(s.slot) || s.slot < 0 || s.slot >= s.skipped.size || s.skipped.offset !== 0) {
    throw new Error(`${op}: slot ${s.slot} is outside the skipped-step counts (${s.skipped.size} slots at offset ${s.skipped.offset})`);
  }
}

/** Binding buffers and parameter words (flag word, slot) of an optional SkipStep. */
const skipBindings = (s: SkipStep | null) => ({
  buffers: [(s?.flag ?? dummy('optim-no-skip')).buffer, (s?.skipped ?? dummy('optim-no-steps')).buffer],
  words: [s ? s.flag.offset : 0, s ? s.slot : 0],
});

/**
 * One SGD step over a range of packed parameters `p`, gradients `g` and momentum buffers `buf`.
 * With `skip`, `o.first` is ignored: the first step is when `step` minus the skipped steps is 1.
 */
export function sgdUpdate(p: Tensor, g: Tensor, buf: Tensor | null, r: PackedRange, o: SgdUpdate, skip: SkipStep | null = null, step = 1): void {
  const op = 'sgdUpdate';
  checkRange(op, r, ['the parameters', p], ['the gradients', g], ...(buf ? [['the momentum buffers', buf] as [string, Tensor]] : []));
  checkSkip(op, skip);
  if (o.momentum !== 0 && !buf) throw new Error(`${op}: momentum ${o.momentum} needs momentum buffers`);
  if (!Number.isInteger(step) || step < 1) throw new Error(`${op}: step must be an integer >= 1, got ${step}`);
  if (!r.count) return;
  const pr = new Uint32Array(PARAM_WORDS);
  const flags = (o.momentum !== 0 ? 1 : 0) | (o.first ? 2 : 0) | (o.nesterov ? 4 : 0) | (skip ? 8 : 0) | (skip?.count ? 16 : 0);
  const sk = skipBindings(skip);
  pr.set([r.count, r.start, f32bits(o.lr), f32bits(o.momentum), f32bits(1 - o.dampening), f32bits(o.weightDecay), flags, ...sk.words, step]);
  dispatch({ shader: sgdShader, entry: 'sgd_step' }, { params: pr, buffers: [g.buffer, p.buffer, (buf ?? dummy('sgd-momentum')).buffer, ...sk.buffers], workgroups: grid1d(Math.ceil(r.count / 1024)) });
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

/**
 * One Adam/AdamW step over a range of packed parameters, gradients and moments. With `skip`, the bias
 * corrections are computed on the GPU for `o.step` minus the skipped steps.
 */
export function adamUpdate(p: Tensor, g: Tensor, m: Tensor, v: Tensor, r: PackedRange, o: AdamUpdate, skip: SkipStep | null = null): void {
  checkRange('adamUpdate', r, ['the parameters', p], ['the gradients', g], ['exp_avg', m], ['exp_avg_sq', v]);
  checkSkip('adamUpdate', skip);
  if (!Number.isInteger(o.step) || o.step < 1) throw new Error(`adamUpdate: step must be an integer >= 1, got ${o.step}`);
  if (!r.count) return;
  const sk = skipBindings(skip);
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const pr = new Uint32Array(PARAM_WORDS);
  pr.set([
    r.count, r.start, f32bits(o.lr), f32bits(o.weightDecay), f32bits(o.beta1), f32bits(o.beta2), f32bits(o.eps),
    f32bits(o.lr / bc1), f32bits(Math.sqrt(bc2)), o.decoupled ? 1 : 0, f32bits(1 - o.lr * o.weightDecay), f32bits(1 - o.beta1), f32bits(1 - o.beta2),
    ...sk.words, (skip ? 1 : 0) | (skip?.count ? 2 : 0), o.step, f32bits(Math.log(o.beta1)), f32bits(Math.log(o.beta2)),
  ]);
  dispatch({ shader: adamShader, entry: 'adam_step' }, { params: pr, buffers: [g.buffer, p.buffer, m.buffer, v.buffer, ...sk.buffers], workgroups: grid1d(Math.ceil(r.count / 1024)) });
}

/** Words of a GradScaler's state buffer (see shaders/amp.wgsl). */
export const AMP_WORDS = { scale: 0, growthTracker: 1, skipped: 2, firstFlag: 4 } as const;

/**
 * Multiplies the first `count` elements of the flat tensor `grads` (offset 0) by 1 / scale, in place,
 * and sets word `foundWord` of `state` to 1 when any of them is inf or NaN (one dispatch).
 */
export function ampUnscale(grads: Tensor, count: number, state: Tensor, foundWord: number): void {
  checkRange('ampUnscale', { start: 0, count }, ['the gradients', grads]);
  checkRange('ampUnscale', { start: 0, count: foundWord + 1 }, ['the scaler state', state]);
  if (foundWord < AMP_WORDS.firstFlag) throw new Error(`ampUnscale: flag word ${foundWord} is not a flag (flags start at word ${AMP_WORDS.firstFlag})`);
  if (!count) return;
  dispatch({ shader: ampShader, entry: 'amp_unscale' }, { params: [count, foundWord], buffers: [grads.buffer, state.buffer], workgroups: grid1d(Math.ceil(count / 1024)) });
}

export interface ScaleUpdate {
  /** Flag words in use, from AMP_WORDS.firstFlag on. */
  flags: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
}

/** GradScaler.update() on the GPU: backs off or grows the scale, counts a skipped step, clears the flags (one dispatch). */
export function ampUpdateScale(state: Tensor, o: ScaleUpdate): void {
  checkRange('ampUpdateScale', { start: 0, count: AMP_WORDS.firstFlag + o.flags }, ['the scaler state', state]);
  dispatch({ shader: ampShader, entry: 'amp_update' }, { params: [o.flags, f32bits(o.growthFactor), f32bits(o.backoffFactor), o.growthInterval], buffers: [dummy('amp-unused').buffer, state.buffer], workgroups: [1] });
}
