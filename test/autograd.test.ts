import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { useEngine } from './helpers.js';

useEngine();

describe('autograd', () => {
  test('a tensor used twice accumulates both gradients', async () => {
    const x = E.tensor([1, 2, 3]);
    x.requiresGrad = true;
    const y = E.add(E.mul(x, x), x); // x^2 + x -> 2x + 1
    E.sum(y).backward();
    expect(Array.from(await x.grad!.data())).toEqual([3, 5, 7]);
  });

  test('backward twice into the same leaf adds into .grad', async () => {
    const x = E.tensor([1, 2]);
    x.requiresGrad = true;
    E.sum(E.mulScalar(x, 3)).backward();
    E.sum(E.mulScalar(x, 3)).backward();
    expect(Array.from(await x.grad!.data())).toEqual([6, 6]);
  });

  test('add passes one gradient to two leaves without aliasing them', async () => {
    const a = E.tensor([1, 2]);
    const b = E.tensor([3, 4]);
    a.requiresGrad = b.requiresGrad = true;
    E.sum(E.add(a, b)).backward();
    expect(a.grad).not.toBe(b.grad);
    expect(a.grad!.storage).not.toBe(b.grad!.storage);
    a.grad!.dispose();
    expect(Array.from(await b.grad!.data())).toEqual([1, 1]);
  });

  test('noGrad records nothing; requiresGrad propagates only from inputs that need it', () => {
    const x = E.tensor([1, 2]);
    x.requiresGrad = true;
    const y = E.noGrad(() => E.mul(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    const z = E.mul(E.tensor([1, 1]), 2);
    expect(z.requiresGrad).toBe(false);
    const w = E.mul(x, 2);
    expect(w.requiresGrad).toBe(true);
    expect(w.node?.op).toBe('mulScalar');
  });

  test('an explicit gradient for a non-scalar output; a missing one is a clear error', async () => {
    const x = E.tensor([1, 2, 3]);
    x.requiresGrad = true;
    const y = E.mul(x, x);
    expect(() => y.backward()).toThrow(/not a scalar/);
    y.backward(E.tensor([1, 0, 2]));
    expect(Array.from(await x.grad!.data())).toEqual([2, 0, 12]);
  });

  test('a deep chain (3000 ops) does not overflow the stack', async () => {
    const x = E.tensor([1]);
    x.requiresGrad = true;
    const out = E.scope(() => {
      let y = x;
      for (let i = 0; i < 3000; i++) y = E.addScalar(y, 0.001);
      E.sum(y).backward();
      return null;
    });
    expect(out).toBeNull();
    expect(await x.grad!.item()).toBe(1);
  });

  test('backward frees each gradient once the nodes that need it are done: its peak does not grow with depth', async () => {
    // A chain of 1 MiB tensors with a fork (y used twice) every few ops. Before the fix, every gradient
    // stayed alive until the end of backward: about `depth` MiB above the forward's live bytes.
    const n = 1 << 18;
    const x = E.keep(E.full([n], 1));
    x.requiresGrad = true;
    const extraPeak = (depth: number) =>
      E.scope(() => {
        let y = x;
        for (let i = 0; i < depth; i++) y = i % 4 === 3 ? E.add(y, E.mulScalar(y, 0.5)) : E.mulScalar(y, 1);
        const loss = E.sum(y);
        const before = E.memory().liveBytes;
        E.pool.resetPeak();
        loss.backward();
        return E.memory().peakBytes - before;
      });
    const shallow = extraPeak(8);
    const deep = extraPeak(32);
    x.grad!.dispose();
    x.grad = null;
    expect(deep).toBeLessThanOrEqual(shallow);
    expect(deep).toBeLessThan(6 * 4 * n);
    // The gradient is still right: 8 forks of y + 0.5y, so d/dx = 1.5^8.
    E.scope(() => {
      let y = x;
      for (let i = 0; i < 32; i++) y = i % 4 === 3 ? E.add(y, E.mulScalar(y, 0.5)) : E.mulScalar(y, 1);
      E.sum(y).backward();
    });
    const g = await x.grad!.data();
    expect(g[0]).toBeCloseTo(1.5 ** 8, 3);
    expect(g[n - 1]).toBeCloseTo(1.5 ** 8, 3);
    x.grad!.dispose();
    x.dispose();
  });

  test("an op's backward may release its incoming gradient early: freed at once unless it is the caller's", async () => {
    const seen: boolean[] = [];
    const twice = E.defineOp<null>({
      name: 'test:releaseEarly',
      forward: ([x]) => E.mulScalar(x, 2),
      backward: (_ctx, g, release) => {
        release();
        let alive = true;
        try {
          g.assertAlive('test');
        } catch {
          alive = false;
        }
        seen.push(alive);
        return [E.full(g.shape, 2)];
      },
    });
    const x = E.keep(E.tensor([1, 2, 3]));
    x.requiresGrad = true;
    E.scope(() => E.sum(twice([E.addScalar(x, 1)], null)).backward()); // g is backward()'s own: freed
    const mine = E.keep(E.ones([3]));
    E.scope(() => twice([x], null).backward(mine)); // the caller's gradient: kept
    expect(seen).toEqual([false, true]);
    expect(Array.from(await mine.data())).toEqual([1, 1, 1]);
    expect(Array.from(await x.grad!.data())).toEqual([4, 4, 4]);
    for (const t of [x, mine]) t.dispose();
  });

  test('every defined op is in the registry with a backward rule where it is differentiable', () => {
    for (const name of ['add', 'sub', 'mul', 'div', 'relu', 'exp', 'log', 'sum', 'mean', 'matmul', 'reshape', 'permute', 'slice', 'cat', 'expand']) {
      expect(E.registry.get(name)?.backward, name).toBeTypeOf('function');
    }
  });
});
