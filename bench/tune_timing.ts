// Tuning inside a benchmark: tune one step's shapes, and time steps interleaved (one iteration of each
// per round, so all see the same load): `speed --tune both` and `--precision both`.

import * as E from '../engine/index.js';
import { median, type Timing } from './timing.js';

/**
 * Runs `step` with tuning on and waits for the measurements, again while some shapes had to wait (the
 * tuner copies the arguments of at most a few hundred MiB at a time); later steps use the choices.
 */
export async function tuneStep(step: () => void): Promise<void> {
  const before = E.tuneMode();
  E.setTuneMode('on');
  try {
    E.takeDeferred();
    for (let i = 0; i < 20; i++) {
      step();
      await E.settleTuning();
      if (!E.takeDeferred()) break;
    }
  } finally {
    E.setTuneMode(before);
  }
}

/** One thing to time: a step and the tune mode it runs under. */
export interface TimedVariant {
  key: string;
  step: () => void;
  tune: 'on' | 'off';
}

/**
 * Times each variant's step, interleaved (one iteration of each per round, in alternating order), so
 * they share the machine's load and their ratios come from one run; tune 'on' means the measured
 * choices ('cached' after tuneStep()).
 */
export async function timeInterleaved(variants: TimedVariant[], iters: number): Promise<Record<string, Timing>> {
  const samples: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  const before = E.tuneMode();
  try {
    for (let i = 0; i < iters; i++) {
      for (const v of i % 2 ? [...variants].reverse() : variants) {
        E.setTuneMode(v.tune === 'on' ? 'cached' : 'off');
        await E.sync();
        const t = performance.now();
        v.step();
        await E.sync();
        samples[v.key].push(performance.now() - t);
      }
    }
  } finally {
    E.setTuneMode(before);
  }
  return Object.fromEntries(
    variants.map(({ key }) => [key, { medianMs: median(samples[key]), minMs: Math.min(...samples[key]), maxMs: Math.max(...samples[key]), samples: samples[key] }]),
  );
}
