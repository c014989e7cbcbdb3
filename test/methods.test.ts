// Tensor methods generated from engine/methods.ts's table: each is its function with the tensor first.

import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { useEngine } from './helpers.js';

useEngine();

describe('tensor methods', () => {
  test('every entry of the table is a method that calls its function', async () => {
    for (const name of Object.keys(E.tensorMethods)) expect(typeof (E.Tensor.prototype as unknown as Record<string, unknown>)[name], name).toBe('function');
    const x = E.tensor([[1, -2, 3], [4, 5, -6]]);
    const y = E.tensor([[0.5, 1, 2]]);
    const same = async (a: E.Tensor, b: E.Tensor) => expect(await a.toArray()).toEqual(await b.toArray());
    await same(x.add(y), E.add(x, y));
    await same(x.mul(2), E.mul(x, 2));
    await same(x.relu().sum(1), E.sum(E.relu(x), 1));
    await same(x.mean(), E.mean(x));
    await same(x.reshape([3, 2]), E.reshape(x, [3, 2]));
    await same(x.matmul(x.transpose()), E.matmul(x, E.transpose(x)));
    await same(x.softmax(), E.softmax(x));
    await same(x.argmax(1), E.argmax(x, 1));
    expect(await x.topk(2).indices.toArray()).toEqual([[2, 0], [1, 0]]);
    expect(x.expand([4, 2, 3]).shape).toEqual([4, 2, 3]);
  });

  test('every elementwise op of the table is a method calling its function, typed by its arity', async () => {
    const names = E.elementwiseFunctions.map((f) => f.name);
    expect(names.length).toBeGreaterThan(10);
    const x = E.tensor([[0.5, 2, 3], [4, 5, 1.5]]);
    const y = E.tensor([[2, 4, 0.5]]);
    const methods = E.Tensor.prototype as unknown as Record<string, (...a: unknown[]) => E.Tensor>;
    for (const f of E.elementwiseFunctions) {
      expect(E.tensorMethods, f.name).toHaveProperty(f.name, f.fn);
      const args = f.arity === 1 ? [] : [3]; // every two-argument op takes a number second
      const viaMethod = methods[f.name].call(x, ...args);
      const viaFunction = (f.fn as (...a: unknown[]) => E.Tensor)(x, ...args);
      expect(await viaMethod.toArray(), f.name).toEqual(await viaFunction.toArray());
    }
    // The types follow the rows: a unary method takes nothing, a scalar one a number, a binary one a tensor or number.
    const typed: E.Tensor[] = [x.exp(), x.neg(), x.mulScalar(2), x.divScalar(2), x.sub(y), x.div(2)];
    expect(typed.map((t) => t.shape)).toEqual(typed.map(() => [2, 3]));
  });

  test('methods record gradients like the functions', async () => {
    const w = E.tensor([1, 2, 3]);
    w.requiresGrad = true;
    w.mul(w).sum().backward();
    expect(await w.grad!.toArray()).toEqual([2, 4, 6]);
  });
});
