// Batch norm and pooling with float16 activations (engine/storage.ts): every kernel against the float64
// CPU reference computed on the float16-rounded inputs, at awkward sizes, through every batch-norm
// variant the adapter runs. A stored float16 output may differ from the reference by its rounding (half
// an ulp, 2^-11 of the value) plus the float32 arithmetic's error (1e-4 of the largest value); float32
// outputs (statistics, sums, gamma's and beta's gradients) are held to 1e-4.

import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/index.js';
import {
  batchNorm2d, batchNormApplyRaw, batchNormBackwardRaw, batchNormRelu2d, batchNormStats, bnStatsSource, forceBnStatsKernel,
} from '../engine/ops/batchnorm.js';
import { adaptiveAvgPool2d, avgPool2d, maxPool2d, poolShaders } from '../engine/ops/pool2d.js';
import { map, nd, slice, type ND } from './reference/ndarray.js';
import * as R from './reference/layers.js';
import { randND, toND, toTensor, useEngine } from './helpers.js';

useEngine();
const { features } = await E.init();
const f16 = describe.skipIf(!features.shaderF16);
const why = features.shaderF16 ? '' : ' (skipped: this adapter has no shader-f16)';

type DT = E.DType;
type P2 = [number, number];

/** The reference array with every value rounded to float16 (what a float16 tensor of it holds). */
const rounded = (a: ND): ND => nd(a.shape, E.roundToHalf(a.data));

/** A GPU tensor of `a` stored as `dtype` (float16: each value rounded). */
function upload(a: ND, dtype: DT = 'float16', requiresGrad = false): E.Tensor {
  const t32 = toTensor(a);
  const t = dtype === 'float16' ? E.cast(t32, 'float16') : t32;
  if (t !== t32) t32.dispose();
  t.requiresGrad = requiresGrad;
  return t;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/**
 * |actual - expected| <= rtol * |expected| + atol * max|expected| everywhere (NaN where NaN is expected,
 * the same infinity where one is). For a float16 output rtol is the rounding (2^-11) plus a little.
 */
function expectNear(actual: ArrayLike<number>, expected: ND | ArrayLike<number>, { what = 'value', dtype = 'float16' as DT, atol = 1e-4 } = {}): void {
  const e = 'data' in expected ? expected.data : expected;
  expect(actual.length, `${what}: element count`).toBe(e.length);
  const rtol = dtype === 'float16' ? 2 ** -11 + 1e-5 : 1e-4;
  const scale = maxAbs(e);
  for (let i = 0; i < e.length; i++) {
    const [a, x] = [actual[i], e[i]];
    if (Number.isNaN(x) || !Number.isFinite(x)) {
      if (!Object.is(a, x) && !(Number.isNaN(x) && Number.isNaN(a))) expect.fail(`${what}: element ${i} is ${a}, expected ${x}`);
      continue;
    }
    if (!(Math.abs(a - x) <= rtol * Math.abs(x) + atol * scale)) {
      expect.fail(`${what}: element ${i} is ${a}, expected ${x} (${dtype}: rtol ${rtol}, atol ${atol} of max ${scale})`);
    }
  }
}

// ---- float64 references for batch norm's backward and the pools' input gradients -----------------

/**
 * Batch norm's backward in float64: d = dy (with `reluBeta`, dy where the batch norm's output is > 0),
 * dbeta = sum(d), dgamma = sum(d * xhat), dx = gamma * invstd * (d - dbeta/M - xhat * dgamma/M) in
 * training, gamma * invstd * d with the running statistics held fixed in eval.
 */
function bnBackwardRef(x: ND, dy: ND, gamma: ND, training: boolean, o: { reluBeta?: ND; mean?: number[]; variance?: number[] } = {}) {
  const [N, C, H, W] = x.shape;
  const HW = H * W;
  const M = N * HW;
  const { mean, variance } = training ? R.channelStats(x) : { mean: o.mean!, variance: o.variance! };
  const dx = nd(x.shape);
  const dgamma: number[] = [];
  const dbeta: number[] = [];
  for (let c = 0; c < C; c++) {
    const inv = 1 / Math.sqrt(variance[c] + 1e-5);
    const at = (n: number, j: number) => (n * C + c) * HW + j;
    const xhat = (i: number) => (x.data[i] - mean[c]) * inv;
    const d = (i: number) => (o.reluBeta && !(xhat(i) * gamma.data[c] + o.reluBeta.data[c] > 0) ? 0 : dy.data[i]);
    let s = 0;
    let q = 0;
    for (let n = 0; n < N; n++) for (let j = 0; j < HW; j++) (s += d(at(n, j))), (q += d(at(n, j)) * xhat(at(n, j)));
    dbeta.push(s);
    dgamma.push(q);
    for (let n = 0; n < N; n++)
      for (let j = 0; j < HW; j++) {
        const i = at(n, j);
        dx.data[i] = gamma.data[c] * inv * (training ? d(i) - s / M - (xhat(i) * q) / M : d(i));
      }
  }
  return { dx, dgamma, dbeta };
}

/** The input gradient of a linear map f (average pooling) for output gradient dy: column by column. */
function linearVjp(f: (x: ND) => ND, shape: number[], dy: ND): ND {
  const dx = nd(shape);
  const e = nd(shape);
  for (let i = 0; i < e.data.length; i++) {
    e.data[i] = 1;
    const y = f(e);
    let s = 0;
    for (let j = 0; j < y.data.length; j++) s += y.data[j] * dy.data[j];
    dx.data[i] = s;
    e.data[i] = 0;
  }
  return dx;
}

/** Max pooling's input gradient: each output's gradient sent to its window's first maximum. */
function maxPoolVjp(x: ND, k: P2, s: P2, p: P2, dy: ND): ND {
  const dx = nd(x.shape);
  const [, , H, W] = x.shape;
  const plane = dy.shape[2] * dy.shape[3];
  R.maxPoolArgmax(x, k, s, p).forEach((j, o) => (dx.data[Math.floor(o / plane) * H * W + j] += dy.data[o]));
  return dx;
}

/** Distinct values (a shuffled ramp, distinct in float16 too), so max pooling has no ties. */
function distinctND(shape: number[], seed: number): ND {
  const a = randND(shape, seed);
  const order = [...a.data.keys()].sort((i, j) => a.data[i] - a.data[j]);
  order.forEach((i, r) => (a.data[i] = -1 + (2 * r) / order.length));
  return a;
}

const bnKernels = E.allVariants('bnStats');
const bnSupported = E.supportedVariants('bnStats');
afterEach(() => {
  forceBnStatsKernel(null);
  E.forceVariant('bnBackward', null);
});

// Odd channel counts, N*H*W not a multiple of 4 or of the workgroup, 1x1 images, vec4 planes (H*W a
// multiple of 4) and scalar ones, several images per workgroup (5 images of 8 channels on CPU adapters).
const BN_SHAPES = [[5, 3, 7, 9], [2, 7, 1, 1], [3, 5, 3, 5], [5, 8, 3, 4], [1, 23, 8, 8], [2, 3, 2, 2]];

f16.each(bnKernels)(`batch norm on float16 activations (%s reduction)${why}`, (kernel) => {
  const run = it.runIf(bnSupported.includes(kernel));

  run.each(BN_SHAPES.map((s) => [s]))('statistics (float32) and the normalised output (float16, with and without ReLU) for %j', async (shape) => {
    forceBnStatsKernel(kernel);
    const C = shape[1];
    const x = rounded(randND(shape, 3, -2, 3));
    const [g, b] = [randND([C], 4, 0.5, 1.5), randND([C], 5)];
    const [xh, gt, bt] = [upload(x), toTensor(g), toTensor(b)];
    const stats = batchNormStats(xh);
    expect(stats.dtype).toBe('float32');
    const s = await stats.data();
    const { mean, variance } = R.channelStats(x);
    expectNear(s.slice(0, C), mean, { what: 'mean', dtype: 'float32' });
    expectNear(s.slice(C, 2 * C), variance.map((v) => 1 / Math.sqrt(v + 1e-5)), { what: 'invstd', dtype: 'float32' });
    expectNear(s.slice(2 * C), variance, { what: 'variance', dtype: 'float32' });
    for (const relu of [false, true]) {
      const y = batchNormApplyRaw(xh, stats, gt, bt, 0, relu);
      expect(y.dtype).toBe('float16');
      const ref = R.batchNorm(x, g, b, mean, variance);
      expectNear(await y.data(), relu ? map(ref, (v) => Math.max(v, 0)) : ref, { what: `y (relu ${relu})` });
      y.dispose();
    }
    for (const t of [xh, gt, bt, stats]) t.dispose();
  });

  run.each([
    // [N, Cbig, H, W], the view's channels [c0, c1), dx's channels in the gradient buffer from d0
    [[3, 13, 3, 4], 3, 10, 5],
    [[2, 11, 3, 5], 1, 8, 3],
    [[4, 9, 1, 1], 5, 8, 1],
  ] as Array<[number[], number, number, number]>)(
    'channel views of a float16 buffer %j at channels [%i, %i): statistics at a column, apply, backward accumulated into a float16 view at %i',
    async (big, c0, c1, d0) => {
      forceBnStatsKernel(kernel);
      const C = c1 - c0;
      const xb = rounded(randND(big, 21, -1, 2));
      const xbh = upload(xb);
      const v = E.slice(xbh, 1, c0, c1);
      const x = slice(xb, 1, c0, c1);
      const [g, b] = [randND([C], 22, 0.5, 1.5), randND([C], 23)];
      const [gt, bt] = [toTensor(g), toTensor(b)];
      const stats = E.zeros([3, C + 5]);
      batchNormStats(v, 1e-5, { stats, channel: 5 });
      const { mean, variance } = R.channelStats(x);
      const s = await stats.data();
      expectNear(s.slice(5, 5 + C), mean, { what: 'mean at column 5', dtype: 'float32' });
      expect(s[0]).toBe(0);
      const y = batchNormApplyRaw(v, stats, gt, bt, 5, true);
      expectNear(await y.data(), map(R.batchNorm(x, g, b, mean, variance), (t) => Math.max(t, 0)), { what: 'y of the view' });
      const own = batchNormStats(v);
      const dy = rounded(randND([big[0], C, big[2], big[3]], 24));
      const dyh = upload(dy);
      const ref = bnBackwardRef(x, dy, g, true, { reluBeta: b });
      for (const variant of E.allVariants('bnBackward')) {
        E.forceVariant('bnBackward', variant);
        const gb = rounded(randND(big, 25));
        const gradh = upload(gb);
        const dgamma = E.empty([C]);
        const { dx, sums } = batchNormBackwardRaw(v, dyh, own, gt, true, { out: E.slice(gradh, 1, d0, d0 + C), accumulate: true, dgammaOut: dgamma, reluBeta: bt });
        expect(dx.dtype).toBe('float16');
        const expected = nd(big, gb.data);
        const [N, Cb, H, W] = big;
        for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let j = 0; j < H * W; j++) expected.data[(n * Cb + d0 + c) * H * W + j] += ref.dx.data[(n * C + c) * H * W + j];
        // Channels outside [d0, d0 + C) hold their values exactly; inside, the sum rounded once.
        expectNear(await gradh.data(), expected, { what: `dx accumulated into the gradient buffer (${variant})` });
        const sm = await sums.data();
        expectNear(sm.slice(0, C), ref.dbeta, { what: `dbeta (${variant})`, dtype: 'float32' });
        expectNear(sm.slice(C), ref.dgamma, { what: `dgamma (${variant})`, dtype: 'float32' });
        expectNear(await dgamma.data(), ref.dgamma, { what: `dgammaOut (${variant})`, dtype: 'float32' });
        for (const t of [gradh, dgamma, sums, dx]) t.dispose();
      }
      for (const t of [xbh, v, gt, bt, stats, y, own, dyh]) t.dispose();
    },
  );

  // x and dy each float32 or float16; dx new (x's dtype), then accumulated into a float32 or float16
  // tensor; training and eval statistics; with and without the fused ReLU; both backward variants.
  // (One combination per row: each is a pipeline of its own to compile.)
  run.each([
    [[3, 5, 3, 5], 'float16', 'float16', true, false, 'float16'],
    [[2, 6, 4, 4], 'float16', 'float32', true, true, 'float32'],
    [[5, 8, 3, 4], 'float32', 'float16', false, true, 'float16'],
    [[3, 7, 1, 1], 'float16', 'float16', false, false, 'float16'],
  ] as Array<[number[], DT, DT, boolean, boolean, DT]>)('backward of %j with x %s, dy %s (training %s, relu %s, accumulated into %s) matches the reference', async (shape, xdt, dydt, training, relu, acc) => {
    forceBnStatsKernel(kernel);
    const C = shape[1];
    const x = rounded(randND(shape, 31, -1, 2));
    const dy = rounded(randND(shape, 32));
    const [g, b] = [randND([C], 33, 0.5, 1.5), randND([C], 34)];
    const [xt, dyt, gt, bt] = [upload(x, xdt), upload(dy, dydt), toTensor(g), toTensor(b)];
    const rmv = [...randND([C], 35).data];
    const rvv = [...randND([C], 36, 0.5, 2).data];
    const [rm, rv] = [toTensor(nd([C], rmv)), toTensor(nd([C], rvv))];
    const stats = training ? batchNormStats(xt) : E.batchNormEvalStats(rm, rv, 1e-5);
    const ref = bnBackwardRef(x, dy, g, training, { reluBeta: relu ? b : undefined, mean: rmv, variance: rvv });
    const o = { reluBeta: relu ? bt : null };
    const init = rounded(randND(shape, 37));
    for (const variant of E.allVariants('bnBackward')) {
      E.forceVariant('bnBackward', variant);
      const { dx, sums } = batchNormBackwardRaw(xt, dyt, stats, gt, training, o);
      expect(dx.dtype).toBe(xdt);
      expectNear(await dx.data(), ref.dx, { what: `dx (${variant})`, dtype: xdt });
      const sm = await sums.data();
      expectNear(sm.slice(0, C), ref.dbeta, { what: `dbeta (${variant})`, dtype: 'float32' });
      expectNear(sm.slice(C), ref.dgamma, { what: `dgamma (${variant})`, dtype: 'float32' });
      const out = upload(init, acc);
      const r = batchNormBackwardRaw(xt, dyt, stats, gt, training, { ...o, out, accumulate: true });
      expect(r.dx).toBe(out);
      expectNear(await out.data(), nd(shape, init.data.map((v, i) => v + ref.dx.data[i])), { what: `dx accumulated (${variant})`, dtype: acc });
      for (const t of [dx, sums, out, r.sums]) t.dispose();
    }
    for (const t of [xt, dyt, gt, bt, rm, rv, stats]) t.dispose();
  });

  run.each([
    ['batchNorm2d', false],
    ['batchNormRelu2d', true],
  ] as Array<[string, boolean]>)('%s on a float16 x: y and dx float16, gamma and beta gradients and running statistics float32', async (_, relu) => {
    forceBnStatsKernel(kernel);
    const op = relu ? batchNormRelu2d : batchNorm2d;
    const shape = [3, 5, 3, 5];
    const C = shape[1];
    const x = rounded(randND(shape, 41, -1, 2));
    const dy = rounded(randND(shape, 42));
    const [g, b] = [randND([C], 43, 0.5, 1.5), randND([C], 44)];
    for (const training of [true, false]) {
      const [xh, gt, bt] = [upload(x, 'float16', true), toTensor(g, true), toTensor(b, true)];
      const rm0 = randND([C], 45).data;
      const rv0 = randND([C], 46, 0.5, 2).data;
      const [rm, rv] = [toTensor(nd([C], rm0)), toTensor(nd([C], rv0))];
      const y = op(xh, gt, bt, rm, rv, { training, momentum: 0.3 });
      expect(y.dtype).toBe('float16');
      const st = training ? R.channelStats(x) : { mean: [...rm0], variance: [...rv0] };
      const yref = R.batchNorm(x, g, b, st.mean, st.variance);
      expectNear(await y.data(), relu ? map(yref, (v) => Math.max(v, 0)) : yref, { what: `y (training ${training})` });
      const run0 = training ? R.runningUpdate([...rm0], [...rv0], x, 0.3) : { rm: [...rm0], rv: [...rv0] };
      expectNear(await rm.data(), run0.rm, { what: 'running mean', dtype: 'float32' });
      expectNear(await rv.data(), run0.rv, { what: 'running var', dtype: 'float32' });
      y.backward(upload(dy));
      const ref = bnBackwardRef(x, dy, g, training, { reluBeta: relu ? b : undefined, mean: [...rm0], variance: [...rv0] });
      expect([xh.grad!.dtype, gt.grad!.dtype, bt.grad!.dtype]).toEqual(['float16', 'float32', 'float32']);
      expectNear(await xh.grad!.data(), ref.dx, { what: `dx (training ${training})` });
      expectNear(await gt.grad!.data(), ref.dgamma, { what: 'dgamma', dtype: 'float32' });
      expectNear(await bt.grad!.data(), ref.dbeta, { what: 'dbeta', dtype: 'float32' });
      for (const t of [xh, gt, bt, rm, rv, y]) t.dispose();
    }
  });

  run("batchNormRelu2d's gradients on float16 x are close to the float32 op's on the same values", async () => {
    forceBnStatsKernel(kernel);
    const shape = [4, 6, 5, 4];
    const x = rounded(randND(shape, 51, -1, 2));
    const dy = randND(shape, 52);
    const grads = async (dtype: DT) => {
      const [xt, gt, bt] = [upload(x, dtype, true), toTensor(randND([6], 53, 0.5, 1.5), true), toTensor(randND([6], 54), true)];
      const y = batchNormRelu2d(xt, gt, bt, null, null, { training: true });
      y.backward(upload(dy, dtype));
      const out = await Promise.all([y, xt.grad!, gt.grad!, bt.grad!].map((t) => t.data()));
      for (const t of [xt, gt, bt, y]) t.dispose();
      return out;
    };
    const [h, f] = [await grads('float16'), await grads('float32')];
    // dy is rounded to float16 in the float16 run: its gradients differ by that, plus dx's rounding.
    ['y', 'dx', 'dgamma', 'dbeta'].forEach((what, i) => expectNear(h[i], f[i], { what, dtype: 'float16', atol: 2e-3 }));
  });

  run('NaN in a float16 x spreads to its channel as in float32; a value past float16 range stores inf', async () => {
    forceBnStatsKernel(kernel);
    const shape = [2, 3, 3, 5];
    const x = rounded(randND(shape, 61, -1, 2));
    x.data[15 + 7] = NaN; // image 0, channel 1
    const g = nd([3], [1, 1, 1]);
    const b = nd([3], [0.5, 0, -0.5]);
    const outs: Float32Array[] = [];
    for (const dtype of ['float32', 'float16'] as DT[]) {
      const [xt, gt, bt] = [upload(x, dtype), toTensor(g), toTensor(b)];
      const y = batchNorm2d(xt, gt, bt, null, null, { training: true });
      outs.push(await y.data());
      for (const t of [xt, gt, bt, y]) t.dispose();
    }
    expect(Array.from(outs[1], Number.isNaN)).toEqual(Array.from(outs[0], Number.isNaN));
    expect(outs[1].filter(Number.isNaN).length).toBe(2 * 15);
    // gamma 1e5: |xhat * gamma| passes 65504 for most elements and must store as +-inf, not garbage.
    const xs = rounded(randND(shape, 62, -1, 2));
    const big = nd([3], [1e5, 1e5, 1e5]);
    const [xt, gt, bt] = [upload(xs), toTensor(big), toTensor(nd([3]))];
    const yt = batchNorm2d(xt, gt, bt, null, null, { training: true });
    const y = await yt.data();
    const { mean, variance } = R.channelStats(xs);
    const ref = R.batchNorm(xs, big, nd([3]), mean, variance);
    let infs = 0;
    ref.data.forEach((v, i) => {
      if (Math.abs(v) > 65600) {
        expect(y[i], `element ${i}`).toBe(Math.sign(v) * Infinity);
        infs++;
      } else if (Math.abs(v) < 65400) expect(Math.abs(y[i] - v), `element ${i}`).toBeLessThanOrEqual(2 ** -11 * Math.abs(v) + 1e-4 * 65504);
    });
    expect(infs).toBeGreaterThan(10);
    for (const t of [xt, gt, bt, yt]) t.dispose();
  });
});

describe('float32 compositions', () => {
  it('need no shader-f16: no `enable f16` and no f16 type in batch norm or pooling kernels composed for float32', () => {
    const sources = [...bnKernels.map((v) => bnStatsSource(v, { X: 'float32', DY: 'float32', DX: 'float32' })), ...poolShaders('float32')];
    for (const k of sources) {
      expect(k.enables ?? [], k.file).not.toContain('f16');
      expect(k.source, k.file).not.toMatch(/\bf16\b/);
    }
  });
});

f16(`batch norm's per-channel tensors must be float32${why}`, () => {
  it('a float16 gamma, beta, running statistic or statistics table is an error naming the op, the tensor and float32', () => {
    const x = E.zeros([2, 3, 4, 4]);
    const xh = x.half();
    const c3 = E.ones([3]);
    const h3 = c3.half();
    expect(() => batchNorm2d(xh, h3, c3, null, null, { training: true })).toThrow(/batchNorm2d: gamma is float16, expected float32/);
    expect(() => batchNormRelu2d(xh, c3, h3, null, null, { training: true })).toThrow(/batchNormRelu2d: beta is float16, expected float32/);
    expect(() => batchNorm2d(x, c3, c3, h3, c3, { training: true })).toThrow(/batchNorm2d: runningMean is float16, expected float32/);
    expect(() => batchNorm2d(xh, c3, c3, c3, h3, { training: false })).toThrow(/batchNorm2d: runningVar is float16, expected float32/);
    const s32 = E.zeros([3, 3]);
    const statsH = s32.half();
    expect(() => batchNormStats(xh, 1e-5, { stats: statsH, channel: 0 })).toThrow(/batchNormStats: statistics is float16, expected float32/);
    expect(() => batchNormApplyRaw(xh, statsH, c3, c3)).toThrow(/batchNorm2d: statistics is float16, expected float32/);
    expect(() => E.batchNormPrologue(statsH, c3, c3)).toThrow(/batchNormPrologue: statistics is float16, expected float32/);
    for (const t of [x, xh, c3, h3, s32, statsH]) t.dispose();
  });
});

// ---- pooling ---------------------------------------------------------------------------------------

type PoolCase = { name: string; shape: number[]; view?: P2; gpu: (x: E.Tensor) => E.Tensor; ref: (x: ND) => ND; vjp: (x: ND, dy: ND) => ND };
const p2 = (v: number | P2): P2 => (typeof v === 'number' ? [v, v] : v);
const maxCase = (shape: number[], k: number | P2, s: number | P2, p: number | P2, view?: P2): PoolCase => ({
  name: `maxPool2d ${JSON.stringify(shape)}${view ? ` channels ${view}` : ''} kernel ${k} stride ${s} padding ${p}`,
  shape,
  view,
  gpu: (x) => maxPool2d(x, { kernel: k, stride: s, padding: p }),
  ref: (x) => R.maxPool(x, p2(k), p2(s), p2(p)),
  vjp: (x, dy) => maxPoolVjp(x, p2(k), p2(s), p2(p), dy),
});
const avgCase = (shape: number[], k: number | P2, s: number | P2, p: number | P2, view?: P2): PoolCase => ({
  name: `avgPool2d ${JSON.stringify(shape)}${view ? ` channels ${view}` : ''} kernel ${k} stride ${s} padding ${p}`,
  shape,
  view,
  gpu: (x) => avgPool2d(x, { kernel: k, stride: s, padding: p }),
  ref: (x) => R.avgPool(x, p2(k), p2(s), p2(p)),
  vjp: (x, dy) => linearVjp((t) => R.avgPool(t, p2(k), p2(s), p2(p)), x.shape, dy),
});
const adaptiveCase = (shape: number[], o: P2, view?: P2): PoolCase => ({
  name: `adaptiveAvgPool2d ${JSON.stringify(shape)}${view ? ` channels ${view}` : ''} to ${o}`,
  shape,
  view,
  gpu: (x) => adaptiveAvgPool2d(x, o),
  ref: (x) => R.adaptiveAvgPool(x, ...o),
  vjp: (x, dy) => linearVjp((t) => R.adaptiveAvgPool(t, ...o), x.shape, dy),
});

const POOLS: PoolCase[] = [
  maxCase([5, 3, 7, 9], 3, 2, 1),
  maxCase([2, 3, 1, 1], 1, 1, 0),
  maxCase([1, 4, 10, 13], 5, 2, 2),
  maxCase([5, 8, 7, 6], 3, 2, 1),
  maxCase([2, 11, 7, 5], 3, 2, 1, [3, 8]),
  avgCase([5, 3, 7, 9], 3, 2, 1),
  avgCase([1, 2, 1, 1], 1, 1, 0),
  avgCase([2, 5, 6, 7], [3, 2], [2, 1], [1, 1]),
  avgCase([5, 8, 6, 7], 2, 2, 0),
  avgCase([3, 9, 6, 6], 2, 2, 0, [1, 4]),
  adaptiveCase([5, 3, 7, 9], [3, 4]),
  adaptiveCase([1, 3, 1, 1], [2, 2]),
  adaptiveCase([2, 33, 5, 5], [1, 1]),
  adaptiveCase([1, 2, 3, 2], [5, 3]),
  adaptiveCase([2, 7, 7, 5], [2, 3], [3, 6]),
];

f16(`pooling on float16 activations${why}`, () => {
  it.each(POOLS.map((c) => [c.name, c]))('%s: forward and input gradient float16, against the reference', async (_, c) => {
    const xb = rounded(distinctND(c.shape, 71));
    const xbh = upload(xb);
    const x = c.view ? slice(xb, 1, ...c.view) : xb;
    // A channel view at an odd offset is pooled through the raw view (slice's own gradient is float32).
    const xin = c.view ? E.slice(xbh, 1, ...c.view) : xbh;
    const y = c.gpu(xin);
    expect(y.dtype).toBe('float16');
    expectNear(await y.data(), c.ref(x), { what: 'forward' });
    for (const dydt of ['float16', 'float32'] as DT[]) {
      const dy = rounded(randND([...y.shape], 72));
      const xg = upload(x, 'float16', true);
      const yg = c.gpu(xg);
      yg.backward(upload(dy, dydt));
      expect(xg.grad!.dtype).toBe('float16');
      expectNear(await xg.grad!.data(), c.vjp(x, dy), { what: `input gradient (dy ${dydt})` });
      for (const t of [xg, yg]) t.dispose();
    }
    for (const t of [xbh, xin, y]) t.dispose();
  });

  it('NaN in a float16 x spreads as in float32; a gradient sum past float16 range stores inf', async () => {
    const shape = [2, 3, 6, 7];
    const x = rounded(distinctND(shape, 81));
    x.data[42 + 9] = NaN;
    const outs: Float32Array[][] = [];
    for (const dtype of ['float32', 'float16'] as DT[]) {
      const xt = upload(x, dtype);
      const ys = [maxPool2d(xt, { kernel: 3, stride: 2, padding: 1 }), avgPool2d(xt, { kernel: 2 }), adaptiveAvgPool2d(xt, [4, 3])];
      outs.push(await Promise.all(ys.map((y) => y.data())));
      for (const t of [xt, ...ys]) t.dispose();
    }
    outs[1].forEach((y, i) => {
      expect(Array.from(y, Number.isNaN), `pool ${i}`).toEqual(Array.from(outs[0][i], Number.isNaN));
      expect(y.some(Number.isNaN), `pool ${i}`).toBe(true);
    });
    // Stride 1, kernel 3: a window maximum collects up to 9 gradients of 3e4 each.
    const xs = rounded(distinctND([1, 2, 5, 5], 82));
    const xt = upload(xs, 'float16', true);
    const y = maxPool2d(xt, { kernel: 3, stride: 1, padding: 1 });
    const dy = nd([...y.shape], new Array(y.size).fill(3e4));
    y.backward(upload(dy));
    const got = await xt.grad!.data();
    const ref = maxPoolVjp(xs, [3, 3], [1, 1], [1, 1], dy);
    ref.data.forEach((v, i) => expect(got[i], `element ${i}`).toBe(v > 65504 ? Infinity : v));
    expect(got.filter((v) => v === Infinity).length).toBeGreaterThan(0);
    for (const t of [xt, y]) t.dispose();
  });
});
