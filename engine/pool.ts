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
// A request larger than the device's maxBufferSize, or one that would take live + cached bytes past
// the optional budget, throws an Error naming the size and the limit instead of failing inside WebGPU.

import { gpu } from './gpu.js';

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

class BufferPool {
  private free = new Map<string, PooledBuffer[]>();
  private nextId = 1;
  private stats = { liveBytes: 0, peakBytes: 0, cachedBytes: 0, liveBuffers: 0, allocations: 0, reuses: 0 };
  private tags = new Map<string, number>();
  /** Optional cap on live + cached bytes (0 = none): a request past it throws a clear error. */
  budgetBytes = 0;
  /** Called when buffers are destroyed, so caches that hold them (bind groups) can drop them. */
  onDestroy: (() => void) | null = null;

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
      if (this.budgetBytes && this.stats.liveBytes + this.stats.cachedBytes + size > this.budgetBytes) this.trim();
      if (this.budgetBytes && this.stats.liveBytes + size > this.budgetBytes) {
        throw new Error(
          `BufferPool: out of memory: a ${tag} buffer of ${formatBytes(size)} would take live GPU memory to ` +
            `${formatBytes(this.stats.liveBytes + size)}, past the budget of ${formatBytes(this.budgetBytes)}`,
        );
      }
      const buffer = gpu().device.createBuffer({ size, usage, label: tag });
      pb = { buffer, size, usage, id: this.nextId++, tag, live: false };
      this.stats.allocations++;
    }
    pb.tag = tag;
    pb.live = true;
    this.stats.liveBytes += pb.size;
    this.stats.liveBuffers++;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.liveBytes);
    this.tags.set(tag, (this.tags.get(tag) ?? 0) + pb.size);
    return pb;
  }

  /** The smallest kept buffer of this usage with size in [size, size * REUSE_SLACK], removed from the cache. */
  private takeFree(size: number, usage: number): PooledBuffer | undefined {
    const exact = this.free.get(`${size}:${usage}`);
    if (exact?.length) return exact.pop();
    let best: PooledBuffer[] | undefined;
    let bestSize = Infinity;
    for (const [key, list] of this.free) {
      if (!list.length) continue;
      const [s, u] = key.split(':').map(Number);
      if (u === usage && s >= size && s <= size * REUSE_SLACK && s < bestSize) {
        best = list;
        bestSize = s;
      }
    }
    return best?.pop();
  }

  release(pb: PooledBuffer): void {
    if (!pb.live) throw new Error(`BufferPool: buffer ${pb.id} (${pb.tag}) released twice`);
    pb.live = false;
    this.stats.liveBytes -= pb.size;
    this.stats.liveBuffers--;
    this.stats.cachedBytes += pb.size;
    this.tags.set(pb.tag, (this.tags.get(pb.tag) ?? 0) - pb.size);
    const key = `${pb.size}:${pb.usage}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(pb);
  }

  /** Destroys every cached (released) buffer, returning their memory to the device. */
  trim(): void {
    if (this.stats.cachedBytes === 0) return;
    this.onDestroy?.();
    for (const list of this.free.values()) for (const pb of list) pb.buffer.destroy();
    this.free.clear();
    this.stats.cachedBytes = 0;
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
