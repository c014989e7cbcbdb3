// The profiler: GPU time per kernel from timestamp queries (needs the adapter's `timestamp-query`).
// startProfile() gives the command stream (engine/runtime.ts) a query set to write every dispatch's start
// and end into; stopProfile() reads the resolved timestamps back and sums them per kernel (file:entry).

import { gpu } from './gpu.js';
import { pool } from './pool.js';
import { setTimestampLog, waitFor, type TimestampLog } from './runtime.js';

const PROFILE_QUERIES = 2048;

let log: TimestampLog | null = null;

/** Whether a profile (startProfile) is running. */
export function profiling(): boolean {
  return log !== null;
}

/** Whether the adapter can time dispatches (the `timestamp-query` feature). */
export function canProfile(): boolean {
  return gpu().features.timestampQuery;
}

/**
 * Starts timing every dispatch with timestamp queries (needs `timestamp-query`). With `merge`,
 * back-to-back dispatches of one kernel are timed as one pass (for a kernel timed by repetition: a
 * pass's own timestamp cost is then not charged to each repetition; engine/runtime.ts).
 */
export function startProfile(o: { merge?: boolean } = {}): void {
  if (!canProfile()) throw new Error('startProfile: the adapter has no timestamp-query feature');
  log = { querySet: gpu().device.createQuerySet({ type: 'timestamp', count: PROFILE_QUERIES }), capacity: PROFILE_QUERIES, names: [], counts: [], merge: !!o.merge, done: [] };
  setTimestampLog(log);
}

export interface KernelTime {
  kernel: string;
  /** Dispatches of the kernel, */
  count: number;
  /** the timed passes they ran in (fewer than count only with merge), */
  passes: number;
  /** and their GPU time. */
  ms: number;
}

/** Stops profiling and returns GPU time per kernel (file:entry), largest first. */
export async function stopProfile(): Promise<KernelTime[]> {
  if (!log) throw new Error('stopProfile: no profile is running');
  const done = log;
  log = null;
  setTimestampLog(null);
  const totals = new Map<string, KernelTime>();
  for (const b of done.done) {
    await waitFor(b.readback.buffer.mapAsync(1, 0, b.names.length * 16));
    const t = new BigUint64Array(b.readback.buffer.getMappedRange(0, b.names.length * 16).slice(0));
    b.readback.buffer.unmap();
    b.names.forEach((name, i) => {
      const ns = Number(t[2 * i + 1] - t[2 * i]);
      const e = totals.get(name) ?? { kernel: name, count: 0, passes: 0, ms: 0 };
      e.count += b.counts[i];
      e.passes++;
      e.ms += ns / 1e6;
      totals.set(name, e);
    });
    pool.release(b.resolve);
    pool.release(b.readback);
  }
  done.querySet.destroy();
  return [...totals.values()].sort((a, b) => b.ms - a.ms);
}
