// `densenet-bench speed`: images per second, ms per step (median and spread), GFLOP/s from the exact
// FLOP count of the layers, dispatches per step, GPU time per step (the sum of every dispatch's time
// from timestamp queries, where the adapter has them), the process's CPU time per step (Node: on a
// software adapter the work itself, without the time the host gives its other guests), and the pool's peak
// and live bytes; naive against memory-efficient.

import * as E from '../engine/index.js';
import { countFlops } from '../nn/index.js';
import { trainStep } from './step.js';
import { buildModel, type ModelName } from './models.js';
import { Reporter, fixed, mib, type Row } from './report.js';
import { timeIt } from './timing.js';
import { InputError } from './args.js';
import { measureStep, timeInterleaved, tuneStep, type StepCounts } from './tune_timing.js';

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

/** A model prepared for one precision, with the step of each mode (built on first use). */
interface Prepared {
  precision: E.Precision;
  built: ReturnType<typeof prepare>;
  steps: Map<string, { step: () => void; dispose: () => void }>;
}

function stepOf(p: Prepared, mode: 'forward' | 'train'): () => void {
  let s = p.steps.get(mode);
  if (!s) {
    const { model, x, labels } = p.built;
    s = mode === 'forward' ? { step: () => E.scope(() => void model.predict(x)), dispose: () => {} } : trainStep(model, x, labels, p.precision);
    p.steps.set(mode, s);
  }
  return s.step;
}

function release(p: Prepared): void {
  for (const s of p.steps.values()) s.dispose();
  p.built.model.dispose();
  p.built.x.dispose();
  p.built.labels.dispose();
}

export async function runSpeed(o: SpeedOptions, rep: Reporter): Promise<Row[]> {
  const rows: Row[] = [];
  const precisions = usablePrecisions(o.precision ?? ['fp32'], rep);
  const tuneModes = o.tune ?? ['off'];
  const training = o.modes.includes('train');
  for (const eff of o.memoryEfficient) {
    const impl = eff ? 'efficient' : 'naive';
    const tagOf = (p: E.Precision) => `[${o.model} ${impl}${precisions.length > 1 || p !== 'fp32' ? ` ${p}` : ''}]`;
    // Phase 1, one model at a time (so peak bytes count that model alone): tuning, dispatches, bytes and
    // GPU time per step.
    const counts = new Map<string, StepCounts>();
    for (const precision of precisions) {
      const tag = tagOf(precision);
      rep.progress(`${tag} building the model and compiling shaders...`);
      const p: Prepared = { precision, built: prepare(o, eff, training, precision), steps: new Map() };
      try {
        for (const mode of o.modes) {
          const step = stepOf(p, mode);
          if (tuneModes.includes('on')) {
            rep.progress(`${tag} ${mode}: tuning the kernels at this step's shapes...`);
            await tuneStep(step);
          }
          rep.progress(`${tag} ${mode}: warm-up (${o.warmup})...`);
          for (let i = 0; i < Math.max(1, o.warmup); i++) step();
          // Dispatches, bytes and GPU time under each tune mode (the kernels, and so these, differ).
          for (const tune of tuneModes) counts.set(`${precision}|${mode}|${tune}`, await measureStep(step, tune));
        }
      } finally {
        release(p);
        await E.pool.trim();
      }
    }
    // Phase 2: every precision's model at once, each mode's steps timed interleaved (one iteration of
    // each precision and tune mode per round), so their ratios come from one run.
    const all: Prepared[] = precisions.map((precision) => ({ precision, built: prepare(o, eff, training, precision), steps: new Map() }));
    try {
      for (const mode of o.modes) {
        const variants = all.flatMap((p) => tuneModes.map((tune) => ({ key: `${p.precision}|${tune}`, step: stepOf(p, mode), tune })));
        for (const p of all) stepOf(p, mode)(); // compile and settle after the other model's steps
        rep.progress(`[${o.model} ${impl}] ${mode}: timing ${o.iters} iterations${variants.length > 1 ? `, ${variants.length} variants interleaved` : ''}...`);
        const timings = await timeInterleaved(variants, o.iters);
        for (const p of all) {
          const { flops } = p.built;
          const f = mode === 'forward' ? flops.forward : flops.forward + flops.backward;
          for (const tune of tuneModes) {
            const t = timings[`${p.precision}|${tune}`];
            rows.push({
              model: o.model, impl, precision: p.precision, batch: o.batch, size: `${o.channels}x${o.size.join('x')}`,
              mode,
              tune,
              ms: t.medianMs,
              msMin: t.minMs,
              msMax: t.maxMs,
              cpuMs: t.cpuMs ?? null,
              hostMs: t.hostMs ?? null,
              imgPerSec: (o.batch * 1000) / t.medianMs,
              gflops: f / (t.medianMs * 1e6),
              flopsPerStep: f,
              ...counts.get(`${p.precision}|${mode}|${tune}`)!,
              ...(tune === 'on' && tuneModes.includes('off') ? { tunedRatio: t.medianMs / timings[`${p.precision}|off`].medianMs } : {}),
              ...(p.precision === 'mixed' && precisions.includes('fp32') ? { mixedRatio: t.medianMs / timings[`fp32|${tune}`].medianMs } : {}),
            });
          }
        }
      }
    } finally {
      for (const p of all) release(p);
      await E.pool.trim();
    }
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
    ['cpuMs', 'CPU ms', fixed(1)],
    ['hostMs', 'host ms', fixed(1)],
    ['peakBytes', 'peak MiB', mib],
    ['liveBytes', 'live MiB', mib],
    ...(o.tune?.length === 2 ? [['tunedRatio', 'tuned/untuned', fixed(3)] as [string, string, (v: Row[string]) => string]] : []),
    ...(precisions.length === 2 ? [['mixedRatio', 'mixed/fp32', fixed(3)] as [string, string, (v: Row[string]) => string]] : []),
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

