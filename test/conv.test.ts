import { afterEach, describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import {
  chooseConvKernel, conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, forceConvKernel, type ConvKernel,
} from '../engine/ops/conv.js';
import { expectClose, gradCheck, randND, toND, toTensor, useEngine } from './helpers.js';
import * as R from './reference/ndarray.js';
import * as C from './reference/conv.js';
import type { ND } from './reference/ndarray.js';

useEngine();
afterEach(() => forceConvKernel(null));

// Every kernel variant; the ones this adapter cannot run (engine/variants.ts) are reported as skipped.
await E.init();
const supported = E.supportedVariants('conv');

// [N, Cin, H, W, Cout, KH, KW, stride, padding]
type Case = [number, number, number, number, number, number, number, number, number];
const cases: Case[] = [
  [1, 3, 7, 9, 5, 3, 3, 1, 1], // odd sizes, 3 channels
  [5, 3, 9, 7, 33, 3, 3, 2, 1], // batch 5, stride 2 on odd sizes, 33 filters (two row tiles)
  [2, 23, 5, 5, 10, 1, 1, 1, 0], // 1x1
  [1, 33, 11, 13, 40, 3, 3, 2, 0], // no padding, stride 2
  [2, 3, 13, 11, 9, 7, 7, 2, 3], // the stem's 7x7/2 pad 3
  [3, 4, 1, 1, 6, 1, 1, 1, 0], // 1x1 spatial input
  [2, 5, 1, 1, 7, 3, 3, 1, 1], // 1x1 spatial input, 3x3 pad 1
  [2, 6, 7, 8, 4, 2, 3, 3, 1], // stride 3, non-square kernel
  [2, 6, 5, 7, 37, 1, 1, 2, 1], // 1x1 with stride 2 and padding (the 1x1 loops' bounds), two row tiles
  [3, 1, 6, 5, 3, 3, 3, 2, 1], // Cin = 1 (K = 9: less than one BK chunk of the wg tiles)
  [2, 72, 9, 10, 67, 3, 3, 1, 1], // every GEMM more than one block of the wg tiles (64 rows, 128 columns) each way; K = 648 (vec4 weights)
  // Stride 1 with widths a multiple of 4: the sliding loops (forward: OW % 4 == 0, input gradient:
  // W % 4 == 0), with padding 1, 0 (forward OW = 2: the general loop; input gradient still slides) and 2,
  // and a non-square kernel.
  [2, 7, 5, 8, 9, 3, 3, 1, 1],
  [3, 5, 6, 4, 6, 3, 3, 1, 0],
  [1, 4, 7, 12, 5, 5, 5, 1, 2],
  [2, 3, 4, 8, 4, 2, 3, 1, 1],
  // GEMMs of 260 columns or more (column counts not multiples of 8), where subgroup-wide runs 32x8
  // tiles (narrower GEMMs get their 32x4 tiles; 16-lane subgroups need twice the columns of 8-lane
  // ones): width 16 (the two groups of 4 slide as one row of 8), 12 and 4 (each group slides on its own;
  // at 4 the second group is the next row), the forward without padding (OW 14: the general loop; the
  // input gradient still slides), 1x1, and stride 2 with two row tiles.
  [3, 5, 7, 16, 9, 3, 3, 1, 1],
  [5, 4, 6, 12, 7, 3, 3, 1, 1],
  [9, 6, 8, 4, 5, 3, 3, 1, 1],
  [3, 5, 7, 16, 6, 3, 3, 1, 0],
  [3, 9, 11, 9, 6, 1, 1, 1, 0],
  [4, 3, 17, 15, 37, 3, 3, 2, 1],
  // Workgroups whose columns all lie in one image row (N * width a multiple of a small workgroup's
  // columns: 64 for 8 lanes of 32x8 tiles, 32 for 32x4, 128 for 16 lanes of 32x8) skip the kernel rows
  // that fall on padding, one (padding 1) or two (5x5, padding 2) at the top and bottom rows.
  [4, 5, 6, 16, 7, 3, 3, 1, 1],
  [2, 4, 3, 16, 5, 3, 3, 1, 1],
  [4, 3, 6, 16, 5, 5, 5, 1, 2],
  [8, 3, 4, 16, 5, 3, 3, 1, 1],
];
const name = (c: Case) => `x [${c.slice(0, 4)}], w [${c[4]}, ${c[1]}, ${c[5]}, ${c[6]}], stride ${c[7]}, padding ${c[8]}`;

// A larger tensor whose channels [at, at + C) are the view under test.
function channelView(big: E.Tensor, at: number, C: number): E.Tensor {
  return E.slice(big, 1, at, at + C);
}

describe.each(E.allVariants('conv'))('conv2d, %s kernels', (kernel) => {
  const run = test.runIf(supported.includes(kernel));
  const cs = kernel === 'quad' ? [...cases.slice(0, 3), cases[8], cases[11]] : cases;
  run.each(cs.map((c) => [name(c), c] as const))('%s: forward, input and weight gradient', async (_n, c) => {
    forceConvKernel(kernel);
    const [N, Cin, H, W, Cout, KH, KW, stride, padding] = c;
    const o = { stride, padding };
    const x = randND([N, Cin, H, W], 1);
    const w = randND([Cout, Cin, KH, KW], 2);
    const b = randND([Cout], 3);
    const [xt, wt, bt] = [toTensor(x), toTensor(w), toTensor(b)];
    const y = conv2dForwardRaw(xt, wt, { ...o, bias: bt });
    expectClose(await toND(y), C.conv2d(x, w, b, o), { what: 'forward' });
    const dy = randND([...y.shape], 4);
    const ref = C.conv2dGrads(x, w, dy, o);
    const dyt = toTensor(dy);
    expectClose(await toND(conv2dInputGradRaw(dyt, wt, x.shape, o)), ref.dx, { what: 'input gradient' });
    expectClose(await toND(conv2dWeightGradRaw(xt, dyt, w.shape, o)), ref.dw, { what: 'weight gradient', atol: 1e-4 });
    // The bias gradient as the weight-gradient GEMM's extra column (with and without split-K), then added.
    const db = E.full([Cout], 7);
    const dw = conv2dWeightGradRaw(xt, dyt, w.shape, { ...o, biasOut: db });
    expectClose(await toND(dw), ref.dw, { what: 'weight gradient beside the bias gradient', atol: 1e-4 });
    expectClose(await toND(db), ref.db, { what: 'bias gradient', atol: 1e-4 });
    conv2dWeightGradRaw(xt, dyt, w.shape, { ...o, biasOut: db, out: dw, accumulate: true });
    expectClose(await toND(db), R.map(ref.db, (v) => 2 * v), { what: 'accumulated bias gradient', atol: 2e-4 });
    expectClose(await toND(dw), R.map(ref.dw, (v) => 2 * v), { what: 'accumulated weight gradient', atol: 2e-4 });
    for (const t of [xt, wt, bt, y, dyt, db, dw]) t.dispose();
  });

  // (7 images of 9 x 16: 1008 columns, subgroup-wide's 32x8 tiles.)
  run.each([[3, 7, 6], [3, 5, 8], [7, 9, 16]])('channel views in and out, the fused BN-ReLU prologue, the mask, accumulation, one shared buffer (%i images of %i x %i)', async (N, H, W) => {
    forceConvKernel(kernel);
    const [C0, G] = [5, 4];
    const o = { stride: 1, padding: 1 };
    // One block buffer [N, C0 + G + 2, H, W]: the conv reads channels [0, C0) and writes [C0 + 1, C0 + 1 + G).
    const Ctot = C0 + G + 2;
    const big = randND([N, Ctot, H, W], 5);
    const w = randND([G, C0, 3, 3], 6);
    const scale = randND([C0], 7, 0.5, 1.5);
    const shift = randND([C0], 8, -0.5, 0.5);
    const x = R.slice(big, 1, 0, C0);
    const pro = { scale, shift };
    const bigT = toTensor(big);
    const [wt, st, ht] = [toTensor(w), toTensor(scale), toTensor(shift)];
    const xv = channelView(bigT, 0, C0);
    const yv = channelView(bigT, C0 + 1, G);
    conv2dForwardRaw(xv, wt, { ...o, prologue: { scale: st, shift: ht }, out: yv });
    const yRef = C.conv2d(x, w, null, { ...o, ...pro });
    const got = await toND(bigT);
    expectClose(R.slice(got, 1, C0 + 1, C0 + 1 + G), yRef, { what: 'forward into a channel slice of its input buffer' });
    expectClose(R.slice(got, 1, 0, C0 + 1), R.slice(big, 1, 0, C0 + 1), { what: 'channels before the slice untouched' });
    expectClose(R.slice(got, 1, C0 + 1 + G, Ctot), R.slice(big, 1, C0 + 1 + G, Ctot), { what: 'channels after the slice untouched' });

    // Input gradient: dy is a channel slice of a gradient buffer, dx is added (masked) into its prefix.
    const gbig = randND([N, Ctot, H, W], 9);
    const gT = toTensor(gbig);
    const dy = R.slice(gbig, 1, C0 + 1, C0 + 1 + G);
    const ref = C.conv2dGrads(x, w, dy, { ...o, ...pro });
    conv2dInputGradRaw(channelView(gT, C0 + 1, G), wt, [N, C0, H, W], {
      ...o, mask: { x: xv, scale: st, shift: ht }, out: channelView(gT, 0, C0), accumulate: true,
    });
    const dxRef = R.zip(R.zip(x, R.slice(gbig, 1, 0, C0), () => 0), ref.dx, () => 0);
    dxRef.data.forEach((_, i) => {
      const c = Math.floor(i / (H * W)) % C0;
      const pre = x.data[i] * scale.data[c] + shift.data[c];
      dxRef.data[i] = R.slice(gbig, 1, 0, C0).data[i] + (pre > 0 ? ref.dx.data[i] : 0);
    });
    const gGot = await toND(gT);
    expectClose(R.slice(gGot, 1, 0, C0), dxRef, { what: 'masked input gradient added into a channel prefix' });
    expectClose(R.slice(gGot, 1, C0, Ctot), R.slice(gbig, 1, C0, Ctot), { what: 'gradient channels past the prefix untouched' });

    // Weight gradient through the prologue, from views, written and then accumulated.
    const dw = conv2dWeightGradRaw(xv, channelView(toTensor(gbig), C0 + 1, G), w.shape, { ...o, prologue: { scale: st, shift: ht } });
    expectClose(await toND(dw), ref.dw, { what: 'weight gradient with the prologue', atol: 1e-4 });
    conv2dWeightGradRaw(xv, channelView(toTensor(gbig), C0 + 1, G), w.shape, { ...o, prologue: { scale: st, shift: ht }, out: dw, accumulate: true });
    expectClose(await toND(dw), R.map(ref.dw, (v) => 2 * v), { what: 'accumulated weight gradient', atol: 2e-4 });
  });

  run('the prologue propagates NaN as relu does; the mask is relu\'s gradient there (0)', async () => {
    forceConvKernel(kernel);
    const o = { stride: 1, padding: 1 };
    const x = toTensor(randND([2, 3, 5, 4], 10));
    const w = toTensor(randND([6, 3, 3, 3], 11));
    // Channel 1's BN-ReLU gives NaN everywhere (a NaN BN weight makes scale and shift NaN).
    const pro = { scale: E.tensor([1, NaN, 1]), shift: E.tensor([0, NaN, 0]) };
    const y = await conv2dForwardRaw(x, w, { ...o, prologue: pro }).data();
    expect(Array.from(y).every(Number.isNaN), 'forward: every output sums channel 1').toBe(true);
    const dw = await conv2dWeightGradRaw(x, toTensor(randND([2, 6, 5, 4], 12)), [6, 3, 3, 3], { ...o, prologue: pro }).data();
    dw.forEach((v, i) => expect(Number.isNaN(v), `dw element ${i}`).toBe(Math.floor(i / 9) % 3 === 1));
    const dx = await conv2dInputGradRaw(toTensor(randND([2, 6, 5, 4], 12)), w, x.shape, { ...o, mask: { x, ...pro } }).data();
    dx.forEach((v, i) => (Math.floor(i / 20) % 3 === 1 ? expect(v, `dx element ${i}`).toBe(0) : expect(Number.isFinite(v)).toBe(true)));
  });
});

// Input gradients with few input channels (<= 4) take the stride-phase gather (conv2d_dgrad_phase) on
// every adapter; these cases walk its edges: stride 1, 2 and 3, phases with no pixels, runs of 16 that
// end early, groups of phase rows that end early, 1-pixel images, padding larger than the stride.
describe('conv2d input gradient by stride phase (Cin <= 4)', () => {
  // [N, Cin, H, W, Cout, KH, KW, stride, padding]
  const phaseCases: Case[] = [
    [2, 1, 64, 64, 8, 7, 7, 2, 3], // the stem (fewer filters): several runs of 16 per phase row
    [3, 1, 9, 37, 5, 7, 7, 2, 3], // odd sizes, a run that ends early
    [2, 2, 11, 10, 3, 3, 3, 3, 1], // stride 3 (nine phases, some rows with no hit)
    [1, 4, 8, 7, 6, 2, 3, 3, 2], // stride 3, padding 2, non-square kernel
    [2, 3, 1, 1, 4, 3, 3, 2, 1], // 1-pixel images
    [1, 1, 2, 2, 2, 1, 1, 3, 0], // 1x1 kernel, stride larger than the image: phases without pixels
    [2, 3, 5, 6, 4, 3, 3, 1, 1], // stride 1: one phase
    [2, 2, 7, 18, 3, 5, 4, 1, 2], // 4 phase rows per invocation: 7 rows leave a last group of 3
    [1, 1, 13, 5, 2, 4, 4, 2, 0], // stride 2, no padding: groups of 4 rows end with 2 and 3 rows, dy rows past OH
  ];
  test.each(phaseCases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const [N, Cin, H, W, Cout, KH, KW, stride, padding] = c;
    const o = { stride, padding };
    const x = randND([N, Cin, H, W], 31);
    const w = randND([Cout, Cin, KH, KW], 32);
    const y = C.conv2d(x, w, null, o);
    const dy = randND([...y.shape], 33);
    const [wt, dyt] = [toTensor(w), toTensor(dy)];
    const dx = conv2dInputGradRaw(dyt, wt, x.shape, o);
    expectClose(await toND(dx), C.conv2dGrads(x, w, dy, o).dx, { what: 'input gradient' });
    for (const t of [wt, dyt, dx]) t.dispose();
  });

  test('channel views, the mask, accumulation, and dy and dx in one buffer', async () => {
    const [N, C0, G, H, W] = [2, 3, 4, 9, 19];
    const mask = { scale: randND([C0], 34, 0.5, 1.5), shift: randND([C0], 35, -0.5, 0.5) };
    const x = randND([N, C0, H, W], 36);
    const xBig = randND([N, C0 + 2, H, W], 37);
    xBig.data.set(R.cat([R.slice(xBig, 1, 0, 1), x, R.slice(xBig, 1, C0 + 1, C0 + 2)], 1).data);
    const xT = toTensor(xBig);
    const xv = channelView(xT, 1, C0);
    const [st, ht] = [toTensor(mask.scale), toTensor(mask.shift)];
    // Masked dx of x' = x * scale + shift > 0, added to what `before` holds.
    const expected = (before: ND, dx: ND) =>
      R.zip(before, dx, (b, d) => b + d).data.map((v, i) => {
        const c = Math.floor(i / (H * W)) % C0;
        return x.data[i] * mask.scale.data[c] + mask.shift.data[c] > 0 ? v : before.data[i];
      });
    for (const [stride, padding, KH] of [[2, 3, 7], [1, 1, 3]] as const) {
      const o = { stride, padding };
      const w = randND([G, C0, KH, KH], 38);
      const [OH, OW] = [Math.floor((H + 2 * padding - KH) / stride) + 1, Math.floor((W + 2 * padding - KH) / stride) + 1];
      const wt = toTensor(w);
      if (stride === 1) {
        // The dense block's layout: dy is channels [C0, C0 + G) of the buffer whose prefix receives dx.
        const gbig = randND([N, C0 + G, H, W], 39);
        const gT = toTensor(gbig);
        const dy = R.slice(gbig, 1, C0, C0 + G);
        conv2dInputGradRaw(channelView(gT, C0, G), wt, [N, C0, H, W], { ...o, mask: { x: xv, scale: st, shift: ht }, out: channelView(gT, 0, C0), accumulate: true });
        const got = await toND(gT);
        const want = expected(R.slice(gbig, 1, 0, C0), C.conv2dGrads(x, w, dy, o).dx);
        expectClose(R.slice(got, 1, 0, C0), R.nd([N, C0, H, W], want), { what: 'dx added into the prefix of the dy buffer' });
        expectClose(R.slice(got, 1, C0, C0 + G), dy, { what: 'dy untouched' });
        gT.dispose();
      } else {
        const dyBig = randND([N, G + 1, OH, OW], 40);
        const dy = R.slice(dyBig, 1, 1, G + 1);
        const outBig = randND([N, C0 + 1, H, W], 41);
        const [dyT, outT] = [toTensor(dyBig), toTensor(outBig)];
        conv2dInputGradRaw(channelView(dyT, 1, G), wt, [N, C0, H, W], { ...o, mask: { x: xv, scale: st, shift: ht }, out: channelView(outT, 1, C0), accumulate: true });
        const got = await toND(outT);
        const want = expected(R.slice(outBig, 1, 1, C0 + 1), C.conv2dGrads(x, w, dy, o).dx);
        expectClose(R.slice(got, 1, 1, C0 + 1), R.nd([N, C0, H, W], want), { what: 'masked dx added into a channel view' });
        expectClose(R.slice(got, 1, 0, 1), R.slice(outBig, 1, 0, 1), { what: 'channel before the view untouched' });
        dyT.dispose();
        outT.dispose();
      }
      wt.dispose();
    }
  });
});

describe('conv2d op', () => {
  test('the automatic kernel choice follows the adapter', () => {
    const f = { subgroups: true, subgroupMinSize: 8, subgroupMaxSize: 8, timestampQuery: false, shaderF16: false };
    expect(chooseConvKernel(f)).toBe('subgroup');
    expect(chooseConvKernel({ ...f, subgroupMinSize: 4, subgroupMaxSize: 4 })).toBe('quad');
    expect(chooseConvKernel({ ...f, subgroups: false })).toBe('tiled');
    // The workgroup-memory tiles are never the heuristic choice (the tuner may pick them), on any adapter.
    for (const isFallbackAdapter of [true, false]) {
      expect(E.heuristicVariant('conv', { features: { ...f, subgroups: false }, isFallbackAdapter })).toBe('tiled');
    }
  });

  test('the workgroup-memory variants need their invocations and workgroup memory from the adapter', () => {
    const features = { subgroups: false, subgroupMinSize: 0, subgroupMaxSize: 0, timestampQuery: false, shaderF16: false };
    // WebGPU's default limits (256 invocations, 16 KiB) run them all.
    expect(E.supportedVariants('conv', { features })).toEqual(['tiled', 'wg32x32', 'wg64x64', 'wg32x128', 'wg32x32k2', 'wg32x32k4']);
    expect(() => E.checkRunnable('conv', 'wg64x64', { features, limits: { maxComputeInvocationsPerWorkgroup: 128 } })).toThrow(
      /conv kernel variant 'wg64x64' cannot run on this adapter: it needs 256 invocations per workgroup \(this adapter: 128\)/,
    );
    // wg64x64 stages 4 * 16 * (64 + 64) = 8192 bytes.
    expect(E.missingFor('conv', 'wg64x64', { features, limits: { maxComputeWorkgroupStorageSize: 8191 } })).toMatch(/needs 8192 bytes of workgroup memory \(this adapter: 8191\)/);
    expect(E.supportedVariants('conv', { features, limits: { maxComputeInvocationsPerWorkgroup: 64, maxComputeWorkgroupStorageSize: 4096 } })).toEqual(['tiled', 'wg32x32']);
    // K slices: wg32x32k4 stages 4 * 16 * (32 + 32) = 4096 bytes, but its other three slices' tiles take
    // 4 * 3 * 32 * 32 = 12288 (the same memory, after the last chunk).
    expect(E.missingFor('conv', 'wg32x32k4', { features, limits: { maxComputeWorkgroupStorageSize: 12287 } })).toMatch(/needs 12288 bytes of workgroup memory/);
    expect(E.missingFor('conv', 'wg32x32k2', { features, limits: { maxComputeInvocationsPerWorkgroup: 64 } })).toMatch(/needs 128 invocations per workgroup/);
  });

  // The k* tiles split K among slices of one workgroup: the same sums as wg32x32's in another order.
  // K is not a multiple of their 16-k chunks here (forward 63, input gradient 333, weight gradient 24 and
  // 18 in its four batch splits), and the GEMMs have two row blocks and two or more column blocks.
  for (const k of ['wg32x32k2', 'wg32x32k4'] as const) test.skipIf(!supported.includes(k) || !supported.includes('wg32x32'))(`${k} (K split inside the workgroup) gives wg32x32's results within float32 rounding`, async () => {
    const o = { stride: 1, padding: 1 };
    const [x, w, b, dy] = [randND([3, 7, 5, 6], 51), randND([37, 7, 3, 3], 52), randND([37], 53), randND([3, 37, 5, 6], 54)];
    const pro = { scale: toTensor(randND([7], 55, 0.5, 1.5)), shift: toTensor(randND([7], 56, -0.5, 0.5)) };
    const [xt, wt, bt, dyt] = [toTensor(x), toTensor(w), toTensor(b), toTensor(dy)];
    const results = async (kernel: ConvKernel) => {
      forceConvKernel(kernel);
      const db = E.zeros([37]);
      const out = [
        conv2dForwardRaw(xt, wt, { ...o, bias: bt, prologue: pro }),
        conv2dInputGradRaw(dyt, wt, x.shape, { ...o, mask: { x: xt, ...pro } }),
        conv2dWeightGradRaw(xt, dyt, w.shape, { ...o, prologue: pro, biasOut: db }),
        db,
      ];
      const nd = await Promise.all(out.map(toND));
      out.forEach((t) => t.dispose());
      return nd;
    };
    const [one, split] = [await results('wg32x32'), await results(k)];
    ['forward', 'input gradient', 'weight gradient', 'bias gradient'].forEach((what, i) => {
      // Rounding of sums of at most 333 products of numbers below 2 in magnitude.
      expectClose(split[i], one[i], { what, rtol: 1e-5, atol: 1e-5 });
    });
    for (const t of [xt, wt, bt, dyt, pro.scale, pro.shift]) t.dispose();
  });

  test.each([
    [[2, 3, 6, 5], [4, 3, 3, 3], 1, 1, true],
    [[1, 2, 7, 7], [3, 2, 3, 3], 2, 0, false],
  ] as const)('gradients of x %j, w %j (stride %i, padding %i, bias %s) against finite differences', async (xs, ws, stride, padding, bias) => {
    const o = { stride, padding };
    const inputs = [randND([...xs], 11), randND([...ws], 12), ...(bias ? [randND([ws[0]], 13)] : [])];
    await gradCheck({
      inputs,
      gpu: ([x, w, b]) => conv2d(x, w, b, o),
      ref: ([x, w, b]) => C.conv2d(x, w, b ?? null, o),
    });
  });

  test('a strided (non-contiguous) x and weight are copied, gradients still flow', async () => {
    const x = randND([2, 3, 5, 4], 21);
    const w = randND([3, 4, 3, 3], 22); // permuted below to [4, 3, 3, 3]
    const xt = toTensor(R.transpose(x, [0, 1, 3, 2]), true); // [2, 3, 4, 5], made non-contiguous by permute
    const xv = E.permute(xt, [0, 1, 3, 2]);
    const wt = toTensor(w, true);
    const wv = E.permute(wt, [1, 0, 2, 3]);
    const y = conv2d(xv, wv, null, { padding: 1 });
    const wRef = R.transpose(w, [1, 0, 2, 3]);
    expectClose(await toND(y), C.conv2d(x, wRef, null, { padding: 1 }));
    E.sum(y).backward();
    const g = C.conv2dGrads(x, wRef, R.map(C.conv2d(x, wRef, null, { padding: 1 }), () => 1), { padding: 1 });
    expectClose(await toND(xt.grad!), R.transpose(g.dx, [0, 1, 3, 2]), { what: 'dx' });
    expectClose(await toND(wt.grad!), R.transpose(g.dw, [1, 0, 2, 3]), { what: 'dw', atol: 1e-4 });
  });

  test('bad input: errors name the op and the shapes', () => {
    const x = E.zeros([2, 3, 5, 5]);
    const w = E.zeros([4, 3, 3, 3]);
    expect(() => conv2d(x, E.zeros([4, 2, 3, 3]))).toThrow(/conv2d: x \[2, 3, 5, 5\] has 3 channels but the weight \[4, 2, 3, 3\] expects 2/);
    expect(() => conv2d(x, E.zeros([4, 3, 8, 8]), null, { padding: 1 })).toThrow(/conv2d: kernel 8x8 .*\[4, 3, 8, 8\].*larger than the padded input 7x7/);
    expect(() => conv2d(x, w, null, { stride: 0 })).toThrow(/conv2d: stride must be an integer >= 1, got 0/);
    expect(() => conv2d(x, w, null, { stride: -1 })).toThrow(/stride/);
    expect(() => conv2d(x, w, null, { padding: -1 })).toThrow(/conv2d: padding must be an integer >= 0/);
    expect(() => conv2d(E.zeros([3, 5, 5]), w)).toThrow(/conv2d: x must have 4 dimensions, got shape \[3, 5, 5\]/);
    expect(() => conv2d(x, E.zeros([4, 3, 3]))).toThrow(/conv2d: weight must have 4 dimensions, got shape \[4, 3, 3\]/);
    expect(() => conv2d(x, w, E.zeros([5]))).toThrow(/conv2d: bias has shape \[5\], expected \[4\]/);
    expect(() => conv2dForwardRaw(x, w, { out: E.zeros([2, 4, 4, 4]) })).toThrow(/conv2d: out has shape \[2, 4, 4, 4\], expected \[2, 4, 3, 3\]/);
    expect(() => conv2dInputGradRaw(E.zeros([2, 4, 2, 3]), w, [2, 3, 5, 5])).toThrow(/conv2d input gradient: dy has shape \[2, 4, 2, 3\], expected \[2, 4, 3, 3\]/);
    expect(() => conv2dWeightGradRaw(x, E.zeros([2, 4, 3, 3]), [4, 2, 3, 3])).toThrow(/conv2d weight gradient: x \[2, 3, 5, 5\] has 3 channels/);
    expect(() => conv2dForwardRaw(x, w, { prologue: { scale: E.zeros([2]), shift: E.zeros([3]) } })).toThrow(/prologue scale has shape \[2\], expected \[3\]/);
  });
});
