import { totalmem } from 'node:os';
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import * as models from '../models/index.js';
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

  test('a request past the budget with the cache destroys only as much of the cache as it needs', async () => {
    await E.pool.trim();
    const a = E.empty([1 << 18]); // 1, 1.5 and 0.5 MiB (none can serve another's request)
    const b = E.empty([3 << 17]);
    const c = E.empty([1 << 17]);
    a.dispose();
    b.dispose();
    c.dispose();
    const { liveBytes, cachedBytes } = E.memory();
    const budget = E.pool.budgetBytes;
    // Room for a new 2.5 MiB buffer once a (the oldest, 1 MiB) and b (1.5 MiB) are gone, not c.
    E.pool.budgetBytes = liveBytes + cachedBytes + (1 << 20);
    try {
      const d = E.empty([5 << 17]);
      expect(E.memory().cachedBytes).toBe(cachedBytes - (1 << 20) - (3 << 19)); // c stays cached
      d.dispose();
    } finally {
      E.pool.budgetBytes = budget;
      await E.pool.trim();
    }
  });

  test('a budget turns an allocation past it into an out-of-memory error', () => {
    const live = E.memory().liveBytes;
    const budget = E.pool.budgetBytes;
    E.pool.budgetBytes = live + 64 * 1024;
    try {
      expect(() => E.zeros([1 << 20])).toThrow(/out of memory.*budget/);
    } finally {
      E.pool.budgetBytes = budget;
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
    expect(() => E.add(a, a)).toThrow(/add: Tensor#\d+ \[2\] \(the first operand\) was used after it was disposed/);
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

describe('the pool under memory pressure', () => {
  test('many distinct sizes: cached bytes stay within the bound, the oldest are destroyed', async () => {
    await E.pool.trim();
    const allocations = E.memory().allocations;
    expect(E.pool.cacheLimitBytes).toBeNull(); // the default bound
    const limit = E.pool.cacheLimit;
    expect(limit).toBeGreaterThanOrEqual(64 << 20);
    let released = 0;
    for (let i = 0; i < 120; i++) {
      const t = E.empty([(1 << 18) + i * 2048]); // 1 MiB and up, each a new size class
      released += t.buffer.size;
      t.dispose();
      expect(E.memory().cachedBytes).toBeLessThanOrEqual(limit);
    }
    expect(E.memory().allocations - allocations).toBe(120);
    expect(released).toBeGreaterThan(limit);
    // An explicit bound.
    E.pool.cacheLimitBytes = 4 << 20;
    try {
      for (let i = 0; i < 20; i++) E.empty([(1 << 18) + i * 2048]).dispose();
      expect(E.memory().cachedBytes).toBeLessThanOrEqual(4 << 20);
    } finally {
      E.pool.cacheLimitBytes = null;
    }
  });

  test('a loop whose buffers add up to more than its peak stops re-creating them: the default bound grows', async () => {
    await E.pool.trim();
    const limit0 = E.pool.cacheLimit;
    // Each iteration: three buffers, 30%, 40% and 55% of the bound (more than 25% apart, so none can
    // serve another's request), never live together: the peak stays under the bound but the three do
    // not fit in it (as DenseNet-121's activations and then the optimiser's packed parameters did).
    const sizes = [0.3, 0.4, 0.55].map((f) => Math.floor((limit0 * f) / 4));
    const iteration = () => {
      for (const n of sizes) E.empty([n]).dispose();
    };
    try {
      for (let i = 0; i < 4; i++) iteration();
      const { allocations } = E.memory();
      for (let i = 0; i < 3; i++) iteration();
      expect(E.memory().allocations).toBe(allocations); // every buffer reused: none destroyed and made again
      expect(E.pool.cacheLimit).toBeGreaterThan(limit0);
      // trim() empties the cache on purpose: what is asked for afterwards does not grow the bound.
      const grown = E.pool.cacheLimit;
      await E.pool.trim();
      iteration();
      expect(E.pool.cacheLimit).toBe(grown);
    } finally {
      await E.pool.trim();
    }
  });

  test('buffers the bound destroyed before a trim() do not grow it when they are made again', async () => {
    await E.pool.trim();
    const limit0 = E.pool.cacheLimit;
    const sizes = [0.3, 0.4, 0.55].map((f) => Math.floor((limit0 * f) / 4));
    try {
      for (const n of sizes) E.empty([n]).dispose(); // the bound destroys the first two
      await E.pool.trim();
      const limit1 = E.pool.cacheLimit; // (the largest buffer may have raised the peak, and so the bound)
      for (const n of sizes) E.empty([n]).dispose(); // made again after the cache was emptied on purpose
      expect(E.pool.cacheLimit).toBe(limit1);
    } finally {
      await E.pool.trim();
    }
  });

  test('the default bound grows by at most twice the peak, however many sizes a loop cycles through', async () => {
    await E.pool.trim();
    const base = E.memory().liveBytes;
    // Ten sizes 1.3x apart (none can serve another's request), the largest 100 MiB (the peak from here
    // on, over the other tests of this file): together about four times the peak.
    const sizes = Array.from({ length: 10 }, (_, i) => Math.floor((100 << 20) / 4 / 1.3 ** i));
    try {
      for (let i = 0; i < 6; i++) for (const n of sizes) E.empty([n]).dispose();
      const peak = base + (100 << 20);
      expect(E.pool.cacheLimit).toBeGreaterThan(peak); // it grew
      expect(E.pool.cacheLimit).toBeLessThanOrEqual(3 * peak + (1 << 20)); // the peak plus at most twice it
      expect(E.memory().cachedBytes).toBeLessThanOrEqual(E.pool.cacheLimit);
    } finally {
      await E.pool.trim();
    }
  });

  test('a training loop of one shape still reuses every buffer under the default bound', async () => {
    const step = () => E.scope(() => void E.sum(E.relu(E.mul(E.randn([300, 301]), 2))));
    step();
    const { allocations } = E.memory();
    for (let i = 0; i < 5; i++) step();
    expect(E.memory().allocations).toBe(allocations);
  });

  test('a request gets the same cached buffer whatever order the free ones were released in', () => {
    // Three buffers of one size class, released in one order and then in the reverse: the first request
    // after each gets the same buffer (the oldest), so the same work reaches the same buffers.
    const firstAfter = (order: number[]) => {
      const ts = [0, 1, 2].map(() => E.empty([7001]));
      const ids = ts.map((t) => t.buffer.id);
      order.forEach((i) => ts[i].dispose());
      const t = E.empty([7001]);
      const got = ids.indexOf(t.buffer.id);
      t.dispose();
      return { got, ids };
    };
    const a = firstAfter([0, 1, 2]);
    const b = firstAfter([2, 1, 0]);
    expect(b.ids).toEqual(a.ids); // the same three buffers both times
    expect(a.got).toBe(0);
    expect(b.got).toBe(0);
  });

  test('a training step of a DenseNet creates no bind group once warm (every dispatch reuses one)', () => {
    E.manualSeed(0);
    const model = new models.DenseNet({ numChannels: 8, growthRate: 4, arch: [3, 2], numClasses: 3 });
    const x = E.keep(E.randn([4, 1, 16, 16]));
    const y = E.keep(E.tensor([0, 1, 2, 1]));
    model.predict(x).dispose();
    const opt = new nn.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const step = () => {
      E.scope(() => {
        opt.zeroGrad();
        nn.crossEntropy(model(x), y).backward();
      });
      opt.step();
    };
    try {
      for (let i = 0; i < 4; i++) step();
      const before = E.bindGroupsCreated();
      const d0 = E.dispatches();
      for (let i = 0; i < 3; i++) step();
      expect(E.dispatches() - d0).toBeGreaterThan(30);
      expect(E.bindGroupsCreated() - before).toBe(0);
    } finally {
      opt.zeroGrad();
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    }
  });

  test('an allocation the device fails is the pool\'s out-of-memory error at the next sync point', async () => {
    const device = E.gpu().device;
    const pop = device.popErrorScope.bind(device);
    // Dawn on lavapipe never reports out-of-memory (it allocates lazily), so this simulates the report.
    device.popErrorScope = async () => {
      await pop();
      return { message: 'simulated allocation failure' } as GPUError;
    };
    let t: E.Tensor;
    try {
      t = E.empty([777777]);
    } finally {
      device.popErrorScope = pop;
    }
    const err = await E.sync().then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/BufferPool: out of memory: the device could not allocate a tensor buffer of 3\.0 MiB .*simulated allocation failure/);
    t.dispose();
    await E.sync(); // reported once
  });

  test('the default budget comes from the adapter (host memory for a CPU adapter under Node)', () => {
    const g = E.gpu();
    expect(E.pool.budgetBytes).toBe(g.memoryBudget);
    if (g.adapter.isFallbackAdapter) {
      expect(g.memoryBudget).toBeGreaterThan(0);
      expect(g.memoryBudget).toBeLessThanOrEqual(0.75 * totalmem());
    }
    expect(() => (E.pool.budgetBytes = -1)).toThrow(/budget must be a number of bytes >= 0/);
  });
});
