import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { useEngine } from './helpers.js';

useEngine();

describe('bad input gets a clear error', () => {
  test('shape mismatches name the op and both shapes', () => {
    expect(() => E.add(E.zeros([2, 3]), E.zeros([4]))).toThrow(/add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
    expect(() => E.matmul(E.zeros([2, 3]), E.zeros([4, 5]))).toThrow(/matmul: inner dimensions differ: \[2, 3\] x \[4, 5\]/);
    expect(() => E.reshape(E.zeros([2, 3]), [4])).toThrow(/reshape: cannot reshape \[2, 3\]/);
    expect(() => E.cat([E.zeros([2, 3]), E.zeros([3, 3])], 1)).toThrow(/cat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/);
  });

  test('out-of-range axes', () => {
    expect(() => E.sum(E.zeros([2, 3]), 2)).toThrow(/sum: axis 2 is out of range for a tensor of shape \[2, 3\]/);
    expect(() => E.slice(E.zeros([2, 3]), 1, 2, 5)).toThrow(/slice: range \[2, 5\) is not within \[0, 3\]/);
    expect(() => E.permute(E.zeros([2, 3]), [0, 0])).toThrow(/not a permutation/);
  });

  test('wrong dtypes and non-finite scalars', () => {
    expect(() => E.tensor(new BigInt64Array(2) as unknown as number[])).toThrow(/float32/);
    expect(() => E.tensor(['a'] as unknown as number[])).toThrow(/expected a number/);
    expect(() => E.add(E.zeros([2]), NaN)).toThrow(/addScalar: expected a finite number/);
    expect(() => E.mul(E.zeros([2]), Infinity)).toThrow(/mulScalar: expected a finite number/);
    expect(() => E.add(E.zeros([2]), 'x' as unknown as number)).toThrow(/add: the second operand must be a Tensor/);
    expect(() => E.tensor([1, 2, 3], [2, 2])).toThrow(/do not fill shape \[2, 2\]/);
  });

  test('an error leaves the engine usable', async () => {
    expect(() => E.add(E.zeros([2]), E.zeros([3]))).toThrow();
    expect(Array.from(await E.add(E.ones([2]), 1).data())).toEqual([2, 2]);
  });
});
