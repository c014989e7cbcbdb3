// softmax, logSoftmax, topk, argmax, dropout and label smoothing against the CPU reference, with
// gradients by finite differences, awkward sizes and NaN.

import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { DenseNetBC } from '../models/index.js';
import { nd } from './reference/ndarray.js';
import * as R from './reference/ops.js';
import { expectClose, gradCheck, randND, toND, toTensor, useEngine } from './helpers.js';

useEngine();

describe('softmax and logSoftmax', () => {
  const cases: Array<[number[], number]> = [[[7, 10], -1], [[3, 5, 13], 1], [[2, 3, 4], 0], [[1, 1], -1], [[300, 3], 1]];
  for (const [shape, axis] of cases) {
    for (const log of [false, true]) {
      test(`${log ? 'logSoftmax' : 'softmax'} ${JSON.stringify(shape)} axis ${axis}`, () =>
        gradCheck({
          inputs: [randND(shape, 11, -4, 4)],
          gpu: ([x]) => (log ? E.logSoftmax(x, axis) : E.softmax(x, axis)),
          ref: ([x]) => R.softmax(x, axis < 0 ? axis + shape.length : axis, log),
        }));
    }
  }

  test('stable for large logits; a NaN row is NaN and leaves other rows alone; -Infinity gets 0', async () => {
    const x = E.tensor([[1000, 1001, 999], [NaN, 0, 1], [-Infinity, 0, 0]]);
    const s = await E.softmax(x).data();
    const ref = R.softmax(nd([3, 3], [1000, 1001, 999, NaN, 0, 1, -Infinity, 0, 0]), 1);
    expectClose(s.subarray(0, 3), nd([3], ref.data.subarray(0, 3)));
    expect(Array.from(s.subarray(3, 6)).every(Number.isNaN)).toBe(true);
    expect(Array.from(s.subarray(6))).toEqual([0, 0.5, 0.5]);
    const l = await E.logSoftmax(E.tensor([[1000, 0]])).data();
    expect(l[0]).toBeCloseTo(0, 6);
    expect(l[1]).toBeCloseTo(-1000, 3);
  });

  test('bad input is named', () => {
    expect(() => E.softmax(E.zeros([2, 3]), 2)).toThrow(/softmax: axis 2 is out of range/);
    expect(() => E.logSoftmax(E.tensor(1))).toThrow(/logSoftmax: expected a tensor with at least one dimension/);
  });
});

describe('topk and argmax', () => {
  for (const [shape, k, axis] of [[[6, 11], 3, -1], [[4, 5, 3], 5, 1], [[9], 1, 0], [[2, 7, 2], 2, 0]] as Array<[number[], number, number]>) {
    test(`topk ${JSON.stringify(shape)} k ${k} axis ${axis}: values, indices, gradient of the values`, async () => {
      const a = axis < 0 ? axis + shape.length : axis;
      const x = randND(shape, 5);
      const want = R.topk(x, k, a);
      const { values, indices } = E.topk(toTensor(x), k, axis);
      expectClose(await toND(indices), want.indices, { rtol: 0, atol: 0, what: 'indices' });
      await gradCheck({ inputs: [x], gpu: ([t]) => E.topk(t, k, axis).values, ref: ([t]) => R.topk(t, k, a).values });
    });
  }

  test('topk of a tensor that requires grad, outside a scope, leaks nothing once its results are disposed', async () => {
    const x = E.tensor([[1, 3, 3, 2], [0, 7, 5, 5], [-1, -1, -1, -1]]);
    x.requiresGrad = true;
    const once = () => {
      const { values, indices } = E.topk(x, 2);
      values.dispose();
      indices.dispose();
    };
    once();
    E.flush();
    const after1 = E.memory().liveBytes;
    for (let i = 0; i < 4; i++) once();
    E.flush();
    expect(E.memory().liveBytes).toBe(after1);
    // The gradient still flows after the caller disposed the indices.
    const { values, indices } = E.topk(x, 2);
    indices.dispose();
    E.sum(values).backward();
    expect(await x.grad!.toArray()).toEqual([[0, 1, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0]]);
    x.dispose();
  });

  test('an axis longer than 2^24 is refused (float32 indices would be wrong), by topk and by argmax', () => {
    const one = E.zeros([1, 1]);
    const long = E.expandTo(one, [2, 2 ** 24 + 1]); // a view: nothing that size is allocated
    expect(() => E.topk(long, 1)).toThrow(/topk: axis 1 of shape \[2, 16777217\] has 16777217 elements; the indices are float32, exact only up to 2\^24 = 16777216/);
    expect(() => E.argmax(long, 1)).toThrow(/argmax: axis 1 of shape \[2, 16777217\] has 16777217 elements; .*2\^24/);
    const square = E.expandTo(one, [4097, 4097]);
    expect(() => E.argmax(square)).toThrow(/argmax: the flattened tensor of shape \[4097, 4097\] has 16785409 elements; .*2\^24/);
    [long, square, one].forEach((t) => t.dispose());
  });

  test('ties keep the lower index first; NaN counts as the largest; argmax with and without an axis', async () => {
    const x = E.tensor([[1, 3, 3, 2], [0, NaN, 5, 5], [-1, -1, -1, -1]]);
    const { values, indices } = E.topk(x, 2);
    expect(await indices.toArray()).toEqual([[1, 2], [1, 2], [0, 1]]);
    const v = await values.data();
    expect(Number.isNaN(v[2])).toBe(true);
    expect(await E.argmax(x, 1).toArray()).toEqual([1, 1, 0]);
    expect(await E.argmax(x, 0, true).toArray()).toEqual([[0, 1, 1, 1]]);
    expect(E.argmax(x).shape).toEqual([]);
    expect(await E.argmax(x).item()).toBe(5);
    const ref = R.topk(randND([3, 4], 3), 1, 1).indices;
    expect(Array.from(await E.argmax(toTensor(randND([3, 4], 3)), -1).data())).toEqual(Array.from(ref.data));
  });

  test('bad k and empty input are named', () => {
    expect(() => E.topk(E.zeros([2, 3]), 4)).toThrow(/topk: k must be an integer in \[1, 3\] for axis 1 of shape \[2, 3\].*got 4/);
    expect(() => E.topk(E.zeros([2, 30]), 6)).toThrow(/k <= 5 is supported\), got 6/);
    expect(() => E.argmax(E.zeros([0]))).toThrow(/argmax: the tensor of shape \[0\] is empty/);
  });
});

describe('dropout', () => {
  test('the mask of the seed, scaling by 1 / (1 - p), and the gradient through the same mask', async () => {
    const x = randND([5, 37], 9);
    for (const p of [0.1, 0.5, 0.9]) {
      await gradCheck({ inputs: [x], gpu: ([t]) => E.dropout(t, p, { seed: 1234 }), ref: ([t]) => R.dropout(t, p, 1234) });
    }
    let kept = 0;
    for (let i = 0; i < 10000; i++) kept += R.dropoutKeeps(77, i, 0.3) ? 1 : 0;
    expect(Math.abs(kept / 10000 - 0.7)).toBeLessThan(0.02);
  });

  test('seeded by a Generator: same seed, same mask; another seed, another mask; eval and p = 0 return x', async () => {
    const x = E.ones([64]);
    const run = async (seed: number) => Array.from(await E.dropout(x, 0.5, { generator: new E.Generator(seed) }).data());
    expect(await run(1)).toEqual(await run(1));
    expect(await run(1)).not.toEqual(await run(2));
    expect(E.dropout(x, 0.5, { training: false })).toBe(x);
    expect(E.dropout(x, 0)).toBe(x);
    expect(Array.from(await E.dropout(x, 1).data()).every((v) => v === 0)).toBe(true);
    expect(() => E.dropout(x, 1.5)).toThrow(/dropout: p must be a probability in \[0, 1\], got 1.5/);
  });

  test('nn.Dropout: train drops, eval is the identity; DenseNet-BC accepts dropRate', async () => {
    const d = new nn.Dropout(0.5);
    const x = E.ones([4, 8]);
    const y = await d(x).data();
    expect(Array.from(y).every((v) => v === 0 || v === 2)).toBe(true);
    d.eval();
    expect(d(x)).toBe(x);
    expect(d.describe()).toBe('Dropout(p=0.5)');
    expect(() => new nn.Dropout(-0.1)).toThrow(/Dropout: p must be a probability in \[0, 1\], got -0.1/);
    const opts = { growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2, numClasses: 3, inChannels: 1 };
    const plain = new DenseNetBC(opts);
    const dropping = new DenseNetBC({ ...opts, dropRate: 0.5 });
    dropping.loadStateDict(plain.stateDict());
    const img = E.randn([2, 1, 16, 16]);
    plain.eval();
    dropping.eval();
    expectClose(await dropping(img).data(), await toND(plain(img)), { what: 'eval: dropout off' });
    dropping.train();
    E.manualSeed(3);
    const a = await dropping(img).data();
    E.manualSeed(3);
    const loss = E.mean(dropping(img));
    expect(Array.from(await loss.data())[0]).toBeCloseTo(a.reduce((s, v) => s + v, 0) / a.length, 5);
    loss.backward();
    expect(dropping.parameters().every((p) => p.grad !== null)).toBe(true);
    E.manualSeed(4);
    expect(Array.from(await dropping(img).data())).not.toEqual(Array.from(a));
    expect(() => new DenseNetBC({ ...opts, dropRate: 1 })).toThrow(/DenseNetBC: dropRate must be in \[0, 1\), got 1/);
  });
});

describe('memory', () => {
  test('an op run without a graph frees what its forward saved for backward (crossEntropy, max pool, batch norm)', async () => {
    const x = E.randn([2, 3, 4, 4]);
    const w = E.ones([3]);
    const b = E.zeros([3]);
    const rm = E.zeros([3]);
    const rv = E.ones([3]);
    E.relu(x).dispose(); // the first dispatch allocates the shared uniform buffer
    await E.sync();
    const before = E.memory().liveBytes;
    for (let i = 0; i < 3; i++) {
      E.crossEntropy(E.reshape(x, [16, 6]), [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3]).dispose();
      E.maxPool2d(x, { kernel: 2 }).dispose();
      E.batchNorm2d(x, w, b, rm, rv, { training: false }).dispose();
    }
    await E.sync();
    expect(E.memory().liveBytes).toBe(before);
    expect(x.disposed).toBe(false);
  });

  test('without a graph, the ops free their intermediate views and copies (outside any scope)', async () => {
    const x = E.randn([3, 4, 5]);
    E.relu(x).dispose(); // the first dispatch allocates the shared uniform buffer
    await E.sync();
    const before = E.memory().liveBytes;
    const outs = [E.softmax(x, 0), E.logSoftmax(x, 1), E.argmax(x, 0), E.argmax(x), E.dropout(x, 0.5), E.crossEntropy(E.reshape(x, [12, 5]), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1], { labelSmoothing: 0.2 })];
    const { values, indices } = E.topk(x, 2, 1);
    outs.push(values, indices);
    for (const t of outs) t.dispose();
    await E.sync();
    expect(E.memory().liveBytes).toBe(before);
  });
});

describe('crossEntropy with label smoothing', () => {
  for (const e of [0.1, 0.5, 1]) {
    test(`labelSmoothing ${e}: loss and gradient`, () => {
      const labels = [0, 6, 3, 6, 1];
      return gradCheck({
        inputs: [randND([5, 7], 4, -3, 3)],
        gpu: ([x]) => E.crossEntropy(x, labels, { labelSmoothing: e }),
        ref: ([x]) => R.crossEntropySmoothed(x, labels, e),
      });
    });
  }
  test('a NaN logit makes the smoothed loss NaN', async () => {
    expect(Number.isNaN(await E.crossEntropy(E.tensor([[0, NaN, 1], [1, 2, 3]]), [0, 2], { labelSmoothing: 0.1 }).item())).toBe(true);
  });
  test('a bad labelSmoothing is named', () => {
    expect(() => E.crossEntropy(E.zeros([2, 3]), [0, 1], { labelSmoothing: 2 })).toThrow(/crossEntropy: labelSmoothing must be in \[0, 1\], got 2/);
  });
});
