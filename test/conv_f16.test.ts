// Convolutions with float16 storage (engine/ops/conv.ts, shaders/conv2d*.wgsl): every variant this adapter
// runs, forward, input and weight gradient with float16 activations (and mixed float16/float32 in one
// call), against the float64 CPU reference computed on the float16-rounded inputs. Outputs stored as
// float16 must be the reference rounded to float16 within one half ulp (the float32 sums may round to
// the neighbour); weight gradients are float32 stores (1e-4 relative).
import { afterEach, describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import {
  conv2d, conv2dBiasGradRaw, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, convSource, forceConvKernel,
} from '../engine/ops/conv.js';
import { checkShader } from '../engine/runtime.js';
import { selectVariant } from '../engine/tuner.js';
import { canProfile, startProfile, stopProfile } from '../engine/profiler.js';
import { fromData } from '../engine/tensor.js';
import { expectClose, randND, toND, toTensor, useEngine } from './helpers.js';
import * as R from './reference/ndarray.js';
import * as C from './reference/conv.js';
import type { ND } from './reference/ndarray.js';

useEngine();
afterEach(() => {
  forceConvKernel(null);
  E.setTuneMode('off');
});

const { features } = await E.init();
const supported = E.supportedVariants('conv');
const half = features.shaderF16;
const suite = (name: string) => `${name}${half ? '' : ' (skipped: this adapter lacks shader-f16)'}`;

/** `a` rounded to float16 (what a float16 tensor of it holds). */
const h = (a: ND): ND => R.nd(a.shape, E.roundToHalf(a.data));
/** A float16 tensor of `a` (rounded). */
const t16 = (a: ND): E.Tensor => fromData(Float32Array.from(a.data), a.shape, 'tensor', 'float16');

/** One float16 ulp at |v| (the spacing of halves around it; 2^-24 among the subnormals). */
function halfUlp(v: number): number {
  const a = Math.abs(v);
  return a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
}

/**
 * A float16 result against the float64 reference: within one half ulp of the reference rounded to
 * float16, plus the float32 sums' error (1e-5 of the largest magnitude); infinities and NaN exactly.
 */
function expectHalf(t: E.Tensor, got: ND, ref: ND, what: string): void {
  expect(t.dtype, `${what}: dtype`).toBe('float16');
  expect(got.shape, `${what}: shape`).toEqual(ref.shape);
  const r = E.roundToHalf(ref.data);
  const atol = 1e-5 * ref.data.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
  for (let i = 0; i < r.length; i++) {
    const [g, e] = [got.data[i], r[i]];
    const ok = Number.isFinite(e) ? Math.abs(g - e) <= halfUlp(e) + atol : Object.is(g, e) || (Number.isNaN(g) && Number.isNaN(e));
    if (!ok) expect.fail(`${what}: element ${i} is ${g}, expected ${e} (float64 ${ref.data[i]}; one half ulp ${halfUlp(e)}, shape [${ref.shape}])`);
  }
}

// [N, Cin, H, W, Cout, KH, KW, stride, padding]
type Case = [number, number, number, number, number, number, number, number, number];
const cases: Case[] = [
  [1, 3, 7, 9, 5, 3, 3, 1, 1], // odd sizes, 3 channels (input gradient by stride phase)
  [5, 6, 9, 7, 33, 3, 3, 2, 1], // batch 5, stride 2 on odd sizes, 33 filters (two row tiles)
  [2, 23, 5, 5, 10, 1, 1, 1, 0], // 1x1
  [2, 3, 13, 11, 9, 7, 7, 2, 3], // the stem's 7x7/2 pad 3
  [3, 5, 1, 1, 6, 3, 3, 1, 1], // 1-pixel images
  [3, 1, 6, 5, 3, 3, 3, 2, 1], // Cin = 1
  [2, 72, 9, 10, 67, 3, 3, 1, 1], // more than one wg block each way; K = 648 (vec4 weights)
  [2, 7, 5, 8, 9, 3, 3, 1, 1], // stride 1, width 8: the sliding loops of the forward and the input gradient
  [3, 5, 6, 4, 6, 3, 3, 1, 0], // width 4, no padding: the input gradient slides, the forward (OW 2) does not
  [3, 5, 7, 16, 9, 3, 3, 1, 1], // 336 columns: subgroup-wide's 32x8 tiles, sliding as one row of 8
  [9, 6, 8, 4, 5, 3, 3, 1, 1], // 288 columns of width 4: 32x8 tiles whose two groups slide on their own
  [3, 9, 11, 9, 6, 1, 1, 1, 0], // 1x1 on 297 columns (32x8 tiles)
];
const name = (c: Case) => `x [${c.slice(0, 4)}], w [${c[4]}, ${c[1]}, ${c[5]}, ${c[6]}], stride ${c[7]}, padding ${c[8]}`;

describe.skipIf(!half)(suite('float16 storage: the composed modules'), () => {
  test('every variant compiles with float16 activations; the float32 modules do not enable f16', async () => {
    for (const v of supported) {
      expect(convSource(v).source).not.toMatch(/\bf16\b/);
      expect(convSource(v).enables ?? []).not.toContain('f16');
      await checkShader(convSource(v, 'float16'));
    }
  });
});

describe.each(E.allVariants('conv'))(suite('conv2d with float16 storage, %s kernels'), (kernel) => {
  const run = test.runIf(half && supported.includes(kernel));
  const cs = kernel === 'quad' ? [cases[0], cases[1], cases[2], cases[5]] : cases;
  run.each(cs.map((c) => [name(c), c] as const))('%s: forward, input and weight gradient', async (_n, c) => {
    forceConvKernel(kernel);
    const [N, Cin, H, W, Cout, KH, KW, stride, padding] = c;
    const o = { stride, padding };
    const x = h(randND([N, Cin, H, W], 1));
    const w = randND([Cout, Cin, KH, KW], 2);
    const b = randND([Cout], 3);
    const [xt, wt, bt] = [t16(x), toTensor(w), toTensor(b)];
    const y = conv2dForwardRaw(xt, wt, { ...o, bias: bt });
    expectHalf(y, await toND(y), C.conv2d(x, w, b, o), 'forward');
    const dy = h(randND([...y.shape], 4));
    const ref = C.conv2dGrads(x, w, dy, o);
    const dyt = t16(dy);
    const dx = conv2dInputGradRaw(dyt, wt, x.shape, o);
    expectHalf(dx, await toND(dx), ref.dx, 'input gradient');
    const db = E.full([Cout], 7);
    const dw = conv2dWeightGradRaw(xt, dyt, w.shape, { ...o, biasOut: db });
    expect(dw.dtype).toBe('float32');
    expectClose(await toND(dw), ref.dw, { what: 'weight gradient', atol: 1e-4 });
    expectClose(await toND(db), ref.db, { what: 'bias gradient', atol: 1e-4 });
    const db2 = conv2dBiasGradRaw(dyt);
    expect(db2.dtype).toBe('float32');
    expectClose(await toND(db2), ref.db, { what: 'bias gradient by sum', atol: 1e-4 });
    for (const t of [xt, wt, bt, y, dyt, dx, db, dw, db2]) t.dispose();
  });

  run('float16 channel views at odd offsets: the prologue, x and y in one buffer, the mask, accumulation', async () => {
    forceConvKernel(kernel);
    // Odd planes (7 x 5): the views start at odd element offsets (halves inside a 32-bit word).
    const [N, C0, G, H, W] = [3, 5, 4, 7, 5];
    const o = { stride: 1, padding: 1 };
    // One float16 block buffer [N, C0 + G + 2, H, W]: the conv reads channels [1, C0 + 1) and writes [C0 + 1, C0 + 1 + G).
    const Ctot = C0 + G + 2;
    const big = h(randND([N, Ctot, H, W], 5));
    const w = randND([G, C0, 3, 3], 6);
    const scale = randND([C0], 7, 0.5, 1.5);
    const shift = randND([C0], 8, -0.5, 0.5);
    const x = R.slice(big, 1, 1, C0 + 1);
    const pro = { scale, shift };
    const bigT = t16(big);
    const [wt, st, ht] = [toTensor(w), toTensor(scale), toTensor(shift)];
    const xv = E.slice(bigT, 1, 1, C0 + 1);
    const yv = E.slice(bigT, 1, C0 + 1, C0 + 1 + G);
    conv2dForwardRaw(xv, wt, { ...o, prologue: { scale: st, shift: ht }, out: yv });
    const got = await toND(bigT);
    expectHalf(bigT, R.slice(got, 1, C0 + 1, C0 + 1 + G), C.conv2d(x, w, null, { ...o, ...pro }), 'forward into a channel slice of its input buffer');
    expectClose(R.slice(got, 1, 0, C0 + 1), R.slice(big, 1, 0, C0 + 1), { what: 'channels before the slice untouched', rtol: 0, atol: 0 });
    expectClose(R.slice(got, 1, C0 + 1 + G, Ctot), R.slice(big, 1, C0 + 1 + G, Ctot), { what: 'channels after the slice untouched', rtol: 0, atol: 0 });

    // Input gradient: dy is a channel slice of a float16 gradient buffer, dx is added (masked) into channels [1, C0 + 1).
    const gbig = h(randND([N, Ctot, H, W], 9));
    const gT = t16(gbig);
    const dy = R.slice(gbig, 1, C0 + 1, C0 + 1 + G);
    const ref = C.conv2dGrads(x, w, dy, { ...o, ...pro });
    conv2dInputGradRaw(E.slice(gT, 1, C0 + 1, C0 + 1 + G), wt, [N, C0, H, W], {
      ...o, mask: { x: xv, scale: st, shift: ht }, out: E.slice(gT, 1, 1, C0 + 1), accumulate: true,
    });
    const before = R.slice(gbig, 1, 1, C0 + 1);
    const dxRef = R.nd(before.shape, before.data.map((v, i) => {
      const c = Math.floor(i / (H * W)) % C0;
      return x.data[i] * scale.data[c] + shift.data[c] > 0 ? v + ref.dx.data[i] : v;
    }));
    const gGot = await toND(gT);
    expectHalf(gT, R.slice(gGot, 1, 1, C0 + 1), dxRef, 'masked input gradient added into a channel slice');
    expectClose(R.slice(gGot, 1, 0, 1), R.slice(gbig, 1, 0, 1), { what: 'gradient channel 0 untouched', rtol: 0, atol: 0 });
    expectClose(R.slice(gGot, 1, C0 + 1, Ctot), R.slice(gbig, 1, C0 + 1, Ctot), { what: 'gradient channels past the slice untouched', rtol: 0, atol: 0 });

    // Weight gradient through the prologue, from float16 views, written and then accumulated (float32).
    const g2 = t16(gbig);
    const dyv = E.slice(g2, 1, C0 + 1, C0 + 1 + G);
    const dw = conv2dWeightGradRaw(xv, dyv, w.shape, { ...o, prologue: { scale: st, shift: ht } });
    expectClose(await toND(dw), ref.dw, { what: 'weight gradient with the prologue', atol: 1e-4 });
    conv2dWeightGradRaw(xv, dyv, w.shape, { ...o, prologue: { scale: st, shift: ht }, out: dw, accumulate: true });
    expectClose(await toND(dw), R.map(ref.dw, (v) => 2 * v), { what: 'accumulated weight gradient', atol: 2e-4 });
    for (const t of [bigT, wt, st, ht, gT, g2, dw]) t.dispose();
  });

});

// The roles' storage types are independent of the variant: mixed calls on a register-tile variant (the
// heuristic one) and a workgroup-memory one (its own loads) suffice (each combination is a compile).
const mixedKernels = [E.heuristicVariant('conv'), 'wg32x32' as const].filter((k) => supported.includes(k));
describe.skipIf(!half)(suite('conv2d mixing float16 and float32'), () => {
  test.each(mixedKernels)('in one call, %s kernels', async (kernel) => {
    forceConvKernel(kernel);
    const o = { stride: 1, padding: 1 };
    const [N, Cin, H, W, Cout] = [2, 6, 5, 7, 9];
    const x = h(randND([N, Cin, H, W], 11));
    const w = randND([Cout, Cin, 3, 3], 12);
    const dy = h(randND([N, Cout, H, W], 13));
    const ref = C.conv2dGrads(x, w, dy, o);
    const [x16, x32, dy16, dy32, wt] = [t16(x), toTensor(x), t16(dy), toTensor(dy), toTensor(w)];
    // Forward: float16 x into a float32 out, float32 x into a float16 out (and by the dtype option).
    const yRef = C.conv2d(x, w, null, o);
    const y32 = conv2dForwardRaw(x16, wt, { ...o, out: E.empty([N, Cout, H, W]) });
    expect(y32.dtype).toBe('float32');
    expectClose(await toND(y32), yRef, { what: 'float16 x, float32 y' });
    const y16 = conv2dForwardRaw(x32, wt, { ...o, dtype: 'float16' });
    expectHalf(y16, await toND(y16), yRef, 'float32 x, float16 y');
    expect(conv2dForwardRaw(x16, wt, { ...o, dtype: 'float32' }).dtype).toBe('float32');
    // Input gradient: float32 dy into float16 dx (masked by float16 x), float16 dy accumulated into float32 dx.
    const mask = { scale: E.full([Cin], 1), shift: E.full([Cin], 0) };
    const dxMasked = R.nd(x.shape, ref.dx.data.map((v, i) => (x.data[i] > 0 ? v : 0)));
    const dx16 = conv2dInputGradRaw(dy32, wt, x.shape, { ...o, mask: { x: x16, ...mask }, dtype: 'float16' });
    expectHalf(dx16, await toND(dx16), dxMasked, 'float32 dy, float16 dx, float16 mask');
    const dx32 = E.full([N, Cin, H, W], 1);
    conv2dInputGradRaw(dy16, wt, x.shape, { ...o, mask: { x: x32, ...mask }, out: dx32, accumulate: true });
    expectClose(await toND(dx32), R.map(dxMasked, (v) => v + 1), { what: 'float16 dy added into a float32 dx' });
    // Weight gradient: each of x and dy float16 while the other is float32.
    for (const [xt, dyt] of [[x16, dy32], [x32, dy16]]) {
      const db = E.empty([Cout]);
      const dw = conv2dWeightGradRaw(xt, dyt, w.shape, { ...o, biasOut: db });
      expectClose(await toND(dw), ref.dw, { what: `weight gradient, x ${xt.dtype}, dy ${dyt.dtype}`, atol: 1e-4 });
      expectClose(await toND(db), ref.db, { what: `bias gradient, x ${xt.dtype}, dy ${dyt.dtype}`, atol: 1e-4 });
    }
    // The stem's input gradient (by stride phase): a float16 dy view added into a float32 dx, masked by a
    // float16 x view at an odd element offset, and a float32 dy into a new float16 dx.
    const o2 = { stride: 2, padding: 3 };
    const xb = h(randND([N, 4, 9, 11], 14));
    const xs = R.slice(xb, 1, 1, 4);
    const ws = randND([4, 3, 7, 7], 15);
    const dyb = h(randND([N, 5, 5, 6], 16));
    const dys = R.slice(dyb, 1, 1, 5);
    const [xbT, dybT, wsT] = [t16(xb), t16(dyb), toTensor(ws)];
    const dxs = C.conv2dGrads(xs, ws, dys, o2).dx;
    const out = E.full([N, 3, 9, 11], 1);
    conv2dInputGradRaw(E.slice(dybT, 1, 1, 5), wsT, xs.shape, { ...o2, mask: { x: E.slice(xbT, 1, 1, 4), scale: E.full([3], 1), shift: E.full([3], 0) }, out, accumulate: true });
    expectClose(await toND(out), R.nd(xs.shape, dxs.data.map((v, i) => (xs.data[i] > 0 ? v : 0) + 1)), { what: 'stem: float16 dy view added into float32 dx' });
    const dx2 = conv2dInputGradRaw(toTensor(dys), wsT, xs.shape, { ...o2, dtype: 'float16' });
    expectHalf(dx2, await toND(dx2), dxs, 'stem: float32 dy, new float16 dx');
  });
});

describe.each(E.allVariants('conv'))(suite('conv2d float16 edge values, %s kernels'), (kernel) => {
  const run = test.runIf(half && supported.includes(kernel));
  run('float16 outputs: overflow is +-inf, NaN propagates', async () => {
    forceConvKernel(kernel);
    const o = { stride: 1, padding: 0 };
    // x = 30000 everywhere but one NaN; w = 1 and -1 filters: the 2x2 sums (120000) overflow to +-inf.
    const xa = R.nd([1, 2, 3, 3], new Array(18).fill(30000));
    xa.data[17] = NaN; // channel 1, pixel (2, 2): only the output at (1, 1) reads it
    const wa = R.nd([2, 2, 2, 2], [...new Array(8).fill(1), ...new Array(8).fill(-1)]);
    const [xt, wt] = [t16(xa), toTensor(wa)];
    const y = await conv2dForwardRaw(xt, wt, o).data();
    expect(Array.from(y)).toEqual([Infinity, Infinity, Infinity, NaN, -Infinity, -Infinity, -Infinity, NaN]);
    // The input gradient too: dy = 30000 summed over four taps.
    const dx = await conv2dInputGradRaw(t16(R.nd([1, 2, 2, 2], new Array(8).fill(30000))), toTensor(R.nd([2, 2, 2, 2], new Array(16).fill(1))), [1, 2, 3, 3], o).data();
    expect(Array.from(dx).slice(0, 9)).toEqual([60000, Infinity, 60000, Infinity, Infinity, Infinity, 60000, Infinity, 60000]);
    xt.dispose();
    wt.dispose();
  });
});

describe.skipIf(!half)(suite('the conv2d op on float16 x'), () => {
  test('y and dx are float16, dw and db float32, all close to the float32 op', async () => {
    const o = { stride: 2, padding: 1 };
    const x = h(randND([2, 5, 9, 8], 21));
    const w = randND([7, 5, 3, 3], 22);
    const b = randND([7], 23);
    const run = async (xt: E.Tensor) => {
      const [wt, bt] = [toTensor(w, true), toTensor(b, true)];
      xt.requiresGrad = true;
      const y = conv2d(xt, wt, bt, o);
      const r = toTensor(randND([...y.shape], 24));
      E.sum(E.mul(y.float(), r)).backward();
      return { y, dx: xt.grad!, dw: wt.grad!, db: bt.grad! };
    };
    const g16 = await run(t16(x));
    const g32 = await run(toTensor(x));
    expect([g16.y.dtype, g16.dx.dtype, g16.dw.dtype, g16.db.dtype]).toEqual(['float16', 'float16', 'float32', 'float32']);
    expectHalf(g16.y, await toND(g16.y), await toND(g32.y), 'y');
    // The float16 op's output gradient is rounded to float16 before the kernels see it.
    for (const k of ['dx', 'dw', 'db'] as const) {
      const ref = await toND(g32[k]);
      const max = ref.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(await toND(g16[k]), ref, { what: k, rtol: 2e-3, atol: 2e-3 * max });
    }
  });

  test('a float16 weight or bias is a clear error; so is a float16 weight-gradient output', () => {
    const x = E.zeros([1, 2, 4, 4]).half();
    const w = E.zeros([3, 2, 3, 3]);
    expect(() => conv2d(x, w.half())).toThrow(/conv2d: weight \[3, 2, 3, 3\] is float16, expected float32/);
    expect(() => conv2d(x, w, E.zeros([3]).half())).toThrow(/conv2d: bias \[3\] is float16, expected float32/);
    expect(() => conv2dWeightGradRaw(x, E.zeros([1, 3, 2, 2]), w.shape, { out: E.zeros([3, 2, 3, 3]).half() })).toThrow(
      /conv2d weight gradient: out \[3, 2, 3, 3\] is float16, expected float32/,
    );
    expect(() => conv2dForwardRaw(x, w, { out: E.zeros([1, 3, 2, 2]), dtype: 'float16' })).toThrow(/conv2d: dtype float16 asked for, but out is float32/);
  });

  test('float16 takes the same dispatches as float32', () => {
    const run = (dtype: E.DType) => {
      const [x, dy, w, ws] = [E.empty([2, 40, 6, 6], 'tensor', dtype), E.empty([2, 32, 3, 3], 'tensor', dtype), E.zeros([32, 40, 3, 3]), E.zeros([32, 3, 7, 7])];
      const before = E.dispatches();
      const y = conv2dForwardRaw(x, w, { padding: 1 });
      conv2dInputGradRaw(y, w, x.shape, { padding: 1 });
      conv2dWeightGradRaw(x, y, w.shape, { padding: 1 });
      conv2dInputGradRaw(dy, ws, [2, 3, 6, 6], { stride: 2, padding: 3 }); // by stride phase
      return E.dispatches() - before;
    };
    expect(run('float16')).toBe(run('float32'));
  });

  test.runIf(canProfile())('profiles name the storage types of a float16 conv, and none of a float32 one', async () => {
    const [w, x16, x32] = [E.zeros([4, 3, 3, 3]), E.empty([1, 3, 5, 5], 'tensor', 'float16'), E.zeros([1, 3, 5, 5])];
    startProfile();
    conv2dForwardRaw(x16, w);
    conv2dForwardRaw(x32, w);
    const names = (await stopProfile()).map((k) => k.kernel).sort();
    const v = E.heuristicVariant('conv');
    expect(names).toEqual([`conv2d[${v},G16.O32.X16]:conv2d_fwd`, `conv2d[${v}]:conv2d_fwd`].sort());
  });

  test("the tuner measures float16 shapes apart from float32 (keys and labels name the storage types)", async () => {
    E.setTuneStore(E.memoryTuneStore());
    E.resetTuning();
    E.setTuneMode('on');
    const x = randND([2, 8, 5, 5], 31);
    const w = randND([8, 8, 3, 3], 32);
    const [x16, wt] = [t16(h(x)), toTensor(w)];
    const y16 = conv2dForwardRaw(x16, wt, { padding: 1 });
    conv2dForwardRaw(toTensor(x), wt, { padding: 1 });
    // The call that queued the job still computed the right numbers.
    expectHalf(y16, await toND(y16), C.conv2d(h(x), w, null, { padding: 1 }), 'forward while tuning');
    await E.settleTuning();
    const recs = E.tuneRecords().filter((r) => r.family === 'conv');
    expect(recs.map((r) => r.key.endsWith('|G16.O32.X16'))).toEqual([true, false]);
    expect(recs[0].label).toMatch(/conv2d_fwd x\[2,8,5,5\] w\[8,8,3,3\] s1 G16\.O32\.X16/);
    // Every candidate ran on copies of the float16 arguments (none failed).
    for (const r of recs) expect(Object.values(r.ms).every(Number.isFinite), JSON.stringify(r.ms)).toBe(true);
    // The copies it measures on hold float16 where the arguments do (the module is chosen by them).
    const args = [t16(x), toTensor(x)];
    const seen: boolean[][] = [];
    selectVariant('conv', 'float16-copies', { buffers: args.map((t) => t.buffer), run: (_v, bs) => seen.push(bs.map((b) => b.half)), flops: 1 });
    await E.settleTuning();
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s).toEqual([true, false]);
    E.setTuneStore(null);
  });
});
