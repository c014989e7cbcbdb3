// Timing helpers for the benchmark: medians over repeated runs, each run ended by a GPU sync.

import { sync } from '../engine/index.js';

export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  samples: number[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `fn` `warmup` times, then `iters` times, each followed by a GPU sync; per-run times in ms. */
export async function timeIt(fn: () => void | Promise<void>, { warmup = 1, iters = 5, repeat = 1 } = {}): Promise<Timing> {
  for (let i = 0; i < warmup; i++) {
    for (let r = 0; r < repeat; r++) await fn();
    await sync();
  }
  const samples: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    for (let r = 0; r < repeat; r++) await fn();
    await sync();
    samples.push((performance.now() - t0) / repeat);
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), maxMs: Math.max(...samples), samples };
}
