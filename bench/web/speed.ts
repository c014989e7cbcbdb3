// "Speed on this adapter", the demo page's benchmark (what `densenet-bench speed --tune both` does in
// Node): one SGD training step of a seed DenseNet (fresh weights, random images; the page's own model
// is not touched), timed with the kernels the built-in rules pick and with those the tuner measured
// fastest on this adapter, interleaved so that both see the same load; plus dispatches and GPU time
// per step, and which variants the tuner chose. A browser user with a GPU sees what the engine does on
// it without Node.

import * as E from '../../engine/index.js';
import * as models from '../../models/index.js';
import { trainStep } from '../step.js';
import { measureStep, timeInterleaved, tuneStep } from '../tune_timing.js';

export interface PageSpeedOptions {
  growth: number;
  arch: number[];
  memoryEfficient: boolean;
  /** Images per step. */
  batch: number;
  /** Square input size. */
  size: number;
  /** Timed steps of each kind. */
  iters: number;
}

export interface PageSpeedResult {
  options: PageSpeedOptions;
  /** Median ms per step: the rules' kernels, the tuned ones, and tuned / untuned. */
  untunedMs: number;
  tunedMs: number;
  ratio: number;
  /** GPU ms per step from timestamp queries (null without them). */
  gpuMs: { untuned: number | null; tuned: number | null };
  dispatches: { untuned: number; tuned: number };
  /** Median ms of the host's work per step (recording it, with the GPU idle): timing.ts's hostMs. */
  hostMs: { untuned: number; tuned: number };
  /** Seconds of the tuning pass (a step and the measurements; about a step when nothing was new). */
  tuneSeconds: number;
  /**
   * Shapes the tuner measured in this run, and how many of them run another variant than the rules'.
   * 0 when every shape was measured before (in this page, or stored in this browser's localStorage).
   */
  shapes: number;
  changed: number;
  /** Shapes per chosen variant, of those measured in this run, e.g. { 'conv quad': 40, 'conv wg32x32': 3 }. */
  chosen: Record<string, number>;
}

const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;

/** Times a training step untuned and tuned (see the header); `progress` gets one line per phase. */
export async function measurePageSpeed(o: PageSpeedOptions, progress: (line: string) => void = () => {}): Promise<PageSpeedResult> {
  for (const k of ['growth', 'batch', 'size', 'iters'] as const) {
    if (!positiveInt(o[k])) throw new Error(`speed: ${k} must be a positive integer, got ${o[k]}`);
  }
  if (!o.arch.length || !o.arch.every(positiveInt)) throw new Error(`speed: arch needs positive integers, got [${o.arch}]`);
  const model = new models.DenseNet({ growthRate: o.growth, arch: o.arch, memoryEfficient: o.memoryEfficient });
  const x = E.keep(E.randn([o.batch, 1, o.size, o.size], { generator: new E.Generator(0) }));
  const labels = E.keep(E.tensor(Array.from({ length: o.batch }, (_, i) => i % 10)));
  let ts: ReturnType<typeof trainStep> | null = null;
  try {
    E.scope(() => void model.predict(x)); // materialise the lazy layers
    ts = trainStep(model, x, labels, 'fp32');
    const step = ts.step;
    progress('compiling the kernels (one step)...');
    step();
    await E.sync();
    progress('tuning: timing every kernel variant this adapter supports, at each shape of the step...');
    const seen = E.tuneRecords().length;
    const t0 = performance.now();
    await tuneStep(step);
    const tuneSeconds = (performance.now() - t0) / 1000;
    progress(`timing ${o.iters} steps with the rules' kernels and ${o.iters} with the tuned ones, interleaved...`);
    const t = await timeInterleaved([{ key: 'untuned', step, tune: 'off' }, { key: 'tuned', step, tune: 'on' }], o.iters);
    const untuned = await measureStep(step, 'off');
    const tuned = await measureStep(step, 'on');
    const records = E.tuneRecords().slice(seen);
    const chosen: Record<string, number> = {};
    for (const r of records) chosen[`${r.family} ${r.chosen}`] = (chosen[`${r.family} ${r.chosen}`] ?? 0) + 1;
    return {
      options: { ...o, arch: [...o.arch] },
      untunedMs: t.untuned.medianMs,
      tunedMs: t.tuned.medianMs,
      ratio: t.tuned.medianMs / t.untuned.medianMs,
      gpuMs: { untuned: untuned.gpuMs, tuned: tuned.gpuMs },
      dispatches: { untuned: untuned.dispatches, tuned: tuned.dispatches },
      hostMs: { untuned: t.untuned.hostMs!, tuned: t.tuned.hostMs! },
      tuneSeconds,
      shapes: records.length,
      changed: records.filter((r) => r.chosen !== r.heuristic).length,
      chosen,
    };
  } finally {
    ts?.dispose();
    model.dispose();
    x.dispose();
    labels.dispose();
    await E.pool.trim(); // the step's buffers go back to the browser, not to the pool's cache
  }
}

/** The result as label/value rows for the page's table. */
export function speedRows(r: PageSpeedResult): Array<[string, string]> {
  const o = r.options;
  const ms = (v: number | null) => (v === null ? 'n/a (no timestamp queries)' : `${v.toFixed(1)} ms`);
  const perSec = (m: number) => ((1000 * o.batch) / m).toFixed(1);
  return [
    ['step', `DenseNet(growth ${o.growth}, arch [${o.arch}]), ${o.memoryEfficient ? 'memory-efficient' : 'naive'} blocks, batch ${o.batch}, ${o.size}x${o.size}, SGD, float32`],
    ['rules (untuned)', `${r.untunedMs.toFixed(1)} ms/step (${perSec(r.untunedMs)} images/s), GPU ${ms(r.gpuMs.untuned)}, host ${r.hostMs.untuned.toFixed(1)} ms, ${r.dispatches.untuned} dispatches`],
    ['tuned', `${r.tunedMs.toFixed(1)} ms/step (${perSec(r.tunedMs)} images/s), GPU ${ms(r.gpuMs.tuned)}, host ${r.hostMs.tuned.toFixed(1)} ms, ${r.dispatches.tuned} dispatches`],
    ['tuned / untuned', `${r.ratio.toFixed(3)} (medians of ${o.iters} interleaved steps each)`],
    r.shapes
      ? ['tuner', `${r.shapes} shapes measured in ${r.tuneSeconds.toFixed(1)} s; ${r.changed} run another variant than the rules'`]
      : ['tuner', 'every shape was measured before (in this page or stored in this browser): the stored choices ran'],
    ['variants chosen', r.shapes ? Object.entries(r.chosen).map(([v, n]) => `${v} ×${n}`).join(', ') : 'as stored'],
  ];
}
