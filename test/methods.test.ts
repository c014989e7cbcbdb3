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

  test('methods record gradients like the functions', async () => {
    const w = E.tensor([1, 2, 3]);
    w.requiresGrad = true;
    w.mul(w).sum().backward();
    expect(await w.grad!.toArray()).toEqual([2, 4, 6]);
  });
});
