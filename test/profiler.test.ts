// The profiler: GPU time per kernel from timestamp queries, a pass per dispatch or (merge) one pass for
// back-to-back dispatches of one kernel.

import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { useEngine } from './helpers.js';

useEngine();
await E.init();

describe.runIf(E.canProfile())('profiler', () => {
  /** Three dependent adds, a sum, two more adds: the adds' kernel runs 3 + 2 times, in two runs. */
  async function profiled(merge: boolean): Promise<{ times: E.KernelTime[]; values: Float32Array; total: number }> {
    const a = E.ones([1000]);
    E.startProfile({ merge });
    let t = a;
    for (let i = 0; i < 3; i++) t = E.add(t, a);
    const s = E.sum(t);
    for (let i = 0; i < 2; i++) t = E.add(t, a);
    const times = await E.stopProfile();
    return { times, values: await t.data(), total: await s.item() };
  }
  const adds = (times: E.KernelTime[]) => times.filter((k) => k.kernel.startsWith('binary'));

  test('without merge, every dispatch is a timed pass of its own', async () => {
    const { times, values, total } = await profiled(false);
    expect(adds(times).map((k) => [k.count, k.passes])).toEqual([[5, 5]]);
    expect(times.every((k) => k.count === k.passes && k.ms >= 0)).toBe(true);
    expect(values.every((v) => v === 6)).toBe(true);
    expect(total).toBe(4000);
  });

  test('with merge, back-to-back dispatches of one kernel share a timed pass, and each still reads the one before', async () => {
    const { times, values, total } = await profiled(true);
    const [add] = adds(times);
    expect([add.count, add.passes]).toEqual([5, 2]);
    expect(Number.isFinite(add.ms) && add.ms >= 0).toBe(true);
    expect(times.filter((k) => !k.kernel.startsWith('binary')).every((k) => k.passes >= 1 && k.passes <= k.count)).toBe(true);
    expect(values.every((v) => v === 6)).toBe(true);
    expect(total).toBe(4000);
  });

  test('a profile after a merged one times each dispatch again', async () => {
    await profiled(true);
    const { times } = await profiled(false);
    expect(adds(times).map((k) => [k.count, k.passes])).toEqual([[5, 5]]);
  });
});
