import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { gradCheck, expectClose, randND, toND, toTensor, useEngine } from './helpers.js';
import * as R from './reference/ndarray.js';

useEngine();

const SIZES = [1, 3, 7, 33, 257];

describe('binary ops against the reference', () => {
  const ops = [
    ['add', E.add, (a: number, b: number) => a + b],
    ['sub', E.sub, (a: number, b: number) => a - b],
    ['mul', E.mul, (a: number, b: number) => a * b],
    ['div', E.div, (a: number, b: number) => a / b],
  ] as const;
  for (const [name, op, f] of ops) {
    test.each(SIZES)(`${name} on [%i] and [5, %i] broadcast`, async (n) => {
      const a = randND([5, n], 1);
      const b = randND([n], 2, 0.5, 2);
      expectClose(await toND(op(toTensor(a), toTensor(b))), R.zip(a, b, f), { what: name });
      // and the other way round, with a size-1 axis in the middle
      const c = randND([3, 1, n], 3, 0.5, 2);
      expectClose(await toND(op(toTensor(a), toTensor(c))), R.zip(a, c, f), { what: `${name} [5,n]x[3,1,n]` });
    });
  }

  test('strided and offset views as inputs', async () => {
    const a = randND([7, 33], 4);
    const b = randND([33, 7], 5);
    const at = toTensor(a);
    const bt = E.transpose(toTensor(b)); // [7, 33] with strides [1, 7]
    const got = await toND(E.add(E.slice(at, 1, 2, 30), E.slice(bt, 1, 2, 30)));
    const want = R.zip(R.slice(a, 1, 2, 30), R.slice(R.transpose(b, [1, 0]), 1, 2, 30), (x, y) => x + y);
    expectClose(got, want);
  });

  test('scalar operands', async () => {
    const a = randND([257], 6);
    expectClose(await toND(E.add(toTensor(a), 2.5)), R.map(a, (x) => x + 2.5));
    expectClose(await toND(E.sub(toTensor(a), 2.5)), R.map(a, (x) => x - 2.5));
    expectClose(await toND(E.mul(toTensor(a), -3)), R.map(a, (x) => x * -3));
    expectClose(await toND(E.div(toTensor(a), 4)), R.map(a, (x) => x / 4));
  });
});

describe('unary ops against the reference', () => {
  test.each(SIZES)('relu, neg, exp, log, sqrt, square on [%i]', async (n) => {
    const a = randND([n], 7, -3, 3);
    const p = randND([n], 8, 0.1, 5);
    expectClose(await toND(E.relu(toTensor(a))), R.map(a, (x) => Math.max(x, 0)));
    expectClose(await toND(E.neg(toTensor(a))), R.map(a, (x) => -x));
    expectClose(await toND(E.exp(toTensor(a))), R.map(a, Math.exp));
    expectClose(await toND(E.log(toTensor(p))), R.map(p, Math.log));
    expectClose(await toND(E.sqrt(toTensor(p))), R.map(p, Math.sqrt));
    expectClose(await toND(E.square(toTensor(a))), R.map(a, (x) => x * x));
  });

  test('edge values: relu at 0 and its gradient 0 there, exp overflow, log of 0', async () => {
    const x = E.tensor([-1, 0, 1, -0]);
    x.requiresGrad = true;
    const y = E.relu(x);
    expect(Array.from(await y.data())).toEqual([0, 0, 1, 0]);
    E.sum(y).backward();
    expect(Array.from(await x.grad!.data())).toEqual([0, 0, 1, 0]);
    expect(Array.from(await E.exp(E.tensor([100, -100])).data())).toEqual([Infinity, 0]);
    expect(Array.from(await E.log(E.tensor([0, 1])).data())).toEqual([-Infinity, 0]);
  });

  test('NaN propagates as in PyTorch: relu(NaN) is NaN, its gradient there 0', async () => {
    const x = E.tensor([NaN, -Infinity, Infinity, -2, 3]);
    x.requiresGrad = true;
    const y = E.relu(x);
    expect(Array.from(await y.data())).toEqual([NaN, 0, Infinity, 0, 3]);
    E.sum(y).backward();
    expect(Array.from(await x.grad!.data())).toEqual([0, 0, 1, 0, 1]);
  });
});

describe('the elementwise table', () => {
  test('every exported row is a function of its arity, and the engine exports it', () => {
    const rows = [...Object.entries(E.UNARY), ...Object.entries(E.BINARY)].filter(([, r]) => !('internal' in r));
    expect(E.elementwiseFunctions.map((f) => f.name).sort()).toEqual(rows.map(([n]) => n).sort());
    for (const f of E.elementwiseFunctions) {
      expect((E as Record<string, unknown>)[f.name]).toBe(f.fn);
      const row = (E.UNARY as Record<string, { scalar?: string }>)[f.name];
      expect(f.arity).toBe(row && !row.scalar ? 1 : 2);
    }
  });
});

describe('gradients against finite differences', () => {
  test('add, sub, mul, div with broadcasting', async () => {
    const a = randND([3, 7], 10, 0.5, 2);
    const b = randND([7], 11, 0.5, 2);
    await gradCheck({ inputs: [a, b], gpu: ([x, y]) => E.add(x, y), ref: ([x, y]) => R.zip(x, y, (p, q) => p + q) });
    await gradCheck({ inputs: [a, b], gpu: ([x, y]) => E.sub(x, y), ref: ([x, y]) => R.zip(x, y, (p, q) => p - q) });
    await gradCheck({ inputs: [a, b], gpu: ([x, y]) => E.mul(x, y), ref: ([x, y]) => R.zip(x, y, (p, q) => p * q) });
    await gradCheck({ inputs: [a, b], gpu: ([x, y]) => E.div(x, y), ref: ([x, y]) => R.zip(x, y, (p, q) => p / q) });
  });

  test('unary and scalar ops', async () => {
    const a = randND([33], 12, 0.2, 2);
    const s = randND([33], 13, -2, 2);
    await gradCheck({ inputs: [a], gpu: ([x]) => E.exp(x), ref: ([x]) => R.map(x, Math.exp) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.log(x), ref: ([x]) => R.map(x, Math.log) });
    await gradCheck({ inputs: [a], gpu: ([x]) => E.sqrt(x), ref: ([x]) => R.map(x, Math.sqrt) });
    await gradCheck({ inputs: [s], gpu: ([x]) => E.square(x), ref: ([x]) => R.map(x, (v) => v * v) });
    await gradCheck({ inputs: [s], gpu: ([x]) => E.neg(x), ref: ([x]) => R.map(x, (v) => -v) });
    // relu away from its kink
    const r = R.map(s, (v) => (Math.abs(v) < 0.05 ? 0.5 : v));
    await gradCheck({ inputs: [r], gpu: ([x]) => E.relu(x), ref: ([x]) => R.map(x, (v) => Math.max(v, 0)) });
    await gradCheck({ inputs: [s], gpu: ([x]) => E.mulScalar(E.addScalar(x, 1.5), -2), ref: ([x]) => R.map(x, (v) => (v + 1.5) * -2) });
    await gradCheck({ inputs: [s], gpu: ([x]) => E.divScalar(x, 3), ref: ([x]) => R.map(x, (v) => v / 3) });
  });
});
