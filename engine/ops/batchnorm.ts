// Batch normalisation over NCHW (torch.nn.functional.batch_norm semantics) with autograd.
//
// Statistics live in a [3, C] tensor: row 0 the mean, row 1 1/sqrt(var + eps), row 2 the biased variance.
// Training: one dispatch computes them from the batch (one workgroup per channel, shifted sums, see
// bn_moments.wgsl) and updates the running statistics and the batch counter in place (with the
// unbiased variance, as PyTorch; batchnorm_update.wgsl bn_stats_update), and bn_apply normalises.
// (batchNormStats() computes statistics alone.) Eval: the statistics come from the running ones.
// Backward: the sums (sum(dy), sum(dy * xhat): the gradients of beta and gamma), then dx (the full
// batch-statistics gradient in training), in one dispatch (a workgroup per channel) or two.
// batchNormRelu2d fuses a following ReLU into the same kernels (its mask recomputed in backward), and
// batchNormReluMaxPool2d a ReLU and a max pooling (the pooling reads the BN-ReLU as its prologue).
// x may be any [N, C, H, W] view whose H*W plane is contiguous (channel views of a shared buffer);
// other layouts are copied first. The memory-efficient dense block (dense_block.ts) calls the raw
// pieces directly: batchNormEvalStats(), batchNormPrologue() (which also computes the statistics of a
// layer's new channels) and batchNormBackwardRaw().
// The activations (x, y, dy, dx) are float32 or float16 storage, each a role of the composed kernel
// (engine/storage.ts); arithmetic, sums and every per-channel table (statistics, gamma, beta, running
// statistics, scale/shift, the gradients of gamma and beta) are float32.

import { defineOp } from '../autograd.js';
import type { GpuFeatures } from '../gpu.js';
import { dispatch, f32bits, PARAM_WORDS, spareBuffer, type KernelSource } from '../runtime.js';
import { storageTypes, typed } from '../storage.js';
import type { DType } from '../dtype.js';
import { selectVariant } from '../tuner.js';
import { forceVariant, heuristicVariant, planeImagesPerWorkgroup, planeWorkgroupSize, type VariantName } from '../variants.js';
import type { PooledBuffer } from '../pool.js';
import { fmt } from '../shape.js';
import { empty, type Tensor, view } from '../tensor.js';
import { checkGrid, checkTensor } from './check.js';
import { unaryMap } from './map.js';
import { maxPoolRaw, type Pool2dOptions, type PoolGeometry } from './pool2d.js';
import statsSrc from '../../shaders/batchnorm_stats.wgsl';
import statsSubgroupSrc from '../../shaders/batchnorm_stats_subgroup.wgsl';
import statsTreeSrc from '../../shaders/batchnorm_stats_tree.wgsl';
import updateSrc from '../../shaders/batchnorm_update.wgsl';
import momentsSrc from '../../shaders/bn_moments.wgsl';

const statsBody: KernelSource = { file: 'batchnorm_stats.wgsl', source: statsSrc };
/** The lane-summing snippet of each reduction variant, and what it needs enabled. */
const laneSums: Record<BnStatsKernel, { snippet: KernelSource; enables: string[] }> = {
  subgroup: { snippet: { file: 'batchnorm_stats_subgroup.wgsl', source: statsSubgroupSrc }, enables: ['subgroups'] },
  fallback: { snippet: { file: 'batchnorm_stats_tree.wgsl', source: statsTreeSrc }, enables: [] },
};
/** The storage types of batchnorm_stats.wgsl's activation bindings: x, dy and dx (or y). */
export interface BnRoles {
  X: DType;
  DY: DType;
  DX: DType;
}

const moments: KernelSource = { file: 'bn_moments.wgsl', source: momentsSrc };

/** batchnorm_stats.wgsl composed for a reduction variant and the activations' storage types. */
export function bnStatsSource(variant: BnStatsKernel, roles: BnRoles): KernelSource {
  const { snippet, enables } = laneSums[variant];
  return typed(statsBody, { ...roles }, { snippets: [snippet, moments], enables, variant });
}
const updateBody: KernelSource = { file: 'batchnorm_update.wgsl', source: updateSrc };
/** batchnorm_update.wgsl composed for a reduction variant and x's storage type (bn_stats_update reads x). */
export function bnUpdateSource(variant: BnStatsKernel, X: DType): KernelSource {
  const { snippet, enables } = laneSums[variant];
  return typed(updateBody, { X }, { snippets: [snippet, moments], enables, variant });
}

export type BnStatsKernel = VariantName<'bnStats'>;

/** The heuristic reduction kernel for adapter features (see engine/variants.ts). */
export function chooseBnStatsKernel(f: GpuFeatures): BnStatsKernel {
  return heuristicVariant('bnStats', { features: f });
}
/** Forces one reduction kernel (tests check both); null restores the automatic choice. */
export function forceBnStatsKernel(k: BnStatsKernel | null): void {
  forceVariant('bnStats', k);
}

/** Workgroup size of the per-channel and per-plane kernels (see engine/variants.ts). */
const bnWorkgroupSize = () => planeWorkgroupSize();

/** x itself if its H*W planes are contiguous, else a contiguous copy (the caller disposes it if new). */
function planar(x: Tensor): Tensor {
  const [, , H, W] = x.shape;
  const ok = (W === 1 || x.strides[3] === 1) && (H === 1 || x.strides[2] === W);
  return ok ? x : unaryMap('copy', x);
}

/** Whether vec4 loads (of 4 elements, float32 or float16) can walk x's planes (and dy's, when given). */
function vec4Ok(...ts: Tensor[]): boolean {
  const HW = ts[0].shape[2] * ts[0].shape[3];
  return HW % 4 === 0 && ts.every((t) => t.offset % 4 === 0 && t.strides[0] % 4 === 0 && t.strides[1] % 4 === 0);
}

/** The reduction variant for these storage types (the tuner's key names them), composed with them. */
function statsKernel(roles: BnRoles): KernelSource {
  return bnStatsSource(selectVariant('bnStats', storageTypes({ ...roles }).key), roles);
}

/**
 * The 8 buffers of batchnorm_stats.wgsl, each unused binding filled with a buffer of its element type:
 * x's for an unused DY (its role then x's type), float32 spares for the others (one for the read-only
 * ones, one each for the writable OUT, DX and DGAMMA).
 */
function statsBuffers(b: { x: Tensor; dy?: Tensor; st?: Tensor; out?: Tensor; gamma?: Tensor; beta?: Tensor; dx?: Tensor; dgamma?: Tensor | null }): PooledBuffer[] {
  const d = spares();
  return [b.x.buffer, (b.dy ?? b.x).buffer, b.st?.buffer ?? d[2], b.out?.buffer ?? d[0], b.gamma?.buffer ?? d[2], b.beta?.buffer ?? d[2],
    b.dx?.buffer ?? d[1], b.dgamma?.buffer ?? d[3]];
}

/** A clear error unless a per-channel tensor (statistics, gamma, beta, running statistics) is float32. */
function checkFloat32(op: string, what: string, t: Tensor | null | undefined): void {
  if (t && t.dtype !== 'float32') {
    throw new Error(`${op}: ${what} is ${t.dtype}, expected float32 (only the activations and their gradients may be float16; cast it with .float())`);
  }
}

/**
 * Per-channel batch statistics of an NCHW tensor or view (float32 or float16): a float32 [3, C] tensor
 * of mean, 1/sqrt(var + eps) and the biased variance. With `out` ([3, Ctotal], float32), writes columns
 * [channel, channel + C) of it instead and returns it. No autograd.
 */
export function batchNormStats(x: Tensor, eps = 1e-5, out?: { stats: Tensor; channel: number }): Tensor {
  if (x.ndim !== 4) throw new Error(`batchNormStats: expected an NCHW tensor, got shape ${fmt(x.shape)}`);
  const [N, C, H, W] = x.shape;
  if (out) {
    const s = out.stats;
    if (s.ndim !== 2 || s.shape[0] !== 3 || !s.isContiguous || out.channel < 0 || out.channel + C > s.shape[1]) {
      throw new Error(`batchNormStats: cannot write ${C} channels at column ${out.channel} of stats ${fmt(s.shape)} (expected a contiguous [3, >= ${out.channel + C}])`);
    }
    checkFloat32('batchNormStats', 'statistics', s);
  }
  checkGrid('batchNormStats', x);
  const stats = out?.stats ?? empty([3, C], 'bn-stats');
  const xp = planar(x);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([N, H * W, xp.offset, xp.strides[0], xp.strides[1], stats.offset + (out?.channel ?? 0), stats.shape[1], f32bits(eps)]);
  dispatch(
    { shader: statsKernel({ X: xp.dtype, DY: xp.dtype, DX: 'float32' }), entry: 'bn_stats', constants: { WG: bnWorkgroupSize(), VEC: vec4Ok(xp) ? 1 : 0 } },
    { params: p, buffers: statsBuffers({ x: xp, out: stats }), workgroups: [C] },
  );
  if (xp !== x) xp.dispose();
  return stats;
}

/** Stats [3, C] from running statistics (for eval mode). No autograd. */
export function batchNormEvalStats(rm: Tensor, rv: Tensor, eps: number): Tensor {
  checkFloat32('batchNormEvalStats', 'runningMean', rm);
  checkFloat32('batchNormEvalStats', 'runningVar', rv);
  const C = rm.shape[0];
  const stats = empty([3, C], 'bn-stats');
  bnUpdate(stats, 0, C, null, null, { fromRunning: { runningMean: rm, runningVar: rv, eps } });
  return stats;
}

/** Eval mode's statistics source: the running mean and variance (and the eps of 1/sqrt(var + eps)). */
export interface FromRunning {
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
}

/** The running statistics a training step updates (PyTorch's running_mean, running_var, num_batches_tracked). */
export interface RunningStats {
  runningMean: Tensor;
  runningVar: Tensor;
  /** One float counting the training batches; advanced by one per update when given. */
  numBatchesTracked?: Tensor | null;
  momentum: number;
  /** N*H*W of the batch (for the unbiased variance). */
  count: number;
}

/** Small buffers bound where a binding of bn_update is unused (one each for the writable ones: they must not alias; 4 for the reads). */
const spares = (): PooledBuffer[] => [0, 1, 2, 3, 4].map((i) => spareBuffer(`bn-update-${i}`));

/** The channels of a layer's input that have no batch statistics yet, and the eps of those to compute. */
export interface NewChannels {
  /** The last x.shape[1] channels of the layer's input, as an [N, c, H, W] view with contiguous planes. */
  x: Tensor;
  eps: number;
}

/**
 * One dispatch of batchnorm_update.wgsl over C channels of `stats` from column `channel`: with
 * `affine`, writes scale = gamma * invstd and shift = beta - mean * scale into rows 0 and 1 of it
 * ([2, C], contiguous); with `running`, updates the running statistics in place (and counts the batch);
 * with `fresh`, first computes the batch statistics of the last fresh.x.shape[1] channels into their
 * columns (bn_stats_update: a dense layer's statistics, running statistics and prologue in one kernel).
 */
function bnUpdate(
  stats: Tensor, channel: number, C: number, affine: { gamma: Tensor; beta: Tensor; out: Tensor } | null, running: RunningStats | null,
  { fresh = null, fromRunning = null }: { fresh?: NewChannels | null; fromRunning?: FromRunning | null } = {},
): void {
  const op = 'batchNorm running statistics';
  for (const [t, what] of [[stats, 'statistics'], [affine?.gamma, 'gamma'], [affine?.beta, 'beta'], [running?.runningMean, 'runningMean'],
    [running?.runningVar, 'runningVar'], [running?.numBatchesTracked, 'numBatchesTracked']] as const) checkFloat32(affine ? 'batchNormPrologue' : op, what, t);
  if (running) {
    const { runningMean: rm, runningVar: rv, numBatchesTracked: nb } = running;
    if (rm.shape[0] !== C || rv.shape[0] !== C) throw new Error(`${op}: running mean ${fmt(rm.shape)} and variance ${fmt(rv.shape)} must have ${C} channels`);
    if (rm.storage === rv.storage || (nb && (nb.storage === rm.storage || nb.storage === rv.storage))) {
      throw new Error(`${op}: the running mean, running variance and num_batches_tracked must not share storage`);
    }
    if (nb && nb.size !== 1) throw new Error(`${op}: num_batches_tracked must hold one value, got shape ${fmt(nb.shape)}`);
  }
  if (running && fromRunning) throw new Error(`${op}: the running statistics are either updated (training) or read (eval), not both`);
  const d = spares();
  const p = new Uint32Array(PARAM_WORDS);
  const r = running;
  // The running mean and variance: updated (training) or read (eval), at words 8-11 either way.
  const rmv = r ?? fromRunning;
  p.set([C, stats.offset + channel, stats.shape[1], affine?.gamma.offset ?? 0, affine?.gamma.strides[0] ?? 0, affine?.beta.offset ?? 0,
    affine?.beta.strides[0] ?? 0, affine?.out.offset ?? 0, rmv?.runningMean.offset ?? 0, rmv?.runningMean.strides[0] ?? 0,
    rmv?.runningVar.offset ?? 0, rmv?.runningVar.strides[0] ?? 0, r?.numBatchesTracked?.offset ?? 0, f32bits(r?.momentum ?? 0),
    f32bits(r ? r.count / (r.count - 1) : 1), (affine ? 1 : 0) | (r ? 2 : 0) | (r?.numBatchesTracked ? 4 : 0) | (fromRunning ? 8 : 0)]);
  if (fromRunning) {
    if (fromRunning.runningMean.shape[0] !== C || fromRunning.runningVar.shape[0] !== C) {
      throw new Error(`batchNormEvalStats: running mean ${fmt(fromRunning.runningMean.shape)} and variance ${fmt(fromRunning.runningVar.shape)} must have ${C} channels`);
    }
    p[22] = f32bits(fromRunning.eps);
  }
  const variant = selectVariant('bnStats', storageTypes({ X: fresh?.x.dtype ?? 'float32', DY: fresh?.x.dtype ?? 'float32', DX: 'float32' }).key);
  const buffers = [stats.buffer, affine?.gamma.buffer ?? d[4], affine?.beta.buffer ?? d[4], affine?.out.buffer ?? d[0],
    rmv?.runningMean.buffer ?? d[1], rmv?.runningVar.buffer ?? d[2], r?.numBatchesTracked?.buffer ?? d[3], fresh?.x.buffer ?? d[4]];
  if (!fresh || fresh.x.shape[1] === 0) {
    dispatch({ shader: bnUpdateSource(variant, 'float32'), entry: 'bn_update', constants: { WG: 64 } }, { params: p, buffers, workgroups: [Math.ceil(C / 64)] });
    return;
  }
  const [N, c, H, W] = fresh.x.shape;
  p.set([C - c, N, H * W, fresh.x.offset, fresh.x.strides[0], fresh.x.strides[1], f32bits(fresh.eps)], 16); // eps at 22
  dispatch(
    { shader: bnUpdateSource(variant, fresh.x.dtype), entry: 'bn_stats_update', constants: { WG: bnWorkgroupSize(), VEC: vec4Ok(fresh.x) ? 1 : 0 } },
    { params: p, buffers, workgroups: [c] },
  );
}

/**
 * running = (1 - momentum) * running + momentum * batch, in place, for the mean (row 0 of `stats`) and the
 * variance (row 2, made unbiased with count/(count - 1)), and num_batches_tracked += 1 when given: one
 * dispatch. `count` = N*H*W of the batch.
 */
export function updateRunningStats(stats: Tensor, running: RunningStats, channel = 0): void {
  bnUpdate(stats, channel, running.runningMean.shape[0], null, running);
}

/**
 * The fused BN-ReLU prologue of a conv from batch-norm statistics: scale = gamma * invstd and
 * shift = beta - mean * scale for the first C = gamma's length channels of `stats`, as a [2, C] tensor
 * (row 0 scale, row 1 shift), with the running statistics updated in the same dispatch when given; with
 * `fresh`, the statistics of the last channels (those of fresh.x) computed first, into `stats`; with
 * `fromRunning` (eval), `stats` filled from the running statistics first. No autograd.
 */
export function batchNormPrologue(
  stats: Tensor, gamma: Tensor, beta: Tensor, running: RunningStats | null = null,
  { fresh = null, fromRunning = null }: { fresh?: NewChannels | null; fromRunning?: FromRunning | null } = {},
): Tensor {
  const C = gamma.shape[0];
  if (gamma.ndim !== 1 || beta.ndim !== 1 || beta.shape[0] !== C || stats.ndim !== 2 || stats.shape[1] < C) {
    throw new Error(`batchNormPrologue: gamma ${fmt(gamma.shape)}, beta ${fmt(beta.shape)} and stats ${fmt(stats.shape)} do not match (expected [C], [C], [3, >= C])`);
  }
  if (fresh) {
    const [, c, H, W] = fresh.x.shape;
    if (fresh.x.ndim !== 4 || c > C || (W > 1 && fresh.x.strides[3] !== 1) || (H > 1 && fresh.x.strides[2] !== W)) {
      throw new Error(`batchNormPrologue: the new channels ${fmt(fresh.x.shape)} must be at most ${C} channels with contiguous planes`);
    }
    checkGrid('batchNormPrologue', fresh.x);
  }
  const out = empty([2, C], 'bn-prologue');
  bnUpdate(stats, 0, C, { gamma, beta, out }, running, { fresh, fromRunning });
  return out;
}

/**
 * y = (x - mean) * invstd * gamma + beta as a new contiguous [N, C, H, W] of x's dtype (with `relu`,
 * max(y, 0)); stats as batchNormStats(), gamma and beta float32. No autograd.
 */
export function batchNormApplyRaw(x: Tensor, stats: Tensor, gamma: Tensor, beta: Tensor, statsChannel = 0, relu = false): Tensor {
  const [N, C, H, W] = x.shape;
  checkGrid('batchNorm2d', x);
  for (const [t, what] of [[stats, 'statistics'], [gamma, 'gamma'], [beta, 'beta']] as const) checkFloat32('batchNorm2d', what, t);
  const xp = planar(x);
  const out = empty([N, C, H, W], 'tensor', x.dtype);
  const G = planeImagesPerWorkgroup(N, C);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([N, H * W, xp.offset, xp.strides[0], xp.strides[1], 0, 0, 0, 0, 0, 0, stats.offset + statsChannel, stats.shape[1],
    gamma.offset, gamma.strides[0], beta.offset, beta.strides[0], out.offset, out.strides[0], out.strides[1]]);
  p[23] = G;
  dispatch(
    { shader: statsKernel({ X: xp.dtype, DY: xp.dtype, DX: out.dtype }), entry: 'bn_apply', constants: { WG: bnWorkgroupSize(), VEC: vec4Ok(xp) ? 1 : 0, RELU: relu ? 1 : 0 } },
    { params: p, buffers: statsBuffers({ x: xp, st: stats, gamma, beta, dx: out }), workgroups: [C, Math.ceil(N / G)] },
  );
  if (xp !== x) xp.dispose();
  return out;
}

export interface BnBackwardOptions {
  /** Where dx goes: a view of x's shape with contiguous planes, float32 or float16 (default: a new tensor of x's dtype). */
  out?: Tensor;
  /** Add dx to what `out` holds instead of overwriting it (the sum taken in float32, stored in out's dtype). */
  accumulate?: boolean;
  /** A contiguous [C] that also gets gamma's gradient (row 1 of the sums), as a tensor of its own. */
  dgammaOut?: Tensor | null;
  /**
   * beta, when a ReLU follows the batch norm: dy is then the gradient at the ReLU's output, masked in
   * the kernel by the recomputed sign of x * invstd * gamma + (beta - mean * invstd * gamma).
   */
  reluBeta?: Tensor | null;
}

/**
 * Batch norm's backward (bn_backward in batchnorm_stats.wgsl; one dispatch, or two on GPUs, see
 * engine/variants.ts bnBackward): the per-channel sums [2, C] (sum(dy) and sum(dy * xhat): the
 * gradients of beta and gamma) and dx from dy (both with contiguous planes), the statistics and gamma:
 * the full batch-statistics gradient when `training`, else gamma * invstd * dy. x and dy are each
 * float32 or float16; the sums, dgammaOut, stats, gamma and beta float32. No autograd.
 */
export function batchNormBackwardRaw(
  x: Tensor, dy: Tensor, stats: Tensor, gamma: Tensor, training: boolean,
  { out, accumulate = false, dgammaOut = null, reluBeta = null }: BnBackwardOptions = {},
): { dx: Tensor; sums: Tensor } {
  const [N, C, H, W] = x.shape;
  if (dgammaOut && (dgammaOut.ndim !== 1 || dgammaOut.shape[0] !== C || dgammaOut.strides[0] !== 1)) {
    throw new Error(`batchNorm backward: dgammaOut ${fmt(dgammaOut.shape)} must be a contiguous [${C}]`);
  }
  for (const [t, what] of [[stats, 'statistics'], [gamma, 'gamma'], [reluBeta, 'beta'], [dgammaOut, 'gamma gradient']] as const) checkFloat32('batchNorm backward', what, t);
  const o = out ?? empty([N, C, H, W], 'tensor', x.dtype);
  if (out && (out.shape.join() !== x.shape.join() || (W > 1 && out.strides[3] !== 1) || (H > 1 && out.strides[2] !== W))) {
    throw new Error(`batchNorm backward: the output view ${fmt(out.shape)} must match x ${fmt(x.shape)} with contiguous planes`);
  }
  const sums = empty([2, C], 'bn-grad');
  const beta = reluBeta ?? gamma;
  const p = new Uint32Array(PARAM_WORDS);
  p.set([N, H * W, x.offset, x.strides[0], x.strides[1], sums.offset, C, 0, dy.offset, dy.strides[0], dy.strides[1], stats.offset, stats.shape[1],
    gamma.offset, gamma.strides[0], beta.offset, beta.strides[0], o.offset, o.strides[0], o.strides[1], f32bits(1 / (N * H * W)),
    dgammaOut ? 1 : 0, dgammaOut?.offset ?? 0]);
  const vec = vec4Ok(x, dy) && o.offset % 4 === 0 && o.strides[0] % 4 === 0 && o.strides[1] % 4 === 0;
  const constants = { WG: bnWorkgroupSize(), VEC: vec ? 1 : 0, TRAIN: training ? 1 : 0, ACC: accumulate ? 1 : 0, RELU: reluBeta ? 1 : 0 };
  const buffers = statsBuffers({ x, dy, st: stats, out: sums, gamma, beta, dx: o, dgamma: dgammaOut });
  const shader = statsKernel({ X: x.dtype, DY: dy.dtype, DX: o.dtype });
  if (selectVariant('bnBackward', storageTypes({ X: x.dtype, DY: dy.dtype, DX: o.dtype }).key) === 'fused') {
    p[23] = N;
    dispatch({ shader, entry: 'bn_backward', constants: { ...constants, PHASE: 0 } }, { params: p, buffers, workgroups: [C] });
  } else {
    const G = planeImagesPerWorkgroup(N, C);
    p[23] = G;
    dispatch({ shader, entry: 'bn_backward', constants: { ...constants, PHASE: 1 } }, { params: p, buffers, workgroups: [C] });
    dispatch({ shader, entry: 'bn_backward', constants: { ...constants, PHASE: 2 } }, { params: p, buffers, workgroups: [C, Math.ceil(N / G)] });
  }
  return { dx: o, sums };
}

interface BnAttrs {
  training: boolean;
  /** A ReLU follows, fused into the same kernels (batchNormRelu2d). */
  relu: boolean;
  /** Then a max pooling, which reads the BN-ReLU as its prologue (batchNormReluMaxPool2d). */
  pool: PoolGeometry | null;
  momentum: number;
  eps: number;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  numBatchesTracked: Tensor | null;
}

const batchNormOp = defineOp<BnAttrs>({
  name: 'batchNorm2d',
  forward: ([x, gamma, beta], a, saved) => {
    const xp = planar(x);
    const [N, C, H, W] = x.shape;
    const running = a.training && a.runningMean && a.runningVar
      ? { runningMean: a.runningMean, runningVar: a.runningVar, numBatchesTracked: a.numBatchesTracked, momentum: a.momentum, count: N * H * W }
      : null;
    // Training: the batch statistics are computed by the dispatch that also updates the running
    // statistics (and, before a pooling, makes its prologue).
    const fresh = a.training ? { x: xp, eps: a.eps } : null;
    const fromRunning = a.training ? null : { runningMean: a.runningMean!, runningVar: a.runningVar!, eps: a.eps };
    const stats = empty([3, C], 'bn-stats');
    saved.push(stats, xp);
    if (a.pool) {
      // BN-ReLU as the pooling's prologue: scale and shift in the same dispatch.
      const pro = batchNormPrologue(stats, gamma, beta, running, { fresh, fromRunning });
      const scale = view(pro, [C], [1], pro.offset);
      const shift = view(pro, [C], [1], pro.offset + C);
      const { y, idx } = maxPoolRaw.forward(xp, a.pool, { scale, shift });
      for (const t of [pro, scale, shift]) t.dispose();
      saved.push(idx);
      return y;
    }
    bnUpdate(stats, 0, C, null, running, { fresh, fromRunning });
    return batchNormApplyRaw(xp, stats, gamma, beta, 0, a.relu);
  },
  backward: ({ inputs: [, gamma, beta], attrs, saved: [stats, xp, idx] }, g, release) => {
    // Through the pooling first: the gradient at the BN-ReLU's output, which was never stored (then g
    // is no longer read).
    const dy = attrs.pool ? maxPoolRaw.backward(g, idx, xp.shape, attrs.pool, xp.dtype) : planar(g);
    if (attrs.pool) release();
    const C = xp.shape[1];
    // gamma's gradient gets a buffer of its own (a view at an offset would be copied by autograd).
    const dgamma = gamma.requiresGrad ? empty([C], 'bn-grad') : null;
    const { dx, sums } = batchNormBackwardRaw(xp, dy, stats, gamma, attrs.training, { dgammaOut: dgamma, reluBeta: attrs.relu ? beta : null });
    if (attrs.pool) dy.dispose();
    return [dx, dgamma, beta.requiresGrad ? view(sums, [C], [1], sums.offset) : null];
  },
});

export interface BatchNormOptions {
  /** Batch statistics (and running-statistics update) when true; running statistics when false. */
  training: boolean;
  /** Weight of the batch in the running statistics (PyTorch's default 0.1). */
  momentum?: number;
  eps?: number;
  /** num_batches_tracked (one float), advanced by one with the running statistics in training. */
  numBatchesTracked?: Tensor | null;
}

/**
 * Batch norm over the channels of an NCHW tensor, like torch.nn.functional.batch_norm. In training the
 * running statistics (when given) are updated in place: running = (1 - momentum) * running + momentum *
 * batch, with the unbiased variance. Differentiable in x, gamma and beta.
 */
export function batchNorm2d(
  x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, options: BatchNormOptions,
): Tensor {
  return batchNormOrRelu('batchNorm2d', false, x, gamma, beta, runningMean, runningVar, options);
}

/**
 * relu(batchNorm2d(...)) in the same kernels as batchNorm2d alone: the ReLU is applied where batch norm
 * writes its output, and its gradient mask is recomputed from x inside batch norm's backward, so neither
 * the normalised tensor nor a ReLU pass exists. Same arguments as batchNorm2d.
 */
export function batchNormRelu2d(
  x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, options: BatchNormOptions,
): Tensor {
  return batchNormOrRelu('batchNormRelu2d', true, x, gamma, beta, runningMean, runningVar, options);
}

/**
 * maxPool2d(relu(batchNorm2d(...)), pool): the pooling reads the batch norm and ReLU as its input's
 * prologue, so the normalised tensor is never stored (a DenseNet stem's BN, ReLU and max pool), and
 * backward goes through the pooling's arg-max to batch norm's backward with the ReLU mask recomputed.
 * Same arguments as batchNorm2d, plus the pooling's options.
 */
export function batchNormReluMaxPool2d(
  x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, options: BatchNormOptions & { pool: Pool2dOptions },
): Tensor {
  const op = 'batchNormReluMaxPool2d';
  checkTensor(op, 'x', x);
  return batchNormOrRelu(op, true, x, gamma, beta, runningMean, runningVar, options, maxPoolRaw.geometry(op, x, options.pool));
}

function batchNormOrRelu(
  op: string, relu: boolean, x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  { training, momentum = 0.1, eps = 1e-5, numBatchesTracked = null }: BatchNormOptions, pool: PoolGeometry | null = null,
): Tensor {
  for (const [t, what] of [[x, 'x'], [gamma, 'gamma'], [beta, 'beta']] as const) checkTensor(op, what, t);
  if (x.ndim !== 4) throw new Error(`${op}: expected x of shape [N, C, H, W], got ${fmt(x.shape)}`);
  const [N, C, H, W] = x.shape;
  const check = (t: Tensor | null, what: string) => {
    if (t && (t.ndim !== 1 || t.shape[0] !== C)) throw new Error(`${op}: ${what} has shape ${fmt(t.shape)}, expected [${C}] for x of shape ${fmt(x.shape)}`);
  };
  check(gamma, 'gamma');
  check(beta, 'beta');
  check(runningMean, 'runningMean');
  check(runningVar, 'runningVar');
  for (const [t, what] of [[gamma, 'gamma'], [beta, 'beta'], [runningMean, 'runningMean'], [runningVar, 'runningVar'], [numBatchesTracked, 'numBatchesTracked']] as const) checkFloat32(op, what, t);
  if (!runningMean !== !runningVar) throw new Error(`${op}: give both runningMean and runningVar, or neither`);
  if (!training && !runningMean) throw new Error(`${op}: eval mode (training = false) needs runningMean and runningVar`);
  if (training && N * H * W <= 1) throw new Error(`${op}: expected more than 1 value per channel when training, got input of shape ${fmt(x.shape)}`);
  if (!(eps > 0) || !Number.isFinite(momentum)) throw new Error(`${op}: invalid eps ${eps} or momentum ${momentum}`);
  if (runningMean && runningMean.storage === x.storage) throw new Error(`${op}: the running statistics share storage with x`);
  return batchNormOp([x, gamma, beta], { training, relu, pool, momentum, eps, runningMean, runningVar, numBatchesTracked });
}
