import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { sizeClass } from '../engine/pool.js';
import { useEngine } from './helpers.js';

useEngine();

describe('buffer pool accounting', () => {
  test("new buffers: the request rounded up to 256 bytes (4 KiB above 1 MiB)", () => {
    for (const n of [1, 255, 256, 257, 1000, 4096, 5000, 123457, 1 << 20, (1 << 20) + 1]) {
      const s = sizeClass(n);
      expect(s).toBeGreaterThanOrEqual(n);
      expect(s % 256).toBe(0);
      expect(s - n).toBeLessThan(n > 1 << 20 ? 4096 : 256);
    }
  });

  test('live, peak, cached and per-tag bytes are exact', () => {
    E.scope(() => E.zeros([1])); // warm-up: the uniform arena is allocated once
    const m0 = E.memory();
    const a = E.zeros([1000]); // 4000 bytes -> 4096 class
    const m1 = E.memory();
    expect(m1.liveBytes - m0.liveBytes).toBe(sizeClass(4000));
    expect(m1.byTag.tensor - (m0.byTag.tensor ?? 0)).toBe(sizeClass(4000));
    E.pool.resetPeak();
    const b = E.zeros([2000]);
    expect(E.memory().peakBytes).toBe(m1.liveBytes + sizeClass(8000));
    b.dispose();
    a.dispose();
    const m2 = E.memory();
    expect(m2.liveBytes).toBe(m0.liveBytes);
    expect(m2.peakBytes).toBe(m1.liveBytes + sizeClass(8000)); // peak stays until reset
    expect(m2.cachedBytes).toBeGreaterThanOrEqual(sizeClass(4000) + sizeClass(8000));
    const reuses = m2.reuses;
    const c = E.zeros([1000]); // same class: reused, not allocated
    expect(E.memory().reuses).toBe(reuses + 1);
    c.dispose();
    E.pool.trim();
    expect(E.memory().cachedBytes).toBe(0);
  });

  test('a request over the device limit is a clear error', () => {
    const limit = E.gpu().limits.maxStorageBufferBindingSize;
    expect(() => E.empty([Math.ceil(limit / 4) + 1024])).toThrow(/exceeds the device limit/);
  });

  test('a budget turns an allocation past it into an out-of-memory error', () => {
    const live = E.memory().liveBytes;
    E.pool.budgetBytes = live + 64 * 1024;
    try {
      expect(() => E.zeros([1 << 20])).toThrow(/out of memory.*budget/);
    } finally {
      E.pool.budgetBytes = 0;
    }
  });
});

describe('the ownership rule', () => {
  test('scope frees what it created and did not return; returned tensors survive', async () => {
    const before = E.memory().liveBytes;
    const kept = E.scope(() => {
      const a = E.ones([100]);
      const b = E.mul(a, 3);
      const c = E.add(b, 1);
      return { c };
    });
    expect(await kept.c.data()).toEqual(new Float32Array(100).fill(4));
    kept.c.dispose();
    expect(E.memory().liveBytes).toBe(before);
  });

  test('1000 iterations of a training-like step leave live bytes where they started', async () => {
    const w = E.keep(E.randn([33, 7]));
    w.requiresGrad = true;
    const x = E.randn([5, 33]);
    // one step first: the parameter's .grad is allocated once
    const step = () =>
      E.scope(() => {
        const loss = E.mean(E.square(E.relu(E.matmul(x, w))));
        loss.backward();
        const g = w.grad!;
        w.grad = null;
        g.dispose();
      });
    step();
    await E.sync();
    const start = E.memory().liveBytes;
    for (let i = 0; i < 1000; i++) step();
    await E.sync();
    expect(E.memory().liveBytes).toBe(start);
  });

  test('views keep storage alive until the last one is disposed', async () => {
    const before = E.memory().liveBytes;
    const a = E.tensor([1, 2, 3, 4]);
    const v = E.slice(a, 0, 1, 3);
    a.dispose();
    expect(Array.from(await v.data())).toEqual([2, 3]);
    v.dispose();
    expect(E.memory().liveBytes).toBe(before);
  });

  test('using or reading a disposed tensor throws, naming the op', async () => {
    const a = E.tensor([1, 2]);
    a.dispose();
    expect(() => E.add(a, a)).toThrow(/add: Tensor#\d+ \[2\] \(input 0\) was used after it was disposed/);
    await expect(a.data()).rejects.toThrow(/data\(\).*disposed/);
    a.dispose(); // twice is harmless
  });

  test('backward after the saved tensors were freed is a clear error', () => {
    const x = E.tensor([1, 2]);
    x.requiresGrad = true;
    let loss!: E.Tensor;
    E.scope(() => {
      loss = E.keep(E.sum(E.mul(x, x)));
    });
    expect(() => loss.backward()).toThrow(/disposed/);
  });
});
