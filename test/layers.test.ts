// Layer ops (batch norm, pooling, cross-entropy, linear, SGD) against the float64 CPU reference.

import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/index.js';
import { Generator } from '../engine/random.js';
import { batchNorm2d, batchNormBackwardRaw, batchNormRelu2d, batchNormStats, forceBnStatsKernel, type BnStatsKernel } from '../engine/ops/batchnorm.js';
import { adaptiveAvgPool2d, avgPool2d, avgPoolRaw, maxPool2d } from '../engine/ops/pool2d.js';
import { crossEntropy } from '../engine/ops/loss.js';
import { planeImagesPerWorkgroup } from '../engine/variants.js';
import { linear } from '../engine/ops/linear.js';
import { map, nd, slice, type ND } from './reference/ndarray.js';
import * as R from './reference/layers.js';
import { expectClose, gradCheck, randND, toND, toTensor, useEngine } from './helpers.js';

useEngine();

type P2 = [number, number];

/** Distinct values (a shuffled ramp), so max pooling has no near-ties for finite differences. */
function distinctND(shape: number[], seed: number): ND {
  const a = nd(shape);
  const n = a.data.length;
  const g = new Generator(seed);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = g.nextU32() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (let i = 0; i < n; i++) a.data[i] = -1 + (2 * order[i]) / n;
  return a;
}

const ones = (c: number) => nd([c], new Array(c).fill(1));
const zeros = (c: number) => nd([c]);

// Every reduction variant; the ones this adapter cannot run are reported as skipped.
await E.init();
const bnKernels: BnStatsKernel[] = E.allVariants('bnStats');
const bnSupported = E.supportedVariants('bnStats');

describe.each(bnKernels)('batchNorm2d (%s reduction)', (kernel) => {
  const setKernel = () => forceBnStatsKernel(kernel);
  const run = it.runIf(bnSupported.includes(kernel));

  run.each([
    [[5, 3, 7, 9]],
    [[1, 23, 8, 8]],
    [[5, 33, 5, 5]],
    [[2, 3, 1, 1]],
    // groups of 2 images per workgroup on CPU adapters, the last one short (planeImagesPerWorkgroup)
    [[5, 8, 3, 4]],
  ])('training forward matches the reference for %j', async (shape) => {
    setKernel();
    const C = shape[1];
    const x = randND(shape, 3, -2, 3);
    const g = randND([C], 4, 0.5, 1.5);
    const b = randND([C], 5);
    const rm = E.zeros([C]);
    const rv = E.ones([C]);
    const [xt, gt, bt] = [toTensor(x), toTensor(g), toTensor(b)];
    const y = batchNorm2d(xt, gt, bt, rm, rv, { training: true });
    expectClose(await toND(y), R.batchNormTrain(x, g, b), { rtol: 1e-4, atol: 1e-4 });
    const ref = R.runningUpdate(new Array(C).fill(0), new Array(C).fill(1), x);
    expectClose(await rm.data(), nd([C], ref.rm), { what: 'running mean' });
    expectClose(await rv.data(), nd([C], ref.rv), { what: 'running var' });
    for (const t of [rm, rv, xt, gt, bt, y]) t.dispose();
  });

  run('statistics of a large channel with a large mean stay within 1e-5 of float64', async () => {
    setKernel();
    for (const shape of [[4, 3, 101, 99], [2, 2, 96, 96]]) {
      const x = randND(shape, 11, 999, 1001);
      const xt = toTensor(x);
      const stats = await batchNormStats(xt).data();
      const { mean, variance } = R.channelStats(x);
      for (let c = 0; c < shape[1]; c++) {
        expect(Math.abs(stats[c] - mean[c]) / Math.abs(mean[c])).toBeLessThan(1e-6);
        expect(Math.abs(stats[2 * shape[1] + c] - variance[c]) / variance[c]).toBeLessThan(1e-5);
        expect(Math.abs(stats[shape[1] + c] - 1 / Math.sqrt(variance[c] + 1e-5)) * Math.sqrt(variance[c])).toBeLessThan(1e-5);
      }
      xt.dispose();
    }
  });

  run('reads channel views (N and C strides, unaligned offsets) and writes stats at a column', async () => {
    setKernel();
    for (const [shape, c0, c1] of [[[5, 40, 6, 8], 7, 30], [[2, 30, 5, 7], 3, 26]] as const) {
      const big = randND([...shape], 21, -1, 2);
      const xt = toTensor(big);
      const v = E.slice(xt, 1, c0, c1);
      const x = slice(big, 1, c0, c1);
      const C = c1 - c0;
      const g = randND([C], 4, 0.5, 1.5);
      const b = randND([C], 5);
      const [gt, bt] = [toTensor(g), toTensor(b)];
      const y = batchNorm2d(v, gt, bt, null, null, { training: true });
      expectClose(await toND(y), R.batchNormTrain(x, g, b), { rtol: 1e-4, atol: 1e-4 });
      const stats = E.zeros([3, C + 5]);
      batchNormStats(v, 1e-5, { stats, channel: 5 });
      const s = await stats.data();
      const { mean } = R.channelStats(x);
      expectClose(s.slice(5, C + 5), nd([C], mean), { what: 'stats written at column 5' });
      expect(s[0]).toBe(0);
      for (const t of [xt, v, gt, bt, y, stats]) t.dispose();
    }
  });

  run.each([
    [[3, 3, 5, 7]],
    [[2, 4, 4, 4]],
  ])('training backward (x, gamma, beta) matches finite differences for %j', async (shape) => {
    setKernel();
    const C = shape[1];
    await gradCheck({
      inputs: [randND(shape, 31, -1, 2), randND([C], 32, 0.5, 1.5), randND([C], 33)],
      gpu: ([x, g, b]) => batchNorm2d(x, g, b, null, null, { training: true }),
      ref: ([x, g, b]) => R.batchNormTrain(x, g, b),
      rtol: 2e-3,
      atol: 2e-4,
    });
  });

  run('training backward through a channel view', async () => {
    setKernel();
    await gradCheck({
      inputs: [randND([2, 9, 4, 6], 41), randND([5], 42, 0.5, 1.5), randND([5], 43)],
      gpu: ([x, g, b]) => batchNorm2d(E.slice(x, 1, 2, 7), g, b, null, null, { training: true }),
      ref: ([x, g, b]) => R.batchNormTrain(slice(x, 1, 2, 7), g, b),
      rtol: 2e-3,
      atol: 2e-4,
    });
  });

  // The fused BN-ReLU: vec4 and scalar paths (odd planes), a channel view, eval mode.
  const reluRef = (t: ND) => map(t, (v) => Math.max(v, 0));
  run.each([
    [[3, 3, 5, 7]],
    [[2, 4, 4, 4]],
  ])('batchNormRelu2d: training forward and backward match relu(batch norm) for %j', async (shape) => {
    setKernel();
    const C = shape[1];
    await gradCheck({
      inputs: [randND(shape, 34, -1, 2), randND([C], 35, 0.5, 1.5), randND([C], 36)],
      gpu: ([x, g, b]) => batchNormRelu2d(x, g, b, null, null, { training: true }),
      ref: ([x, g, b]) => reluRef(R.batchNormTrain(x, g, b)),
      rtol: 2e-3,
      atol: 2e-4,
    });
  });

  run('batchNormRelu2d through a channel view, and in eval mode', async () => {
    setKernel();
    await gradCheck({
      inputs: [randND([2, 9, 4, 6], 44), randND([5], 45, 0.5, 1.5), randND([5], 46)],
      gpu: ([x, g, b]) => batchNormRelu2d(E.slice(x, 1, 2, 7), g, b, null, null, { training: true }),
      ref: ([x, g, b]) => reluRef(R.batchNormTrain(slice(x, 1, 2, 7), g, b)),
      rtol: 2e-3,
      atol: 2e-4,
    });
    const rmv = [0.3, -0.2, 1.1];
    const rvv = [0.5, 2.0, 0.8];
    const rm = toTensor(nd([3], rmv));
    const rv = toTensor(nd([3], rvv));
    await gradCheck({
      inputs: [randND([3, 3, 5, 3], 54), randND([3], 55, 0.5, 1.5), randND([3], 56)],
      gpu: ([x, g, b]) => batchNormRelu2d(x, g, b, rm, rv, { training: false }),
      ref: ([x, g, b]) => reluRef(R.batchNorm(x, g, b, rmv, rvv)),
    });
    rm.dispose();
    rv.dispose();
  });

  run('batchNormRelu2d equals relu(batchNorm2d) exactly, gradients included', async () => {
    setKernel();
    const shape = [4, 6, 5, 4];
    const run2 = async (fused: boolean) => {
      const [x, g, b] = [toTensor(randND(shape, 61), true), toTensor(randND([6], 62, 0.5, 1.5), true), toTensor(randND([6], 63), true)];
      const y = fused ? batchNormRelu2d(x, g, b, null, null, { training: true }) : E.relu(batchNorm2d(x, g, b, null, null, { training: true }));
      y.backward(toTensor(randND(shape, 64)));
      const out = await Promise.all([y, x.grad!, g.grad!, b.grad!].map((t) => t.data()));
      for (const t of [x, g, b, y]) t.dispose();
      return out;
    };
    const [fused, plain] = [await run2(true), await run2(false)];
    fused.forEach((v, i) => expect(Array.from(v)).toEqual(Array.from(plain[i])));
  });

  run('eval mode uses the running statistics, forward and backward', async () => {
    setKernel();
    const C = 3;
    const rmv = [0.3, -0.2, 1.1];
    const rvv = [0.5, 2.0, 0.8];
    const rm = toTensor(nd([C], rmv));
    const rv = toTensor(nd([C], rvv));
    await gradCheck({
      inputs: [randND([5, C, 7, 9], 51), randND([C], 52, 0.5, 1.5), randND([C], 53)],
      gpu: ([x, g, b]) => batchNorm2d(x, g, b, rm, rv, { training: false }),
      ref: ([x, g, b]) => R.batchNorm(x, g, b, rmv, rvv),
    });
    expectClose(await rm.data(), nd([C], rmv), { what: 'running mean unchanged in eval' });
    rm.dispose();
    rv.dispose();
  });
});

describe.each(E.allVariants('bnBackward'))('batch norm backward (%s)', (variant) => {
  const force = () => E.forceVariant('bnBackward', variant);
  afterEach(() => E.forceVariant('bnBackward', null));

  it.each([
    [[3, 3, 5, 7]],
    // 5 images of 8 channels: dx in groups of 2 images on CPU adapters, the last one short (vec4 and
    // scalar planes)
    [[5, 8, 4, 4]],
    [[5, 8, 3, 3]],
  ])('training backward of batchNorm2d and batchNormRelu2d matches the reference for %j', async (shape) => {
    force();
    const C = shape[1];
    const inputs = () => [randND(shape, 71, -1, 2), randND([C], 72, 0.5, 1.5), randND([C], 73)];
    await gradCheck({ inputs: inputs(), gpu: ([x, g, b]) => batchNorm2d(x, g, b, null, null, { training: true }), ref: ([x, g, b]) => R.batchNormTrain(x, g, b), rtol: 2e-3, atol: 2e-4 });
    await gradCheck({
      inputs: inputs(),
      gpu: ([x, g, b]) => batchNormRelu2d(x, g, b, null, null, { training: true }),
      ref: ([x, g, b]) => map(R.batchNormTrain(x, g, b), (v) => Math.max(v, 0)),
      rtol: 2e-3,
      atol: 2e-4,
    });
  });

  it.runIf(variant === 'split')('adds dx into a channel view of a gradient buffer exactly as the fused variant does', async () => {
    const [N, Cb, C, H, W] = [5, 12, 8, 4, 6];
    const buf = toTensor(randND([N, Cb, H, W], 81));
    const x = E.slice(buf, 1, 2, 2 + C);
    const dy = toTensor(randND([N, C, H, W], 82));
    const gamma = toTensor(randND([C], 83, 0.5, 1.5));
    const stats = batchNormStats(x);
    const results: number[][] = [];
    for (const v of E.allVariants('bnBackward')) {
      E.forceVariant('bnBackward', v);
      const grad = toTensor(randND([N, Cb, H, W], 84));
      const dgamma = E.empty([C]);
      const { sums } = batchNormBackwardRaw(x, dy, stats, gamma, true, { out: E.slice(grad, 1, 3, 3 + C), accumulate: true, dgammaOut: dgamma });
      results.push([...(await grad.data()), ...(await sums.data()), ...(await dgamma.data())]);
      for (const t of [grad, dgamma, sums]) t.dispose();
    }
    expect(results[0]).toEqual(results[1]);
    for (const t of [buf, x, dy, gamma, stats]) t.dispose();
  });
});

describe('batchNorm2d running statistics', () => {
  it('after several training steps, and eval afterwards', async () => {
    forceBnStatsKernel(null);
    const C = 23;
    let rmRef = new Array(C).fill(0);
    let rvRef = new Array(C).fill(1);
    const rm = E.zeros([C]);
    const rv = E.ones([C]);
    const g = randND([C], 61, 0.5, 1.5);
    const b = randND([C], 62);
    const [gt, bt] = [toTensor(g), toTensor(b)];
    for (let step = 0; step < 4; step++) {
      const x = randND([5, C, 3, 5], 70 + step, -1 + step, 2 + 2 * step);
      const xt = toTensor(x);
      E.scope(() => batchNorm2d(xt, gt, bt, rm, rv, { training: true, momentum: 0.3 }));
      ({ rm: rmRef, rv: rvRef } = R.runningUpdate(rmRef, rvRef, x, 0.3));
      xt.dispose();
    }
    expectClose(await rm.data(), nd([C], rmRef), { what: 'running mean after 4 steps' });
    expectClose(await rv.data(), nd([C], rvRef), { what: 'running var after 4 steps' });
    const x = randND([1, C, 3, 3], 80);
    const xt = toTensor(x);
    const y = batchNorm2d(xt, gt, bt, rm, rv, { training: false });
    expectClose(await toND(y), R.batchNorm(x, g, b, rmRef, rvRef), { rtol: 1e-4, atol: 1e-4 });
    for (const t of [rm, rv, gt, bt, xt, y]) t.dispose();
  });

  it('rejects bad inputs with the op and the shapes', () => {
    const x = E.zeros([2, 3, 4, 4]);
    const c3 = E.ones([3]);
    const c4 = E.ones([4]);
    expect(() => batchNorm2d(x, c3, c3, c4, c3, { training: true })).toThrow(/batchNorm2d: runningMean has shape \[4\], expected \[3\] for x of shape \[2, 3, 4, 4\]/);
    expect(() => batchNorm2d(x, c4, c3, null, null, { training: true })).toThrow(/batchNorm2d: gamma has shape \[4\]/);
    expect(() => batchNorm2d(E.zeros([3, 4]), c3, c3, null, null, { training: true })).toThrow(/batchNorm2d: expected x of shape \[N, C, H, W\], got \[3, 4\]/);
    expect(() => batchNorm2d(x, c3, c3, null, null, { training: false })).toThrow(/batchNorm2d: eval mode/);
    expect(() => batchNorm2d(E.zeros([1, 3, 1, 1]), c3, c3, null, null, { training: true })).toThrow(/more than 1 value per channel/);
    for (const t of [x, c3, c4]) t.dispose();
  });
});

describe('batchNormReluMaxPool2d (the pooling reads relu(batch norm) as its prologue)', () => {
  const reluRef = (t: ND) => map(t, (v) => Math.max(v, 0));
  const cases: Array<[number[], number, number, number]> = [
    [[3, 4, 9, 7], 3, 2, 1], // a stem's pooling, odd sizes
    [[2, 3, 6, 6], 2, 2, 0],
    [[5, 8, 7, 6], 3, 1, 1], // several images per workgroup on CPU adapters, overlapping windows
  ];
  it.each(cases)('training forward and backward match the reference for %j kernel %j stride %j padding %j', async (shape, k, st, p) => {
    const C = shape[1];
    await gradCheck({
      inputs: [randND(shape, 71, -1, 2), randND([C], 72, 0.5, 1.5), randND([C], 73)],
      gpu: ([x, g, b]) => E.batchNormReluMaxPool2d(x, g, b, null, null, { training: true, pool: { kernel: k, stride: st, padding: p } }),
      ref: ([x, g, b]) => R.maxPool(reluRef(R.batchNormTrain(x, g, b)), [k, k], [st, st], [p, p]),
      rtol: 2e-3,
      atol: 2e-4,
    });
  });

  it('through a channel view; eval mode from the running statistics, which training updates as batchNorm2d does', async () => {
    await gradCheck({
      inputs: [randND([2, 9, 6, 5], 74), randND([5], 75, 0.5, 1.5), randND([5], 76)],
      gpu: ([x, g, b]) => E.batchNormReluMaxPool2d(E.slice(x, 1, 2, 7), g, b, null, null, { training: true, pool: { kernel: 3, stride: 2, padding: 1 } }),
      ref: ([x, g, b]) => R.maxPool(reluRef(R.batchNormTrain(slice(x, 1, 2, 7), g, b)), [3, 3], [2, 2], [1, 1]),
      rtol: 2e-3,
      atol: 2e-4,
    });
    const rmv = [0.3, -0.2, 1.1];
    const rvv = [0.5, 2.0, 0.8];
    const [rm, rv] = [toTensor(nd([3], rmv)), toTensor(nd([3], rvv))];
    await gradCheck({
      inputs: [randND([3, 3, 5, 7], 77), randND([3], 78, 0.5, 1.5), randND([3], 79)],
      gpu: ([x, g, b]) => E.batchNormReluMaxPool2d(x, g, b, rm, rv, { training: false, pool: { kernel: 2 } }),
      ref: ([x, g, b]) => R.maxPool(reluRef(R.batchNorm(x, g, b, rmv, rvv)), [2, 2], [2, 2], [0, 0]),
    });
    // Training: the running statistics move exactly as batchNorm2d moves them.
    const x = toTensor(randND([4, 3, 6, 6], 80));
    const [g, b] = [E.ones([3]), E.zeros([3])];
    const runs: ND[][] = [];
    for (const fused of [true, false]) {
      const [m, v, nb] = [toTensor(nd([3], rmv)), toTensor(nd([3], rvv)), E.zeros([1])];
      const o = { training: true, momentum: 0.3, numBatchesTracked: nb };
      E.scope(() => (fused ? E.batchNormReluMaxPool2d(x, g, b, m, v, { ...o, pool: { kernel: 2 } }) : batchNorm2d(x, g, b, m, v, o)));
      runs.push(await Promise.all([m, v, nb].map(toND)));
    }
    runs[0].forEach((t, i) => expectClose(t, runs[1][i], { rtol: 1e-6, atol: 1e-7, what: `running statistic ${i}` }));
    for (const t of [rm, rv, x, g, b]) t.dispose();
  });

  it('a NaN in x reaches the output as relu(NaN) does; bad geometry is an error naming the op', async () => {
    const xd = randND([2, 2, 4, 4], 81);
    xd.data[5] = NaN; // image 0, channel 0, row 1, column 1
    const x = toTensor(xd);
    const [g, b] = [E.ones([2]), E.zeros([2])];
    const y = await E.batchNormReluMaxPool2d(x, g, b, E.zeros([2]), E.ones([2]), { training: false, pool: { kernel: 2 } }).data();
    expect(Number.isNaN(y[0])).toBe(true); // the window holding it
    expect(Array.from(y.slice(1)).some(Number.isNaN)).toBe(false);
    expect(() => E.batchNormReluMaxPool2d(x, g, b, null, null, { training: true, pool: { kernel: 9 } })).toThrow(/batchNormReluMaxPool2d: the kernel \[9, 9\].*larger than the padded input/);
    expect(() => E.batchNormReluMaxPool2d(x, E.ones([3]), b, null, null, { training: true, pool: { kernel: 2 } })).toThrow(/batchNormReluMaxPool2d: gamma has shape \[3\], expected \[2\]/);
    for (const t of [x, g, b]) t.dispose();
  });
});

describe('maxPool2d', () => {
  const cases: Array<[number[], number | P2, number | P2 | undefined, number | P2]> = [
    [[5, 3, 7, 9], 3, 2, 1],
    [[1, 23, 8, 8], 2, undefined, 0],
    [[2, 3, 1, 1], 1, 1, 0],
    [[1, 3, 9, 9], 2, 2, 0],
    [[2, 33, 6, 7], [3, 2], [1, 2], [1, 0]],
    // The backward kernel works on 2x2 cells, shifted by the padding's parity at stride 2: odd sizes,
    // strides 1 to 3, overlapping windows and windows wider than the cells.
    [[2, 3, 11, 9], 3, 3, 1],
    [[1, 4, 10, 13], 5, 2, 2],
    [[3, 2, 5, 5], 3, 1, 1],
    [[1, 3, 9, 8], [5, 3], [3, 2], [2, 1]],
    [[2, 2, 7, 6], [2, 4], [2, 3], [0, 2]],
    // On a CPU adapter a workgroup walks several images of a channel (engine/variants.ts
    // planeImagesPerWorkgroup): 5 images of 8 channels make groups of 2, the last one short.
    [[5, 8, 7, 6], 3, 2, 1],
  ];
  const p2 = (v: number | P2): P2 => (typeof v === 'number' ? [v, v] : v);

  it.each(cases)('forward and backward match the reference for %j kernel %j stride %j padding %j', async (shape, k, s, p) => {
    await gradCheck({
      inputs: [distinctND(shape, 5)],
      gpu: ([x]) => maxPool2d(x, { kernel: k, stride: s, padding: p }),
      ref: ([x]) => R.maxPool(x, p2(k), p2(s ?? k), p2(p)),
    });
  });

  it('walks several images per workgroup on CPU adapters only', () => {
    const features = E.gpu().features;
    expect(planeImagesPerWorkgroup(8, 64, { features, isFallbackAdapter: true })).toBe(8);
    expect(planeImagesPerWorkgroup(5, 8, { features, isFallbackAdapter: true })).toBe(2);
    expect(planeImagesPerWorkgroup(8, 64, { features, isFallbackAdapter: false })).toBe(1);
  });

  it('routes the gradient to the first maximum when the window has ties', async () => {
    const shape = [2, 3, 7, 8];
    const x = randND(shape, 9);
    for (let i = 0; i < x.data.length; i++) x.data[i] = Math.floor((x.data[i] + 1) * 1.5); // values 0, 1, 2
    for (const [k, s, p] of [[3, 2, 1], [2, 1, 0], [3, 1, 1]] as const) {
      const xt = toTensor(x, true);
      const y = maxPool2d(xt, { kernel: k, stride: s, padding: p });
      expectClose(await toND(y), R.maxPool(x, [k, k], [s, s], [p, p]));
      const dy = randND([...y.shape], 10);
      y.backward(toTensor(dy));
      const idx = R.maxPoolArgmax(x, [k, k], [s, s], [p, p]);
      const expected = nd(shape);
      const plane = shape[2] * shape[3];
      idx.forEach((j, o) => {
        const nc = Math.floor(o / (y.shape[2] * y.shape[3]));
        expected.data[nc * plane + j] += dy.data[o];
      });
      expectClose(await toND(xt.grad!), expected, { what: `gradient, kernel ${k} stride ${s} padding ${p}` });
      xt.dispose();
      y.dispose();
    }
  });

  it('pools a channel view', async () => {
    await gradCheck({
      inputs: [distinctND([2, 10, 7, 5], 12)],
      gpu: ([x]) => maxPool2d(E.slice(x, 1, 3, 8), { kernel: 3, stride: 2, padding: 1 }),
      ref: ([x]) => R.maxPool(slice(x, 1, 3, 8), [3, 3], [2, 2], [1, 1]),
    });
  });

  it('rejects bad geometry with the op and the shapes', () => {
    const x = E.zeros([1, 2, 3, 3]);
    expect(() => maxPool2d(x, { kernel: 4 })).toThrow(/maxPool2d: the kernel \[4, 4\].*larger than the padded input of shape \[1, 2, 3, 3\]/);
    expect(() => maxPool2d(x, { kernel: 2, stride: 0 })).toThrow(/maxPool2d: kernel and stride must be positive integers/);
    expect(() => maxPool2d(x, { kernel: 2, stride: -1 })).toThrow(/maxPool2d: kernel and stride must be positive/);
    expect(() => maxPool2d(x, { kernel: 3, padding: 2 })).toThrow(/maxPool2d: padding should be at most half/);
    expect(() => maxPool2d(E.zeros([2, 3, 3]), { kernel: 2 })).toThrow(/maxPool2d: expected x of shape \[N, C, H, W\], got \[2, 3, 3\]/);
    x.dispose();
  });
});

describe('avgPool2d', () => {
  const p2 = (v: number | P2): P2 => (typeof v === 'number' ? [v, v] : v);
  it.each([
    [[5, 3, 7, 9], 3, 2, 1],
    [[2, 23, 8, 8], 2, 2, 0],
    [[1, 3, 9, 9], 2, 2, 0],
    [[2, 3, 5, 6], 3, 1, 1],
    [[1, 2, 1, 1], 1, 1, 0],
    [[2, 5, 6, 7], [3, 2], [2, 1], [1, 1]],
    [[2, 3, 11, 10], 4, 3, 2],
    [[1, 4, 9, 7], [5, 3], [2, 3], [1, 0]],
    [[5, 8, 6, 7], 2, 2, 0],
  ] as Array<[number[], number | P2, number | P2, number | P2]>)('forward and backward for %j kernel %j stride %j padding %j', async (shape, k, s, p) => {
    await gradCheck({
      inputs: [randND(shape, 13)],
      gpu: ([x]) => avgPool2d(x, { kernel: k, stride: s, padding: p }),
      ref: ([x]) => R.avgPool(x, p2(k), p2(s), p2(p)),
    });
  });

  it('pools a channel view', async () => {
    await gradCheck({
      inputs: [randND([3, 8, 6, 6], 14)],
      gpu: ([x]) => avgPool2d(E.slice(x, 1, 1, 4), { kernel: 2 }),
      ref: ([x]) => R.avgPool(slice(x, 1, 1, 4), [2, 2], [2, 2], [0, 0]),
    });
  });

  // The dense block pools a transition's BN-ReLU output through this prologue (relu(x * scale + shift),
  // never stored): odd sizes, padding, a channel view of a larger buffer, and a NaN channel (relu keeps it).
  it.each([
    [[3, 5, 7, 9], 2, 2, 0],
    [[2, 4, 5, 6], 3, 2, 1],
  ] as Array<[number[], number, number, number]>)('with a BN-ReLU prologue: %j kernel %i stride %i padding %i', async (shape, k, s, p) => {
    const [N, C, H, W] = shape;
    const big = randND([N, C + 2, H, W], 21);
    const scale = randND([C], 22, 0.5, 1.5);
    const shift = randND([C], 23, -0.5, 0.5);
    scale.data[1] = NaN;
    const both = E.tensor(new Float32Array([...scale.data, ...shift.data]), [2 * C]);
    const pro = { scale: E.slice(both, 0, 0, C), shift: E.slice(both, 0, C, 2 * C) };
    const bigT = toTensor(big);
    const xv = E.slice(bigT, 1, 1, C + 1);
    const g = avgPoolRaw.geometry('test', xv, { kernel: k, stride: s, padding: p });
    const y = avgPoolRaw.forward(xv, g, pro);
    const x = slice(big, 1, 1, C + 1);
    const act = nd(x.shape, x.data.map((v, i) => {
      const c = Math.floor(i / (H * W)) % C;
      const t = v * scale.data[c] + shift.data[c];
      return t > 0 || Number.isNaN(t) ? t : 0;
    }));
    const ref = R.avgPool(act, [k, k], [s, s], [p, p]);
    const got = await toND(y);
    const finite = (a: ND) => nd(a.shape, a.data.map((v) => (Number.isNaN(v) ? 0 : v))); // NaN channel: checked below
    expectClose(finite(got), finite(ref), { what: 'pooled BN-ReLU', rtol: 1e-5, atol: 1e-6 });
    const plane = g.OH * g.OW;
    got.data.forEach((v, i) => expect(Number.isNaN(v), `output ${i}`).toBe(Math.floor(i / plane) % C === 1));
    expect(() => avgPoolRaw.forward(xv, { ...g, adaptive: true }, pro)).toThrow(/avgPool2d prologue: needs a plain \(not adaptive\) pooling/);
    for (const t of [both, pro.scale, pro.shift, bigT, xv, y]) t.dispose();
  });

  it('rejects bad geometry', () => {
    const x = E.zeros([1, 2, 3, 3]);
    expect(() => avgPool2d(x, { kernel: 2, stride: 0 })).toThrow(/avgPool2d: kernel and stride must be positive/);
    expect(() => avgPool2d(x, { kernel: 5, padding: 0 })).toThrow(/avgPool2d: .*larger than the padded input of shape \[1, 2, 3, 3\]/);
    x.dispose();
  });
});

describe('adaptiveAvgPool2d', () => {
  it.each([
    [[5, 3, 7, 9], [3, 4]],
    [[2, 3, 5, 5], [1, 1]],
    [[1, 2, 4, 6], [5, 7]],
    [[2, 33, 10, 10], [3, 3]],
    [[1, 3, 1, 1], [2, 2]],
    [[3, 2, 7, 5], [2, 3]],
    [[1, 2, 3, 2], [5, 3]],
    [[5, 8, 5, 3], [2, 2]],
  ] as Array<[number[], P2]>)('forward and backward for %j to %j', async (shape, [oh, ow]) => {
    await gradCheck({
      inputs: [randND(shape, 15)],
      gpu: ([x]) => adaptiveAvgPool2d(x, [oh, ow]),
      ref: ([x]) => R.adaptiveAvgPool(x, oh, ow),
    });
  });

  it('pools a channel view, and rejects a bad size', async () => {
    await gradCheck({
      inputs: [randND([2, 6, 7, 5], 16)],
      gpu: ([x]) => adaptiveAvgPool2d(E.slice(x, 1, 2, 5), 2),
      ref: ([x]) => R.adaptiveAvgPool(slice(x, 1, 2, 5), 2, 2),
    });
    const x = E.zeros([1, 2, 3, 3]);
    expect(() => adaptiveAvgPool2d(x, [0, 1])).toThrow(/adaptiveAvgPool2d: output size must be positive integers, got \[0, 1\] for x of shape \[1, 2, 3, 3\]/);
    x.dispose();
  });
});

describe('crossEntropy', () => {
  it.each([
    [5, 10, 1],
    [1, 3, 1],
    [33, 7, 50],
  ])('forward and backward for B=%i C=%i (logit scale %i)', async (B, C, scale) => {
    const g = new Generator(B * 100 + C);
    const labels = Array.from({ length: B }, () => g.nextU32() % C);
    await gradCheck({
      inputs: [randND([B, C], 17, -scale, scale)],
      gpu: ([l]) => crossEntropy(l, labels),
      ref: ([l]) => R.crossEntropy(l, labels),
    });
  });

  it('takes labels as a tensor; a bad label in a tensor gives NaN', async () => {
    const logits = randND([4, 5], 18);
    const lt = toTensor(logits);
    const good = E.tensor([0, 4, 2, 1], [4]);
    expectClose(await toND(crossEntropy(lt, good)), R.crossEntropy(logits, [0, 4, 2, 1]));
    expectClose(await toND(crossEntropy(lt, Int32Array.from([0, 4, 2, 1]))), R.crossEntropy(logits, [0, 4, 2, 1]));
    for (const bad of [[0, 5, 2, 1], [0, 1.5, 2, 1], [-1, 0, 0, 0]]) {
      const v = await crossEntropy(lt, E.tensor(bad, [4])).item();
      expect(Number.isNaN(v), `labels ${bad}`).toBe(true);
    }
  });

  it('rejects bad labels and shapes', () => {
    const l = E.zeros([4, 5]);
    expect(() => crossEntropy(l, [0, 5, 1, 1])).toThrow(/crossEntropy: label 1 is 5; expected an integer class index in \[0, 5\) for logits of shape \[4, 5\]/);
    expect(() => crossEntropy(l, [0, 0.5, 1, 1])).toThrow(/crossEntropy: label 1 is 0.5/);
    expect(() => crossEntropy(l, [0, 1])).toThrow(/crossEntropy: 2 labels for logits of shape \[4, 5\]/);
    expect(() => crossEntropy(E.zeros([4]), [0])).toThrow(/crossEntropy: expected logits of shape \[B, C\]/);
    expect(() => crossEntropy(l, E.zeros([3]))).toThrow(/crossEntropy: labels have shape \[3\], expected \[4\]/);
  });
});

describe('linear', () => {
  it('x @ w^T + b with gradients', async () => {
    await gradCheck({
      inputs: [randND([5, 23], 19), randND([33, 23], 20), randND([33], 21)],
      gpu: ([x, w, b]) => linear(x, w, b),
      ref: ([x, w, b]) => R.linear(x, w, b),
    });
    await gradCheck({
      inputs: [randND([1, 3], 22), randND([4, 3], 23)],
      gpu: ([x, w]) => linear(x, w),
      ref: ([x, w]) => R.linear(x, w),
    });
  });

  it('rejects mismatched shapes', () => {
    expect(() => linear(E.zeros([2, 3]), E.zeros([4, 5]))).toThrow(/linear: x \[2, 3\] has 3 features but w \[4, 5\] expects 5/);
    expect(() => linear(E.zeros([2, 3]), E.zeros([4, 3]), E.zeros([5]))).toThrow(/linear: bias has shape \[5\], expected \[4\]/);
    expect(() => linear(E.zeros([3]), E.zeros([4, 3]))).toThrow(/linear: expected x \[B, in\]/);
  });
});

describe('batch-norm bookkeeping in one dispatch (bn_update)', () => {
  const C = 37;
  /** x [3, C, 5, 4], gamma, beta and running statistics (host and GPU), and a batch counter at 4. */
  const inputs = (seed: number) => {
    const x = randND([3, C, 5, 4], seed, -2, 3);
    const gamma = randND([C], seed + 1, 0.5, 1.5);
    const beta = randND([C], seed + 2);
    const rm0 = randND([C], seed + 3);
    const rv0 = randND([C], seed + 4, 0.5, 2);
    const [xt, gt, bt, rm, rv] = [x, gamma, beta, rm0, rv0].map((a) => toTensor(a));
    return { gamma, beta, rm0, rv0, xt, gt, bt, rm, rv, nb: E.tensor(4) };
  };

  it('makes the prologue (scale, shift), updates running mean and variance and counts the batch', async () => {
    const { gamma, beta, rm0, rv0, xt, gt, bt, rm, rv, nb } = inputs(61);
    const stats = batchNormStats(xt);
    const pro = E.batchNormPrologue(stats, gt, bt, { runningMean: rm, runningVar: rv, numBatchesTracked: nb, momentum: 0.3, count: 60 });
    const s = await stats.data();
    const p = await pro.data();
    const [m, v] = [await rm.data(), await rv.data()];
    for (let c = 0; c < C; c++) {
      const scale = gamma.data[c] * s[C + c];
      expect(p[c]).toBeCloseTo(scale, 5);
      expect(p[C + c]).toBeCloseTo(beta.data[c] - s[c] * scale, 5);
      expect(m[c]).toBeCloseTo(0.7 * rm0.data[c] + 0.3 * s[c], 5);
      expect(v[c]).toBeCloseTo(0.7 * rv0.data[c] + 0.3 * s[2 * C + c] * (60 / 59), 5);
    }
    expect(await nb.item()).toBe(5);
    expect(() => E.updateRunningStats(stats, { runningMean: rm, runningVar: rm, momentum: 0.1, count: 60 })).toThrow(/must not share storage/);
    for (const t of [xt, gt, bt, rm, rv, nb, stats, pro]) t.dispose();
  });

  // bn_stats_update runs one workgroup per new channel and spreads the other channels' bookkeeping over
  // their invocations: with 1 or 2 new channels of 37, each invocation handles several old ones.
  for (const fresh of [1, 2, 37]) {
    it(`with the statistics of the last ${fresh} channel(s) computed in the same dispatch`, async () => {
      const { gamma, beta, rm0, rv0, xt, gt, bt, rm, rv, nb } = inputs(71);
      const full = batchNormStats(xt); // every channel's statistics: the reference
      const ref = await full.data();
      // The table a dense layer holds: the old channels' columns filled, the new ones' not yet.
      const stats = E.tensor(new Float32Array(3 * C).map((_, i) => (i % C < C - fresh ? ref[i] : NaN)), [3, C]);
      const newX = E.slice(xt, 1, C - fresh, C);
      const pro = E.batchNormPrologue(stats, gt, bt, { runningMean: rm, runningVar: rv, numBatchesTracked: nb, momentum: 0.3, count: 60 }, { fresh: { x: newX, eps: 1e-5 } });
      const s = await stats.data();
      const p = await pro.data();
      const [m, v] = [await rm.data(), await rv.data()];
      for (let c = 0; c < C; c++) {
        for (const r of [0, 1, 2]) expect(s[r * C + c]).toBeCloseTo(ref[r * C + c], 5);
        const scale = gamma.data[c] * ref[C + c];
        expect(p[c]).toBeCloseTo(scale, 5);
        expect(p[C + c]).toBeCloseTo(beta.data[c] - ref[c] * scale, 5);
        expect(m[c]).toBeCloseTo(0.7 * rm0.data[c] + 0.3 * ref[c], 5);
        expect(v[c]).toBeCloseTo(0.7 * rv0.data[c] + 0.3 * ref[2 * C + c] * (60 / 59), 5);
      }
      expect(await nb.item()).toBe(5); // counted once
      for (const t of [xt, gt, bt, rm, rv, nb, full, stats, newX, pro]) t.dispose();
    });
  }
});
