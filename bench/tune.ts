// `densenet-bench tune`: measures every kernel variant at each shape one training step of a model
// uses (engine/tuner.ts), prints per shape each candidate's GFLOP/s, the one chosen and its gain over
// the heuristic, and saves the choices in the tuning cache.

import * as E from '../engine/index.js';
import { SGD, crossEntropy } from '../nn/index.js';
import type { ModelName } from './models.js';
import { Reporter, fixed, type Row } from './report.js';
import { prepare } from './speed.js';
import { tuneStep } from './tune_timing.js';

export interface TuneOptions {
  model: ModelName;
  batch: number;
  size: [number, number];
  channels: number;
}

/** One training step (forward, loss, backward, SGD) of a prepared model, as a function. */
export function trainStep(p: ReturnType<typeof prepare>): { step: () => void; dispose: () => void } {
  const opt = new SGD(p.model.parameters(), { lr: 0.1 });
  const step = () =>
    E.scope(() => {
      opt.zeroGrad();
      const loss = crossEntropy(p.model(p.x), p.labels);
      loss.backward();
      opt.step();
    });
  return { step, dispose: () => opt.dispose() };
}

const gflops = (flops: number, ms: number) => flops / (ms * 1e6);

export async function runTune(o: TuneOptions, rep: Reporter): Promise<Row[]> {
  const t0 = performance.now();
  E.resetTuning({ fresh: true });
  rep.progress(`[${o.model}] building the model...`);
  const p = prepare(o, true);
  const { step, dispose } = trainStep(p);
  rep.progress(`[${o.model}] tuning the shapes of one training step (batch ${o.batch}, ${o.size.join('x')})...`);
  await tuneStep(step);
  const seconds = (performance.now() - t0) / 1000;
  const rows: Row[] = E.tuneRecords().map((r) => {
    const cands = Object.entries(r.ms)
      .map(([v, ms]) => `${v} ${Number.isFinite(ms) ? gflops(r.flops, ms).toFixed(1) : 'failed'}${r.dropped.includes(v) ? '*' : ''}`)
      .concat(r.pruned.map((v) => `${v} -`))
      .join(', ');
    const h = r.ms[r.heuristic];
    const c = r.ms[r.chosen];
    return {
      family: r.family,
      shape: r.label,
      candidates: cands,
      chosen: r.chosen,
      heuristic: r.heuristic,
      chosenMs: c,
      heuristicMs: h ?? null,
      gain: h !== undefined && Number.isFinite(h) && c > 0 ? h / c : null,
      timer: r.timer,
    };
  });
  rep.table(rows, [
    ['family', 'family'],
    ['shape', 'shape'],
    ['candidates', 'GFLOP/s per candidate (*: dropped after round 1; -: not tried, dropped at this entry point before)'],
    ['chosen', 'chosen'],
    ['heuristic', 'heuristic'],
    ['gain', 'gain', fixed(2)],
  ]);
  const sumH = rows.reduce((s, r) => s + ((r.heuristicMs as number) ?? (r.chosenMs as number)), 0);
  const sumC = rows.reduce((s, r) => s + (r.chosenMs as number), 0);
  const changed = rows.filter((r) => r.chosen !== r.heuristic).length;
  const summary = {
    summary: 'tune',
    model: o.model,
    batch: o.batch,
    size: o.size.join('x'),
    shapes: rows.length,
    changed,
    seconds,
    kernelGain: sumC > 0 ? sumH / sumC : null,
    timer: rows[0]?.timer ?? null,
  };
  if (rep.json) console.log(JSON.stringify(summary));
  else {
    rep.text(
      `\n${rows.length} shapes tuned in ${seconds.toFixed(1)} s (${summary.timer ?? '-'} timing); ${changed} differ from the heuristic; ` +
        `the tuned kernels' summed time is ${(summary.kernelGain ?? 1).toFixed(2)}x faster than the heuristic's at these shapes.`,
    );
  }
  dispose();
  p.model.dispose();
  p.x.dispose();
  p.labels.dispose();
  return rows;
}
