// The buffer pool: every GPU byte the engine uses is allocated here.
//
// New buffers get the request rounded up to a multiple of 256 bytes (4 KiB above 1 MiB). Freed buffers
// are kept per (size, usage); a request reuses the smallest kept buffer of its usage that is at least as
// large and at most 25% larger (a training loop asks for the same sizes every step, so it finds exact
// matches). The counters are exact, in bytes of real GPU buffers:
//   liveBytes    buffers handed out and not yet released;
//   peakBytes    the largest liveBytes since the last resetPeak();
//   cachedBytes  released buffers kept for reuse (trim() destroys them);
//   byTag        live bytes per tag ('tensor', 'uniforms', 'readback', ...).
// The cache is bounded: past `cacheLimitBytes` the buffers released longest ago are destroyed. The
// default bound is the largest liveBytes ever seen (at least 64 MiB), grown by the size of every buffer
// the loop asks for again after the bound destroyed one of its size: a step's buffers of sizes that
// never overlap in time (DenseNet-121's activations, then the optimiser's packed parameters) can add
// up to more than its peak, and a bound below what one step uses destroyed and re-created 103 buffers
// (123 MiB) and, with them, 650 bind groups every step. The growth stops at twice the peak (MAX_GROWTH).
// Out of memory is a clear Error naming the size and the limit, in three places: a request larger than
// the device's maxBufferSize (at once); one that would take live bytes past `budgetBytes` (at once; the
// default comes from gpu().memoryBudget); and an allocation the device itself fails (Dawn reports it
// asynchronously, through an error scope: thrown at the next sync point, see checkDeviceErrors()).

import { gpu, reportDeviceError } from './gpu.js';

export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  /** Real size of the GPU buffer (the size class), >= the requested size. */
  readonly size: number;
  readonly usage: number;
  readonly id: number;
  tag: string;
  live: boolean;
  /** Holds float16 elements (set by the tensor that owns it; the runtime checks it against kernels). */
  half: boolean;
}

export interface PoolStats {
  liveBytes: number;
  peakBytes: number;
  cachedBytes: number;
  liveBuffers: number;
  allocations: number;
  reuses: number;
  byTag: Record<string, number>;
}

/** The size of a new buffer for a request: a multiple of 256 bytes, or of 4 KiB above 1 MiB. */
export function sizeClass(bytes: number): number {
  const step = bytes > 1 << 20 ? 4096 : 256;
  return Math.max(256, Math.ceil(bytes / step) * step);
}

/** A kept buffer may serve requests down to this fraction of its size. */
const REUSE_SLACK = 1.25;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The cache's smallest default bound (see the header). */
const MIN_CACHE_LIMIT = 64 << 20;
/**
 * The default bound grows by at most this many times the peak: a device reports running out of memory
 * only later (see the header), so cached buffers must not crowd out what a step needs. DenseNet-121's
 * training step needed 0.6x its peak, the seed DenseNet's at batch 64, 96x96 1.4x.
 */
const MAX_GROWTH = 2;

/** Cached buffers of one size and usage. */
interface FreeList {
  size: number;
  usage: number;
  buffers: PooledBuffer[];
}

/** Removes and returns the buffer of lowest id from a non-empty free list (whose order is not kept). */
function takeOldest(list: PooledBuffer[]): PooledBuffer {
  let at = 0;
  for (let i = 1; i < list.length; i++) if (list[i].id < list[at].id) at = i;
  const pb = list[at];
  list[at] = list[list.length - 1];
  list.pop();
  return pb;
}

class BufferPool {
  /** Cached buffers by `size:usage`; a list is deleted when it empties (requests scan the lists). */
  private free = new Map<string, FreeList>();
  /** Every cached buffer, oldest release first (the order in which the cache bound destroys them). */
  private released = new Set<PooledBuffer>();
  private nextId = 1;
  private stats = { liveBytes: 0, peakBytes: 0, cachedBytes: 0, liveBuffers: 0, allocations: 0, reuses: 0 };
  /** The largest liveBytes ever (resetPeak() does not lower it): the default cache bound. */
  private highWater = 0;
  private tags = new Map<string, number>();
  private budget: number | null = null;
  /** Cap on cached bytes; null = the default (see the header). */
  cacheLimitBytes: number | null = null;
  /** Size classes (`size:usage`) the cache bound destroyed buffers of, and how many (see the header). */
  private evicted = new Map<string, number>();
  /** Bytes the default cache bound has grown by: buffers asked for again after the bound destroyed them. */
  private grownBytes = 0;
  /** Called when buffers are destroyed, so caches that hold them (bind groups) can drop them. */
  onDestroy: (() => void) | null = null;

  /** Cap on live + cached bytes (0 = none): a request past it throws the out-of-memory error. */
  get budgetBytes(): number {
    return this.budget ?? gpu().memoryBudget;
  }
  set budgetBytes(bytes: number) {
    if (!(Number.isFinite(bytes) && bytes >= 0)) throw new Error(`BufferPool: the budget must be a number of bytes >= 0, got ${bytes}`);
    this.budget = bytes;
  }

  acquire(bytes: number, tag: string, usage: number = STORAGE_USAGE): PooledBuffer {
    if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`BufferPool: invalid request of ${bytes} bytes (tag ${tag})`);
    const { limits } = gpu();
    const size = sizeClass(Math.max(bytes, 4));
    const maxSize = usage & BufferUsage.STORAGE ? Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize) : limits.maxBufferSize;
    if (size > maxSize) {
      throw new Error(
        `BufferPool: a ${tag} buffer of ${formatBytes(bytes)} (${bytes} bytes) exceeds the device limit of ` +
          `${formatBytes(maxSize)} per ${usage & BufferUsage.STORAGE ? 'storage binding' : 'buffer'}; use a smaller batch or input size`,
      );
    }
    let pb = this.takeFree(size, usage);
    if (pb) {
      this.stats.cachedBytes -= pb.size;
      this.stats.reuses++;
    } else {
      const budget = this.budgetBytes;
      // Past the budget with the cache: destroy only as much of it as the request needs (oldest first).
      if (budget && this.stats.liveBytes + this.stats.cachedBytes + size > budget) this.evict(Math.max(0, budget - this.stats.liveBytes - size));
      if (budget && this.stats.liveBytes + size > budget) {
        throw new Error(
          `BufferPool: out of memory: a ${tag} buffer of ${formatBytes(size)} would take live GPU memory to ` +
            `${formatBytes(this.stats.liveBytes + size)}, past the budget of ${formatBytes(budget)}; ` +
            'use a smaller batch or input size, or raise the budget (pool.budgetBytes, init({ memoryBudget }))',
        );
      }
      this.noteRecreated(`${size}:${usage}`, size);
      pb = { buffer: this.createBuffer(size, usage, tag), size, usage, id: this.nextId++, tag, live: false, half: false };
      this.stats.allocations++;
    }
    pb.tag = tag;
    pb.live = true;
    pb.half = false;
    this.stats.liveBytes += pb.size;
    this.stats.liveBuffers++;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.liveBytes);
    this.highWater = Math.max(this.highWater, this.stats.liveBytes);
    this.tags.set(tag, (this.tags.get(tag) ?? 0) + pb.size);
    return pb;
  }

  /** createBuffer inside an out-of-memory error scope: a failure the device reports becomes the pool's error. */
  private createBuffer(size: number, usage: number, tag: string): GPUBuffer {
    const { device } = gpu();
    device.pushErrorScope('out-of-memory');
    const buffer = device.createBuffer({ size, usage, label: tag });
    const live = this.stats.liveBytes;
    void device.popErrorScope().then((err) => {
      if (!err) return;
      reportDeviceError(
        `BufferPool: out of memory: the device could not allocate a ${tag} buffer of ${formatBytes(size)} ` +
          `(with ${formatBytes(live)} live): ${err.message}; use a smaller batch or input size, or set a budget ` +
          '(pool.budgetBytes, init({ memoryBudget })) below what the device can hold',
      );
    });
    return buffer;
  }

  /**
   * The smallest kept buffer of this usage with size in [size, size * REUSE_SLACK], removed from the
   * cache; of several of that size, the oldest (lowest id). Which buffer a request gets then depends on
   * which are free, not on the order they were released in, so a loop that makes the same requests
   * each iteration gets the same buffers each iteration and the runtime's bind groups (keyed by buffer)
   * are reused; taking the last released one instead, a training step of the seed DenseNet created 48
   * of its 123 bind groups anew every step (59 us each in Dawn).
   */
  private takeFree(size: number, usage: number): PooledBuffer | undefined {
    let best = this.free.get(`${size}:${usage}`);
    if (!best) {
      for (const f of this.free.values()) {
        if (f.usage === usage && f.size >= size && f.size <= size * REUSE_SLACK && f.size < (best?.size ?? Infinity)) best = f;
      }
    }
    if (!best) return undefined;
    const pb = takeOldest(best.buffers);
    if (!best.buffers.length) this.free.delete(`${best.size}:${best.usage}`);
    this.released.delete(pb);
    return pb;
  }

  release(pb: PooledBuffer): void {
    if (!pb.live) throw new Error(`BufferPool: buffer ${pb.id} (${pb.tag}) released twice`);
    pb.live = false;
    this.stats.liveBytes -= pb.size;
    this.stats.liveBuffers--;
    this.stats.cachedBytes += pb.size;
    this.tags.set(pb.tag, (this.tags.get(pb.tag) ?? 0) - pb.size);
    const key = `${pb.size}:${pb.usage}`;
    let f = this.free.get(key);
    if (!f) this.free.set(key, (f = { size: pb.size, usage: pb.usage, buffers: [] }));
    f.buffers.push(pb);
    this.released.add(pb);
    const limit = this.cacheLimit;
    // Down to 3/4 of the bound, so that a loop over ever new sizes destroys in batches.
    if (this.stats.cachedBytes > limit) this.evict(Math.floor(limit * 0.75), true);
  }

  /** A new buffer of a size class the cache bound destroyed one of: the default bound was too small. */
  private noteRecreated(key: string, size: number): void {
    const n = this.evicted.get(key);
    if (!n) return;
    if (n > 1) this.evicted.set(key, n - 1);
    else this.evicted.delete(key);
    this.grownBytes += size;
  }

  /**
   * Destroys cached buffers, those released longest ago first, until at most `keepBytes` stay cached;
   * `bound`: the cache bound does it (not trim()), so a new buffer of one of their sizes grows the bound.
   */
  private evict(keepBytes: number, bound = false): void {
    if (this.stats.cachedBytes <= keepBytes) return;
    this.onDestroy?.();
    for (const pb of this.released) {
      if (this.stats.cachedBytes <= keepBytes) break;
      this.released.delete(pb);
      const key = `${pb.size}:${pb.usage}`;
      const list = this.free.get(key)!.buffers;
      list.splice(list.indexOf(pb), 1);
      if (!list.length) this.free.delete(key);
      if (bound && this.cacheLimitBytes === null) {
        if (this.evicted.size >= 4096) this.evicted.clear();
        this.evicted.set(key, (this.evicted.get(key) ?? 0) + 1);
      }
      pb.buffer.destroy();
      this.stats.cachedBytes -= pb.size;
    }
    // NOTE: Dawn frees a destroyed buffer's memory at a device tick after the next submit completes;
    // without a submit it stays allocated until some later work, so submit (an empty batch) now.
    gpu().device.queue.submit([]);
  }

  /**
   * Destroys every cached (released) buffer. The device frees their memory when the GPU is idle; await
   * the result to know it has (the next sync point does the same).
   */
  async trim(): Promise<void> {
    // What the bound destroyed before is not a sign that it is too small once the cache is emptied on purpose.
    this.evicted.clear();
    if (this.stats.cachedBytes === 0) return;
    this.evict(0);
    const { queue } = gpu().device;
    await queue.onSubmittedWorkDone();
    // Dawn releases a destroyed buffer's memory at a device tick after the submit that follows it has
    // completed, which may come after the wait above resolves: one more empty submit and wait makes sure
    // that tick has run (before, `await trim()` sometimes returned with the memory still held).
    queue.submit([]);
    await queue.onSubmittedWorkDone();
  }

  /** The bound on cached bytes now in force (cacheLimitBytes, or the default; see the header). */
  get cacheLimit(): number {
    if (this.cacheLimitBytes !== null) return this.cacheLimitBytes;
    const bound = Math.max(this.highWater, MIN_CACHE_LIMIT);
    const grown = bound + Math.min(this.grownBytes, MAX_GROWTH * this.highWater);
    // Under a budget the growth leaves room for the peak (the bound itself stays as it always was).
    const budget = this.budgetBytes;
    return budget ? Math.max(bound, Math.min(grown, budget - this.highWater)) : grown;
  }

  resetPeak(): void {
    this.stats.peakBytes = this.stats.liveBytes;
  }

  snapshot(): PoolStats {
    const byTag: Record<string, number> = {};
    for (const [t, n] of this.tags) if (n) byTag[t] = n;
    return { ...this.stats, byTag };
  }
}

/** The process-wide pool. */
export const pool = new BufferPool();

/** Counters of the buffer pool (live, peak, cached and per-tag bytes). */
export function memory(): PoolStats {
  return pool.snapshot();
}
