import { afterEach, describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { gradCheck, expectClose, randND, toND, toTensor, useEngine } from './helpers.js';
import * as R from './reference/ndarray.js';

useEngine();
afterEach(() => E.forceMatmulKernel(null));

// Every variant in the table; the ones this adapter cannot run are reported as skipped.
await E.init();
const supported = E.supportedVariants('matmul');

describe.each(E.allVariants('matmul'))('matmul, %s kernel', (kernel) => {
  const run = test.runIf(supported.includes(kernel));
  run.each([
    [1, 1, 1],
    [3, 7, 33],
    [33, 257, 7],
    [257, 3, 33],
    [64, 64, 64],
    [65, 17, 129],
    [33, 20, 7], // K a multiple of 4 (vec4 staging of A only)
    [5, 9, 36], // N a multiple of 4 (vec4 staging of B only)
    [70, 12, 68], // both, not tile multiples
  ])('[%i x %i] x [%i x ...] against the reference', async (m, k, n) => {
    E.forceMatmulKernel(kernel);
    const a = randND([m, k], m + k);
    const b = randND([k, n], k + n);
    expectClose(await toND(E.matmul(toTensor(a), toTensor(b))), R.matmul(a, b), { rtol: 1e-4, atol: 1e-5 });
  });

  run('batched with broadcast batch dims, transposed and offset views', async () => {
    E.forceMatmulKernel(kernel);
    const a = randND([2, 3, 5, 7], 1);
    const b = randND([3, 7, 9], 2);
    expectClose(await toND(E.matmul(toTensor(a), toTensor(b))), R.matmul(a, b));
    const a4 = randND([2, 3, 9, 12], 11); // aligned rows and batch strides (the vec4 staging paths)
    const b4 = randND([3, 12, 16], 12);
    expectClose(await toND(E.matmul(toTensor(a4), toTensor(b4))), R.matmul(a4, b4));
    const bt = randND([9, 7], 3);
    const got = E.matmul(toTensor(a), E.transpose(toTensor(bt)));
    expectClose(await toND(got), R.matmul(a, R.transpose(bt, [1, 0])));
    const big = randND([10, 33], 4);
    const view = E.slice(E.slice(toTensor(big), 0, 3, 8), 1, 1, 8); // [5, 7] at an offset
    expectClose(await toND(E.matmul(view, toTensor(b))), R.matmul(R.slice(R.slice(big, 0, 3, 8), 1, 1, 8), b));
  });
});
describe('matmul semantics and gradients', () => {
  test('1-D operands as in torch.matmul', async () => {
    const v = randND([7], 5);
    const m = randND([7, 3], 6);
    const out = E.matmul(toTensor(v), toTensor(m));
    expect(out.shape).toEqual([3]);
    expectClose(await toND(out), { shape: [3], data: R.matmul({ shape: [1, 7], data: v.data }, m).data });
  });

  test('gradients against finite differences (broadcast batch)', async () => {
    const a = randND([2, 5, 7], 7);
    const b = randND([7, 3], 8);
    await gradCheck({ inputs: [a, b], gpu: ([x, y]) => E.matmul(x, y), ref: ([x, y]) => R.matmul(x, y) });
  });

  test('a 512x512x512 product', async () => {
    const a = randND([512, 512], 9);
    const b = randND([512, 512], 10);
    const want = R.matmul(a, b);
    expectClose(await toND(E.matmul(toTensor(a), toTensor(b))), want, { rtol: 1e-4, atol: 1e-4 });
  });

  test('forcing a variant the adapter cannot run names the variant and what it needs', () => {
    const noSubgroups = { features: { subgroups: false, subgroupMinSize: 0, subgroupMaxSize: 0, timestampQuery: false, shaderF16: false } };
    expect(() => E.checkRunnable('matmul', 'sg8', noSubgroups)).toThrow(
      "matmul kernel variant 'sg8' cannot run on this adapter: it needs subgroups of exactly 8 lanes (this adapter: no subgroups feature)",
    );
    expect(() => E.checkRunnable('matmul', 'wg64x64', { ...noSubgroups, limits: { maxComputeInvocationsPerWorkgroup: 128 } })).toThrow(
      /'wg64x64' cannot run on this adapter: it needs 256 invocations per workgroup \(this adapter: 128\)/,
    );
    expect(() => E.checkRunnable('conv', 'quad', { features: { ...noSubgroups.features, subgroups: true, subgroupMinSize: 2, subgroupMaxSize: 2 } })).toThrow(
      /conv kernel variant 'quad' cannot run on this adapter: it needs subgroups of a multiple of 4 lanes \(this adapter: subgroups of 2 lanes\)/,
    );
    // On this adapter: forcing goes through the same check.
    const missing = E.allVariants('matmul').find((v) => !E.supportedVariants('matmul').includes(v));
    if (missing) expect(() => E.forceMatmulKernel(missing)).toThrow(new RegExp(`matmul kernel variant '${missing}' cannot run on this adapter: it needs`));
    expect(() => E.forceVariant('matmul', 'nope' as never)).toThrow(/unknown kernel variant 'nope'/);
  });

  test('the kernel choice is a pure function of the adapter features', () => {
    const f = { subgroups: true, subgroupMinSize: 8, subgroupMaxSize: 8, timestampQuery: false, shaderF16: false };
    expect(E.chooseMatmulKernel(f)).toBe('sg8');
    expect(E.chooseMatmulKernel({ ...f, subgroupMinSize: 4, subgroupMaxSize: 4 })).toBe('quad');
    expect(E.chooseMatmulKernel({ ...f, subgroupMinSize: 32, subgroupMaxSize: 32 })).toBe('quad');
    expect(E.chooseMatmulKernel({ ...f, subgroups: false })).toBe('tiled');
    expect(E.heuristicVariant('matmul', { features: { ...f, subgroups: false }, isFallbackAdapter: false })).toBe('wg64x64');
    expect(E.supportedVariants('matmul', { features: f, limits: { maxComputeInvocationsPerWorkgroup: 128 } })).not.toContain('wg64x64');
  });
});
