// `densenet-bench speed`: images per second, ms per step (median and spread), GFLOP/s from the exact
// FLOP count of the layers, dispatches per step, GPU time per step (the sum of every dispatch's time
// from timestamp queries, where the adapter has them), and the pool's peak and live bytes; naive
// against memory-efficient.

import * as E from '../engine/index.js';
import { countFlops } from '../nn/index.js';
import { trainStep, type TrainStep } from './step.js';
import { buildModel, type ModelName } from './models.js';
import { Reporter, fixed, mib, type Row } from './report.js';
import { timeIt } from './timing.js';
import { InputError } from './args.js';
import { timeInterleaved, tuneStep } from './tune_timing.js';

export interface SpeedOptions {
  model: ModelName;
  batch: number;
  size: [number, number];
  channels: number;
  modes: Array<'forward' | 'train'>;
  warmup: number;
  iters: number;
  memoryEfficient: boolean[];
  /** Activation storage: 'fp32', 'mixed' (float16 activations, GradScaler in training), or both side by side. */
  precision?: E.Precision[];
  /** Kernel tuning: 'on' (tune the step's shapes first, then the measured choices), 'off' (the heuristic); both are timed interleaved. */
  tune?: Array<'on' | 'off'>;
}

/**
 * Builds the model and its input, and checks the shapes with one forward pass: in training mode when
 * `training` (batch norm then needs more than one value per channel), else in inference mode.
 */
export function prepare(o: Pick<SpeedOptions, 'model' | 'batch' | 'size' | 'channels'>, memoryEfficient: boolean, training = true, precision: E.Precision = 'fp32') {
  E.manualSeed(0);
  const { model } = buildModel(o.model, o.channels, memoryEfficient, 10, precision);
  const x = E.keep(E.randn([o.batch, o.channels, ...o.size]));
  const labels = E.keep(E.tensor(Array.from({ length: o.batch }, (_, i) => (i * 7) % 10)));
  let flops;
  try {
    flops = countFlops(() => E.scope(() => void (training ? model(x) : model.predict(x))));
  } catch (e) {
    x.dispose();
    labels.dispose();
    model.dispose();
    throw new InputError(`input ${o.batch}x${o.channels}x${o.size.join('x')} does not fit ${o.model}: ${(e as Error).message}`);
  }
  return { model, x, labels, flops };
}

export async function runSpeed(o: SpeedOptions, rep: Reporter): Promise<Row[]> {
  const rows: Row[] = [];
  const precisions = usablePrecisions(o.precision ?? ['fp32'], rep);
  for (const eff of o.memoryEfficient) for (const precision of precisions) {
    const impl = eff ? 'efficient' : 'naive';
    const tag = `[${o.model} ${impl}${precisions.length > 1 || precision !== 'fp32' ? ` ${precision}` : ''}]`;
    rep.progress(`${tag} building the model and compiling shaders...`);
    const { model, x, labels, flops } = prepare(o, eff, o.modes.includes('train'), precision);
    const common = { model: o.model, impl, precision, batch: o.batch, size: `${o.channels}x${o.size.join('x')}` };
    for (const mode of o.modes) {
      let step: () => void;
      let train: TrainStep | null = null;
      if (mode === 'forward') {
        step = () => E.scope(() => void model.predict(x));
      } else {
        train = trainStep(model, x, labels, precision);
        step = train.step;
      }
      const tuneModes = o.tune ?? ['off'];
      if (tuneModes.includes('on')) {
        rep.progress(`${tag} ${mode}: tuning the kernels at this step's shapes...`);
        await tuneStep(step);
      }
      rep.progress(`${tag} ${mode}: warm-up (${o.warmup})...`);
      for (let i = 0; i < Math.max(1, o.warmup); i++) step();
      // Dispatches, bytes and GPU time under each tune mode (the kernels, and so these, differ).
      const measured: Record<string, StepCounts> = {};
      for (const tune of tuneModes) measured[tune] = await measureStep(step, tune);
      rep.progress(`${tag} ${mode}: timing ${o.iters} iterations...`);
      const timings = await timeInterleaved(step, tuneModes, o.iters);
      const f = mode === 'forward' ? flops.forward : flops.forward + flops.backward;
      for (const tune of tuneModes) {
        const t = timings[tune];
        rows.push({
          ...common,
          mode,
          tune,
          ms: t.medianMs,
          msMin: t.minMs,
          msMax: t.maxMs,
          imgPerSec: (o.batch * 1000) / t.medianMs,
          gflops: f / (t.medianMs * 1e6),
          flopsPerStep: f,
          ...measured[tune],
          ...(tune === 'on' && tuneModes.includes('off') ? { tunedRatio: t.medianMs / timings.off.medianMs } : {}),
        });
      }
      train?.dispose();
    }
    model.dispose();
    x.dispose();
    labels.dispose();
    await E.pool.trim();
  }
  rep.table(rows, [
    ['model', 'model'],
    ['impl', 'blocks'],
    ...(precisions.length > 1 || precisions[0] !== 'fp32' ? [['precision', 'precision'] as [string, string]] : []),
    ['mode', 'mode'],
    ...(o.tune ? [['tune', 'tune'] as [string, string]] : []),
    ['batch', 'batch'],
    ['size', 'input'],
    ['ms', 'ms/step', fixed(1)],
    ['msMin', 'min', fixed(1)],
    ['msMax', 'max', fixed(1)],
    ['imgPerSec', 'img/s', fixed(1)],
    ['gflops', 'GFLOP/s', fixed(2)],
    ['dispatches', 'dispatches'],
    ['gpuMs', 'GPU ms', fixed(1)],
    ['peakBytes', 'peak MiB', mib],
    ['liveBytes', 'live MiB', mib],
    ...(o.tune?.length === 2 ? [['tunedRatio', 'tuned/untuned', fixed(3)] as [string, string, (v: Row[string]) => string]] : []),
  ]);
  return rows;
}

/**
 * The precisions a run can measure here: 'mixed' needs shader-f16. Asked for alone it is an error
 * (exit 2); beside fp32 ('both') it is left out with one notice.
 */
export function usablePrecisions(wanted: E.Precision[], rep: Reporter): E.Precision[] {
  if (!wanted.includes('mixed') || E.mixedSupported()) return wanted;
  if (wanted.length === 1) {
    try {
      E.checkPrecision('--precision mixed', 'mixed');
    } catch (e) {
      throw new InputError((e as Error).message);
    }
  }
  rep.progress("this adapter has no 'shader-f16': the mixed-precision rows are left out (fp32 only)");
  return wanted.filter((p) => p !== 'mixed');
}

interface StepCounts {
  dispatches: number;
  gpuMs: number | null;
  peakBytes: number;
  liveBytes: number;
}

/**
 * Dispatches, the pool's peak and live bytes, and GPU time of one step with the kernels of tune mode
 * `tune` ('on': the measured choices, as timeInterleaved() runs them), after one step to compile them.
 * Restores the caller's tune mode.
 */
async function measureStep(step: () => void, tune: 'on' | 'off'): Promise<StepCounts> {
  const before = E.tuneMode();
  E.setTuneMode(tune === 'on' ? 'cached' : 'off');
  try {
    step();
    await E.sync();
    E.pool.resetPeak();
    const d0 = E.dispatches();
    step();
    const dispatches = E.dispatches() - d0;
    await E.sync();
    const { peakBytes, liveBytes } = E.memory();
    const gpuMs = await gpuTimePerStep(step);
    return { dispatches, gpuMs, peakBytes, liveBytes };
  } finally {
    E.setTuneMode(before);
  }
}

/**
 * GPU time of one step: the sum of its dispatches' times from timestamp queries (each dispatch then runs
 * in its own pass, so this is kernel time without the gaps between kernels); null without the feature.
 */
export async function gpuTimePerStep(step: () => void): Promise<number | null> {
  if (!E.canProfile()) return null;
  E.startProfile();
  let times: E.KernelTime[];
  try {
    step();
  } finally {
    times = await E.stopProfile(); // also when the step throws: profiling must not stay on
  }
  return times.reduce((a, k) => a + k.ms, 0);
}
