// Tuning and timing inside a benchmark: tune one step's shapes, time steps interleaved (one iteration of
// each per round, so all see the same load: `speed --tune both` and `--precision both`), and count a
// step's dispatches, memory and GPU time.

import * as E from '../engine/index.js';
import { cpuNowMs, median, type Timing } from './timing.js';

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
  const cpu: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  const host: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  const before = E.tuneMode();
  try {
    for (let i = 0; i < iters; i++) {
      for (const v of i % 2 ? [...variants].reverse() : variants) {
        E.setTuneMode(v.tune === 'on' ? 'cached' : 'off');
        await E.sync();
        const c = cpuNowMs();
        const t = performance.now();
        v.step();
        host[v.key].push(performance.now() - t);
        await E.sync();
        samples[v.key].push(performance.now() - t);
        if (c !== null) cpu[v.key].push(cpuNowMs()! - c);
      }
    }
  } finally {
    E.setTuneMode(before);
  }
  return Object.fromEntries(
    variants.map(({ key }) => {
      const s = samples[key];
      return [key, { medianMs: median(s), minMs: Math.min(...s), maxMs: Math.max(...s), samples: s, hostMs: median(host[key]), ...(cpu[key].length ? { cpuMs: median(cpu[key]) } : {}) }];
    }),
  );
}

export interface StepCounts {
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
export async function measureStep(step: () => void, tune: 'on' | 'off'): Promise<StepCounts> {
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
