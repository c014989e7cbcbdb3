// The tuner: which variant of a kernel family runs a given call, measured on this adapter.
//
// Ops call `selectVariant(family, key, launcher)`, where the key names everything that decides speed
// (entry point, exact GEMM shape, stride and kernel size, flags) and the launcher can dispatch the call
// with any variant into given buffers. The answer is, in order: a forced variant (tests), the measured
// choice for (adapter, key), else the heuristic default of engine/variants.ts.
//
// Modes (`init({ tune })`, or the environment variable DENSENET_TUNE): 'off' (the default, and what the
// test suite runs: the heuristic, deterministic), 'cached' (choices measured earlier, never measure),
// 'on' (measure every new key). Ops are synchronous encoders and measuring needs the GPU's answer, so
// in 'on' mode a new key's call runs the heuristic at once and records a job: copies of every buffer the
// call binds (the real arguments, so candidates write only into copies) and the launcher. The jobs run
// at the next turn of the event loop (or at `await settleTuning()`; never inside someone's profile):
// each supported candidate runs once (compiling its pipelines), then all are timed in interleaved
// rounds (timestamp queries when the adapter has them, else the wall clock around repeated dispatches),
// short kernels repeated to about ROUND_MS. After the first round a candidate more than DROP_RATIO
// times slower than the best is dropped (never the heuristic), and one dropped once, or not chosen at
// any of an entry point's first PRUNE_AFTER shapes, is not compiled again for it (compiling is most of
// a cold tuning run on a CPU adapter). The fastest (the heuristic unless another
// beats it by 3%) is kept in memory and persisted per adapter and engine version
// (engine/tune_store.ts); later calls with that key use it. A corrupt or foreign cache is ignored with
// one warning; a job whose candidates all fail keeps the heuristic with a warning.

import { gpu } from './gpu.js';
import { pool, type PooledBuffer } from './pool.js';
import { copyBuffer, sync } from './runtime.js';
import { canProfile, profiling, startProfile, stopProfile, type KernelTime } from './profiler.js';
import { defaultTuneStore, type TuneStore } from './tune_store.js';
import { envChoice } from './env.js';
import { currentCaps, forcedVariant, heuristicVariant, supportedVariants, type Family, type VariantName } from './variants.js';

/** Bump with any kernel change that can change which variant is fastest (it keys the persisted cache). */
export const ENGINE_VERSION = '0.1.0-wide';

export type TuneMode = 'off' | 'cached' | 'on';
const MODES: readonly TuneMode[] = ['off', 'cached', 'on'];

/** Dispatches one call with a given variant, reading and writing `buffers` (same order as `bind`). */
export interface Launcher<F extends Family> {
  /** Every buffer the call binds. */
  buffers: PooledBuffer[];
  run(variant: VariantName<F>, buffers: PooledBuffer[]): void;
  /** Floating-point operations of one call (for GFLOP/s in reports). */
  flops: number;
  /** The call in words, for reports (e.g. 'conv2d_fwd x[8,64,16,16] w[32,64,3,3] s1'). */
  label?: string;
}

/** What one measurement found. */
export interface TuneRecord {
  family: Family;
  key: string;
  label: string;
  flops: number;
  heuristic: string;
  chosen: string;
  /** Best time per dispatch in ms, per candidate (Infinity: failed; missing: dropped before measured). */
  ms: Record<string, number>;
  /** Candidates dropped after the first round. */
  dropped: string[];
  /** Candidates not tried: dropped at this entry point's earlier shapes every time (see measure()). */
  pruned: string[];
  timer: 'timestamp' | 'wall';
}

interface Job {
  family: Family;
  key: string;
  launcher: Launcher<Family>;
  copies: PooledBuffer[];
}

const CACHE_FORMAT = 'densenet-webgpu-tune-1';

let mode: TuneMode | null = null; // read from $DENSENET_TUNE on first use
let store: TuneStore | null | undefined; // undefined: not yet chosen (the platform default on first use)
let loaded = false;
const chosen = new Map<string, string>(); // `${family}|${key}` -> variant, for this adapter
const pending = new Map<string, Job>();
const records: TuneRecord[] = [];
let running: Promise<void> | null = null;
let scheduled = false;

/** The mode in $DENSENET_TUNE (Node), or null; a bad value is ignored with a warning naming the variable. */
export function envTuneMode(): TuneMode | null {
  return envChoice('DENSENET_TUNE', MODES);
}

/** Sets the tuning mode ('off' | 'cached' | 'on'). */
export function setTuneMode(m: TuneMode): void {
  if (!MODES.includes(m)) throw new Error(`tune mode must be one of ${MODES.join(', ')}, got '${String(m)}'`);
  mode = m;
}

export function tuneMode(): TuneMode {
  mode ??= envTuneMode() ?? 'off';
  return mode;
}

/** Uses another store for the persisted choices (null: keep them in memory only); reloads from it. */
export function setTuneStore(s: TuneStore | null): void {
  store = s;
  loaded = false;
  cacheWarned = false;
  chosen.clear();
}

/**
 * Forgets every choice in memory (not in the store), the measurement records and the drop history;
 * with `fresh`, the stored choices are not read back either (the next shapes are measured again, and
 * then saved).
 */
export function resetTuning({ fresh = false } = {}): void {
  chosen.clear();
  records.length = 0;
  history.clear();
  loaded = fresh;
  if (fresh && store === undefined) store = defaultTuneStore();
}

/** What the tuner measured in this process, in order. */
export function tuneRecords(): readonly TuneRecord[] {
  return records;
}

/** The adapter as the choices depend on it: its name, 'fallback' or 'hw' as the rules see it (see assumeHardwareRules), its subgroups. */
function adapterKey(): string {
  const g = gpu();
  const a = g.adapter;
  const f = g.features;
  return `${a.vendor}/${a.architecture}/${a.description}/${currentCaps().isFallbackAdapter ? 'fallback' : 'hw'}/sg${f.subgroups ? `${f.subgroupMinSize}-${f.subgroupMaxSize}` : 0}`;
}

function cacheSection(): string {
  return `${ENGINE_VERSION}|${adapterKey()}`;
}

let cacheWarned = false; // one warning per store about an unreadable or unwritable cache
function warn(msg: string): void {
  console.warn(`densenet-webgpu tuner: ${msg}`);
}
function warnCache(msg: string): void {
  if (cacheWarned) return;
  cacheWarned = true;
  warn(msg);
}

type CacheFile = { format: string; sections: Record<string, Record<string, string>> };

function readCache(): CacheFile {
  const empty: CacheFile = { format: CACHE_FORMAT, sections: {} };
  const text = store?.load();
  if (!text) return empty;
  try {
    const c = JSON.parse(text) as CacheFile;
    if (c?.format !== CACHE_FORMAT || typeof c.sections !== 'object' || c.sections === null) throw new Error('not a tuning cache of this engine');
    for (const s of Object.values(c.sections)) {
      if (typeof s !== 'object' || s === null || Object.values(s).some((v) => typeof v !== 'string')) throw new Error('malformed section');
    }
    return c;
  } catch (e) {
    warnCache(`ignoring the tuning cache at ${store!.where} (${(e as Error).message}); it will be rewritten`);
    return empty;
  }
}

let loadedSection: string | null = null; // the cache section the choices in memory belong to

function ensureLoaded(): void {
  // Choices made under other rules (assumeHardwareRules toggled) are another section's: drop them.
  const current = cacheSection();
  if (loadedSection !== null && loadedSection !== current) {
    chosen.clear();
    loaded = false;
  }
  loadedSection = current;
  if (loaded) return;
  loaded = true;
  if (store === undefined) store = defaultTuneStore();
  const section = readCache().sections[cacheSection()] ?? {};
  for (const [k, v] of Object.entries(section)) if (!chosen.has(k)) chosen.set(k, v);
}

function persist(): void {
  if (!store) return;
  const c = readCache();
  const section: Record<string, string> = { ...c.sections[cacheSection()] };
  for (const [k, v] of chosen) section[k] = v;
  c.sections[cacheSection()] = section;
  try {
    store.save(JSON.stringify(c));
  } catch (e) {
    warnCache(`cannot write the tuning cache at ${store.where}: ${(e as Error).message}`);
  }
}

/**
 * The variant that runs a call: forced, else measured for this key, else the heuristic. In 'on' mode a
 * key seen for the first time is queued for measurement (see the header).
 */
export function selectVariant<F extends Family>(family: F, key: string | (() => string), launcher?: Launcher<F> | (() => Launcher<F>)): VariantName<F> {
  const v = chooseFor(family, key, launcher);
  last.set(family, v);
  return v;
}

const last = new Map<Family, string>();
/** The variant the latest call of a family ran (benchmarks name it beside their rows). */
export function lastVariant(family: Family): string | null {
  return last.get(family) ?? null;
}

// The key and launcher may come as functions: they are built only when tuning needs them (off the hot
// path of every dispatch when tuning is off).
function chooseFor<F extends Family>(family: F, keyOf: string | (() => string), launcherOf?: Launcher<F> | (() => Launcher<F>)): VariantName<F> {
  const f = forcedVariant(family);
  if (f) return f;
  const heuristic = heuristicVariant(family);
  const mode = tuneMode();
  if (mode === 'off') return heuristic;
  ensureLoaded();
  const key = typeof keyOf === 'function' ? keyOf() : keyOf;
  const id = `${family}|${key}`;
  const c = chosen.get(id);
  const supported = supportedVariants(family) as string[];
  if (c !== undefined && supported.includes(c)) return c as VariantName<F>;
  const launcher = mode === 'on' && !pending.has(id) && supported.length > 1 && (typeof launcherOf === 'function' ? launcherOf() : launcherOf);
  if (launcher) {
    const copies = copyAll(launcher.buffers);
    if (copies) {
      pending.set(id, { family, key, launcher: launcher as unknown as Launcher<Family>, copies });
      scheduleSettle();
    } else deferred++;
  }
  return heuristic;
}

/**
 * The copies the pending jobs measure on, one per source buffer (shared by the jobs that bind it, so
 * aliases stay aliases and a dense block's buffer is copied once), at most MAX_COPY_BYTES in all: a
 * key that would pass that is not queued now (it is queued again the next time it is seen).
 */
const copies = new Map<number, { copy: PooledBuffer; refs: number }>();
let copyBytes = 0;
let deferred = 0;
const MAX_COPY_BYTES = 256 * 2 ** 20;

function copyAll(buffers: PooledBuffer[]): PooledBuffer[] | null {
  const fresh = [...new Map(buffers.filter((b) => !copies.has(b.id)).map((b) => [b.id, b])).values()];
  const bytes = fresh.reduce((s, b) => s + b.size, 0);
  if (copyBytes + bytes > MAX_COPY_BYTES && copyBytes > 0) return null;
  const made: PooledBuffer[] = [];
  try {
    for (const b of fresh) made.push(pool.acquire(b.size, 'tuner'));
  } catch (e) {
    for (const c of made) pool.release(c);
    warn(`cannot copy a call's arguments to measure it (${(e as Error).message}); keeping the heuristic`);
    return null;
  }
  fresh.forEach((b, i) => {
    made[i].half = b.half; // a copy holds the same element type (the runtime checks it against bindings)
    copyBuffer(b, 0, made[i], 0, b.size);
    copies.set(b.id, { copy: made[i], refs: 0 });
    copyBytes += made[i].size;
  });
  const ids = [...new Set(buffers.map((b) => b.id))];
  for (const i of ids) copies.get(i)!.refs++;
  return buffers.map((b) => copies.get(b.id)!.copy);
}

function releaseCopies(job: Job): void {
  for (const c of new Set(job.copies)) {
    const [id, e] = [...copies].find(([, v]) => v.copy === c)!;
    if (--e.refs === 0) {
      copies.delete(id);
      copyBytes -= c.size;
      pool.release(c);
    }
  }
}

/** How many new keys were not queued since the last call (the copies' budget was full); resets it. */
export function takeDeferred(): number {
  const n = deferred;
  deferred = 0;
  return n;
}

/** Runs the jobs at the next turn of the event loop (later while someone's profile is running). */
function scheduleSettle(delayMs = 0): void {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    if (profiling()) return scheduleSettle(50);
    void settleTuning().catch((e) => warn(`tuning failed: ${(e as Error).message}`));
  }, delayMs);
}

/** Measures every queued job; resolves when the choices are made (and persisted). */
export async function settleTuning(): Promise<void> {
  while (running) await running;
  if (!pending.size) return;
  running = (async () => {
    try {
      while (pending.size) {
        const [id, job] = pending.entries().next().value as [string, Job];
        try {
          const rec = await measure(job);
          records.push(rec);
          chosen.set(id, rec.chosen);
        } finally {
          pending.delete(id);
          releaseCopies(job);
        }
      }
      persist();
    } finally {
      running = null;
    }
  })();
  await running;
}

const ROUNDS = 3;
/** After the first round a candidate this much slower than the best is dropped (never the heuristic). */
const DROP_RATIO = 2;
/** Each candidate's dispatches per round add up to about this much GPU time (short kernels repeat). */
const ROUND_MS = 2;

/** Runs one candidate once and waits: compiles its pipelines; wall-clock ms (Infinity if it fails). */
async function warmUp(job: Job, v: string): Promise<number> {
  try {
    await sync();
    const t0 = performance.now();
    job.launcher.run(v as never, job.copies);
    await sync();
    return performance.now() - t0;
  } catch {
    return Infinity;
  }
}

/**
 * Milliseconds per dispatch of each candidate, `reps` dispatches each, interleaved: one timestamp
 * profile for the round (kernel names carry the variant, `file[variant]:entry`), or the wall clock
 * around each candidate's dispatches.
 */
async function timeRound(job: Job, vs: string[], reps: number, useTimestamps: boolean): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (useTimestamps && !profiling()) {
    try {
      // A candidate's repetitions back to back in one timed pass (merge): on lavapipe a pass per
      // dispatch charged each repetition of a small kernel about 50 us of timestamp cost.
      startProfile({ merge: true });
      let times: KernelTime[];
      try {
        for (const v of vs) for (let r = 0; r < reps; r++) job.launcher.run(v as never, job.copies);
      } finally {
        // Also when a candidate throws: the profile must not stay on for the rest of the process.
        times = await stopProfile();
      }
      for (const v of vs) {
        const ms = times.filter((t) => t.kernel.includes(`[${v}]:`)).reduce((sum, t) => sum + t.ms, 0);
        out[v] = ms > 0 ? ms / reps : Infinity;
      }
      return out;
    } catch {
      // fall back to the wall clock
    }
  }
  for (const v of vs) {
    try {
      await sync();
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) job.launcher.run(v as never, job.copies);
      await sync();
      out[v] = (performance.now() - t0) / reps;
    } catch {
      out[v] = Infinity;
    }
  }
  return out;
}

/**
 * Per (family, entry point): at how many shapes each variant was measured, whether it was dropped at one
 * (more than DROP_RATIO times slower than the best), and whether it was ever the one chosen. A variant
 * never chosen that was dropped once, or measured at PRUNE_AFTER shapes, is not compiled or timed again
 * for that entry in this process: compiling pipelines is most of a tuning run's time on CPU adapters
 * (lavapipe with a cold shader cache, the seed DenseNet: 92 s when candidates were pruned only after 3
 * drops, 58 s of it compiling candidates that did not win; 2-8x slower variants such as the
 * workgroup-memory tiles there took 1.5-2 s per pipeline).
 */
const history = new Map<string, { measured: number; dropped: boolean; chosen: boolean }>();
const PRUNE_AFTER = 2;

async function measure(job: Job): Promise<TuneRecord> {
  const heuristic = heuristicVariant(job.family) as string;
  const entry = `${job.family}|${job.key.split('|')[0]}`;
  const hist = (v: string) => {
    const k = `${entry}|${v}`;
    let h = history.get(k);
    if (!h) history.set(k, (h = { measured: 0, dropped: false, chosen: false }));
    return h;
  };
  const pruned: string[] = [];
  let useTimestamps = canProfile();
  const best: Record<string, number> = {};
  const dropped: string[] = [];
  let alive: string[] = [];
  const warm: Record<string, number> = {};
  for (const v of supportedVariants(job.family).filter((x) => x !== 'naive') as string[]) {
    const h = hist(v);
    if (v !== heuristic && !h.chosen && (h.dropped || h.measured >= PRUNE_AFTER)) {
      pruned.push(v);
      continue;
    }
    warm[v] = await warmUp(job, v);
    if (Number.isFinite(warm[v])) alive.push(v);
    else best[v] = Infinity;
  }
  const fastest = Math.min(...Object.values(warm));
  const reps = Number.isFinite(fastest) ? Math.max(1, Math.min(16, Math.ceil(ROUND_MS / fastest))) : 1;
  for (let round = 0; round < ROUNDS && alive.length > 1; round++) {
    const order = round % 2 ? [...alive].reverse() : alive;
    const t = await timeRound(job, order, reps, useTimestamps);
    if (round === 0 && useTimestamps && Object.values(t).every((ms) => ms === Infinity)) useTimestamps = false;
    for (const v of order) best[v] = Math.min(best[v] ?? Infinity, t[v]);
    if (round === 0) {
      const leader = Math.min(...alive.map((v) => best[v]));
      for (const v of alive) if (v !== heuristic && !(best[v] <= DROP_RATIO * leader)) dropped.push(v);
      alive = alive.filter((v) => !dropped.includes(v));
      for (const v of dropped) hist(v).dropped = true;
    }
  }
  for (const v of alive) best[v] ??= warm[v]; // a lone survivor was only warmed up
  const finite = Object.entries(best).filter(([, ms]) => Number.isFinite(ms));
  let winner = heuristic;
  if (!finite.length) {
    warn(`every candidate of ${job.family} ${job.key} failed; keeping the heuristic '${heuristic}'`);
  } else {
    winner = alive.length === 1 ? alive[0] : finite.reduce((a, b) => (b[1] < a[1] ? b : a))[0];
    // Within 3% of the heuristic is noise: keep the heuristic (deterministic, and known-good).
    if (best[heuristic] !== undefined && best[winner] > best[heuristic] / 1.03) winner = heuristic;
  }
  for (const v of Object.keys(best)) hist(v).measured++;
  hist(winner).chosen = true;
  return { family: job.family, key: job.key, label: job.launcher.label ?? job.key, flops: job.launcher.flops, heuristic, chosen: winner, ms: best, dropped, pruned, timer: useTimestamps ? 'timestamp' : 'wall' };
}

