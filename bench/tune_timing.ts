// Tuning inside a benchmark: tune one step's shapes, and time a step with and without the measured
// choices interleaved (one iteration of each per round, so both see the same load): `speed --tune`.

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

/**
 * Times `step` under each tune mode, interleaved (one iteration of each mode per round), so the
 * modes share the machine's load; 'on' means the measured choices ('cached' after tuneStep()).
 */
export async function timeInterleaved(step: () => void, modes: Array<'on' | 'off'>, iters: number): Promise<Record<string, Timing>> {
  const samples: Record<string, number[]> = Object.fromEntries(modes.map((m) => [m, []]));
  const before = E.tuneMode();
  try {
    for (let i = 0; i < iters; i++) {
      for (const m of i % 2 ? [...modes].reverse() : modes) {
        E.setTuneMode(m === 'on' ? 'cached' : 'off');
        await E.sync();
        const t = performance.now();
        step();
        await E.sync();
        samples[m].push(performance.now() - t);
      }
    }
  } finally {
    E.setTuneMode(before);
  }
  return Object.fromEntries(
    modes.map((m) => [m, { medianMs: median(samples[m]), minMs: Math.min(...samples[m]), maxMs: Math.max(...samples[m]), samples: samples[m] }]),
  );
}
