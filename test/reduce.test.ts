import { describe, test } from 'vitest';
import * as E from '../engine/index.js';
import { gradCheck, expectClose, randND, toND, toTensor, useEngine } from './helpers.js';
import * as R from './reference/ndarray.js';

useEngine();

describe('sum and mean against the reference', () => {
  test.each([1, 3, 7, 33, 257])('over each axis and all axes of [%i, 5, 3]', async (n) => {
    const a = randND([n, 5, 3], n);
    for (const axes of [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]]) {
      for (const keep of [false, true]) {
        expectClose(await toND(E.sum(toTensor(a), axes, keep)), R.sum(a, axes, keep), { what: `sum ${axes} keepdims=${keep}` });
      }
      const m = R.sum(a, axes);
      const cnt = axes.reduce((s, i) => s * a.shape[i], 1);
      expectClose(await toND(E.mean(toTensor(a), axes)), R.map(m, (v) => v / cnt), { what: `mean ${axes}` });
    }
  });

  test('a long reduction stays within float32 accuracy (chunked)', async () => {
    const a = randND([1_000_003], 5, 0, 1);
    expectClose(await toND(E.sum(toTensor(a))), R.sum(a, [0]), { rtol: 1e-5 });
    const b = randND([3, 200_001], 6, 0, 1);
    expectClose(await toND(E.mean(toTensor(b), 1)), R.map(R.sum(b, [1]), (v) => v / 200_001), { rtol: 1e-5 });
  });

  test('over a transposed view and negative axes', async () => {
    const a = randND([7, 33], 8);
    const t = E.transpose(toTensor(a));
    expectClose(await toND(E.sum(t, -1)), R.sum(R.transpose(a, [1, 0]), [1]));
  });

  test('max', async () => {
    const a = randND([5, 33], 9);
    expectClose(await toND(E.max(toTensor(a), 1)), R.reduce(a, [1], false, -Infinity, Math.max));
  });
});

describe('reduction gradients', () => {
  test('sum and mean against finite differences', async () => {
    const a = randND([3, 7, 5], 10);
    await gradCheck({ inputs: [a], gpu: ([x]) => E.sum(x, [0, 2]), ref: ([x]) => R.sum(x, [0, 2]) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.mean(x, 1, true), ref: ([x]) => R.map(R.sum(x, [1], true), (v) => v / 7) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.mean(x), ref: ([x]) => R.map(R.sum(x, [0, 1, 2]), (v) => v / 105) });
  });
});
