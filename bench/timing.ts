// Timing helpers for the benchmark: medians over repeated runs, each run ended by a GPU sync.

import { sync } from '../engine/index.js';

export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  samples: number[];
  /**
   * Median CPU time of the process per run (all its threads: on a software adapter the GPU's work
   * itself, without the time the host gives its other guests, which the wall clock counts; on a GPU the
   * host's share), where
   * the runtime can tell (Node); absent in a browser.
   */
  cpuMs?: number;
  /**
   * Median time of the run's call itself (the GPU idle before it): the host's work to record and submit
   * the step (ops, autograd, command encoding). Where it nears the step's time, the GPU waits on the host.
   */
  hostMs?: number;
}

/** The process's CPU time so far in ms (user + system, all threads), or null where it cannot be read (browsers). */
export function cpuNowMs(): number | null {
  const proc = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process;
  if (!proc?.cpuUsage) return null;
  const u = proc.cpuUsage();
  return (u.user + u.system) / 1000;
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
