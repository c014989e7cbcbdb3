import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { gradCheck, expectClose, randND, toND, toTensor, useEngine } from './helpers.js';
import * as R from './reference/ndarray.js';

useEngine();

describe('views share storage and read correctly', () => {
  test('reshape, permute, transpose and slice are views; data() reads them', async () => {
    const a = randND([3, 7, 5], 1);
    const t = toTensor(a);
    const before = E.memory().liveBytes;
    const p = E.permute(t, [2, 0, 1]);
    const s = E.slice(p, 1, 1, 3);
    const r = E.reshape(t, [21, 5]);
    expect(E.memory().liveBytes).toBe(before); // no new buffers
    expect(p.storage).toBe(t.storage);
    expectClose(await toND(p), R.transpose(a, [2, 0, 1]));
    expectClose(await toND(s), R.slice(R.transpose(a, [2, 0, 1]), 1, 1, 3));
    expectClose(await toND(r), { shape: [21, 5], data: a.data });
  });

  test('reshape of a non-contiguous view copies; -1 is inferred', async () => {
    const a = randND([4, 6], 2);
    const t = E.transpose(toTensor(a));
    const r = E.reshape(t, [-1]);
    expect(r.shape).toEqual([24]);
    expectClose(await toND(r), { shape: [24], data: R.transpose(a, [1, 0]).data });
  });

  test('cat along each axis, with awkward sizes', async () => {
    const xs = [randND([3, 1, 5], 3), randND([3, 7, 5], 4), randND([3, 33, 5], 5)];
    expectClose(await toND(E.cat(xs.map((x) => toTensor(x)), 1)), R.cat(xs, 1));
    const ys = [randND([2, 3], 6), randND([5, 3], 7)];
    expectClose(await toND(E.cat(ys.map((x) => toTensor(x)), 0)), R.cat(ys, 0));
  });

  test('expand broadcasts without copying', async () => {
    const a = randND([3, 1], 8);
    const e = E.expandTo(toTensor(a), [2, 3, 4]);
    expect(e.strides).toEqual([0, 1, 0]);
    const want = R.zip(a, R.nd([2, 3, 4]), (x) => x);
    expectClose(await toND(e), want);
  });
});

describe('view gradients against finite differences', () => {
  test('permute, slice, reshape, cat, expand, flatten', async () => {
    const a = randND([3, 4, 5], 9);
    const b = randND([3, 2, 5], 10);
    await gradCheck({ inputs: [a], gpu: ([x]) => E.permute(x, [1, 2, 0]), ref: ([x]) => R.transpose(x, [1, 2, 0]) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.slice(x, 1, 1, 3), ref: ([x]) => R.slice(x, 1, 1, 3) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.reshape(E.transpose(x, 0, 2), [20, 3]), ref: ([x]) => ({ shape: [20, 3], data: R.transpose(x, [2, 1, 0]).data }) });
    await gradCheck({ inputs: [a, b], gpu: ([x, y]) => E.cat([x, y], 1), ref: ([x, y]) => R.cat([x, y], 1) });
    await gradCheck({ inputs: [randND([4, 1], 11)], gpu: ([x]) => E.expandTo(x, [3, 4, 6]), ref: ([x]) => R.zip(x, R.nd([3, 4, 6]), (p) => p) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.flatten(x, 1), ref: ([x]) => ({ shape: [3, 20], data: x.data }) });
  });
});
