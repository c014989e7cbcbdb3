// Test helpers: one engine per test file, random reference arrays, closeness checks, and the gradient
// check (the GPU's autograd gradient against central finite differences of the float64 reference).

import { beforeAll, expect } from 'vitest';
import * as E from '../engine/index.js';
import { Generator } from '../engine/random.js';
import { nd, type ND } from './reference/ndarray.js';

export function useEngine(): void {
  beforeAll(async () => {
    await E.init();
  });
}

/** Uniform random values in [low, high), reproducible from the seed. */
export function randND(shape: number[], seed = 1, low = -1, high = 1): ND {
  const g = new Generator(seed);
  const a = nd(shape);
  for (let i = 0; i < a.data.length; i++) a.data[i] = low + (high - low) * g.uniform();
  return a;
}

export function toTensor(a: ND, requiresGrad = false): E.Tensor {
  const t = E.tensor(Float32Array.from(a.data), a.shape);
  t.requiresGrad = requiresGrad;
  return t;
}

export async function toND(t: E.Tensor): Promise<ND> {
  return nd([...t.shape], await t.data());
}

/** Checks |actual - expected| <= atol + rtol * |expected| everywhere, and the shapes. */
export function expectClose(actual: ND | Float32Array, expected: ND, { rtol = 1e-4, atol = 1e-5, what = 'value' } = {}): void {
  const data = actual instanceof Float32Array ? actual : actual.data;
  if (!(actual instanceof Float32Array)) expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
  expect(data.length, `${what}: element count`).toBe(expected.data.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < data.length; i++) {
    const e = expected.data[i];
    const err = Math.abs(data[i] - e);
    const excess = err - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: element ${worst} is ${data[worst]}, expected ${expected.data[worst]} (rtol ${rtol}, atol ${atol}, shape [${expected.shape}])`);
  }
}

export interface GradCheck {
  /** Inputs as reference arrays; each becomes a GPU tensor with requiresGrad. */
  inputs: ND[];
  /** Which inputs to differentiate (default: all). */
  wrt?: number[];
  gpu: (xs: E.Tensor[]) => E.Tensor;
  ref: (xs: ND[]) => ND;
  rtol?: number;
  atol?: number;
  /** At most this many elements per input are perturbed (chosen at random). */
  samples?: number;
}

/**
 * Forward against the reference, then the gradient of L = sum(out * R) (R random) from the GPU's
 * backward against central differences of the same L computed by the float64 reference.
 */
export async function gradCheck(c: GradCheck): Promise<void> {
  const { rtol = 1e-3, atol = 1e-4, samples = 40 } = c;
  const wrt = c.wrt ?? c.inputs.map((_, i) => i);
  const ts = c.inputs.map((x, i) => toTensor(x, wrt.includes(i)));
  const out = c.gpu(ts);
  const expected = c.ref(c.inputs);
  expectClose(await toND(out), expected, { rtol: 1e-4, atol: 1e-5, what: 'forward' });
  const R = randND(expected.shape, 99);
  const rt = toTensor(R);
  const loss = E.sum(E.mul(out, rt));
  loss.backward();
  const L = (xs: ND[]): number => {
    const y = c.ref(xs);
    let s = 0;
    for (let i = 0; i < y.data.length; i++) s += y.data[i] * R.data[i];
    return s;
  };
  const g = new Generator(7);
  for (const i of wrt) {
    const grad = ts[i].grad;
    expect(grad, `input ${i} has a gradient`).not.toBeNull();
    const got = await grad!.data();
    const x = c.inputs[i];
    const n = x.data.length;
    const picks = n <= samples ? [...Array(n).keys()] : Array.from({ length: samples }, () => g.nextU32() % n);
    for (const j of picks) {
      const h = 1e-4 * Math.max(1, Math.abs(x.data[j]));
      const xs = c.inputs.map((a) => ({ shape: a.shape, data: Float64Array.from(a.data) }));
      xs[i].data[j] = x.data[j] + h;
      const lp = L(xs);
      xs[i].data[j] = x.data[j] - h;
      const lm = L(xs);
      const fd = (lp - lm) / (2 * h);
      const err = Math.abs(got[j] - fd);
      if (err > atol + rtol * Math.abs(fd)) {
        expect.fail(`gradient of input ${i} at element ${j}: backward gave ${got[j]}, finite differences ${fd}`);
      }
    }
  }
  for (const t of [...ts, out, rt, loss]) t.dispose();
}
