// In-page kernel self-checks: a few ops on the page's WebGPU device against the plain-loop CPU reference
// that every Node test uses (bench/reference/, float64). Each kernel variant the adapter can run is
// checked (the subgroup/quad kernels and the ones without subgroups), then the automatic choice is restored.

import * as E from '../../engine/index.js';
import { matmul as refMatmul, nd, type ND } from '../reference/ndarray.js';
import { conv2d as refConv, conv2dGrads } from '../reference/conv.js';
import { batchNormTrain, crossEntropy as refCrossEntropy, maxPool } from '../reference/layers.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  /** The largest |gpu - cpu| and the largest excess over atol + rtol * |cpu| (<= 0 passes). */
  maxAbsErr: number;
  worstExcess: number;
  elements: number;
  ms: number;
  error?: string;
}

function rand(shape: number[], seed: number, low = -1, high = 1): ND {
  const g = new E.Generator(seed);
  const a = nd(shape);
  for (let i = 0; i < a.data.length; i++) a.data[i] = low + (high - low) * g.uniform();
  return a;
}

const T = (a: ND, requiresGrad = false) => {
  const t = E.tensor(Float32Array.from(a.data), a.shape);
  t.requiresGrad = requiresGrad;
  return t;
};

function compare(got: Float32Array, want: ND, rtol: number, atol: number): Pick<CheckResult, 'ok' | 'maxAbsErr' | 'worstExcess' | 'elements'> {
  if (got.length !== want.data.length) return { ok: false, maxAbsErr: Infinity, worstExcess: Infinity, elements: got.length };
  let maxAbsErr = 0;
  let worstExcess = -Infinity;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want.data[i]);
    const excess = Number.isFinite(err) ? err - (atol + rtol * Math.abs(want.data[i])) : Infinity;
    maxAbsErr = Math.max(maxAbsErr, Number.isNaN(err) ? Infinity : err);
    worstExcess = Math.max(worstExcess, excess);
  }
  return { ok: worstExcess <= 0, maxAbsErr, worstExcess, elements: got.length };
}

type Case = { name: string; run: () => Promise<Array<[Float32Array, ND]>>; rtol?: number; atol?: number };

function cases(): Case[] {
  // Every variant this adapter can run (engine/variants.ts).
  const matmulKernels = E.supportedVariants('matmul');
  const convKernels = E.supportedVariants('conv');
  const bnKernels = E.supportedVariants('bnStats');
  const out: Case[] = [];

  for (const k of matmulKernels) {
    out.push({
      name: `matmul (${k}) [37x29]x[29x41] and [3,16,24]x[24,20]`,
      run: async () => {
        E.forceMatmulKernel(k);
        try {
          const a = rand([37, 29], 1), b = rand([29, 41], 2), c = rand([3, 16, 24], 3), d = rand([3, 24, 20], 4);
          const r1 = E.scope(() => E.matmul(T(a), T(b)));
          const r2 = E.scope(() => E.matmul(T(c), T(d)));
          const res: Array<[Float32Array, ND]> = [[await r1.data(), refMatmul(a, b)], [await r2.data(), refMatmul(c, d)]];
          r1.dispose();
          r2.dispose();
          return res;
        } finally {
          E.forceMatmulKernel(null);
        }
      },
    });
  }
  for (const k of convKernels) {
    out.push({
      name: `conv2d (${k}) forward: 3x3 pad 1, and the 7x7 stride-2 stem`,
      run: async () => {
        E.forceConvKernel(k);
        try {
          const x = rand([2, 3, 11, 11], 5), w = rand([5, 3, 3, 3], 6), b = rand([5], 7);
          const x2 = rand([2, 1, 20, 20], 8), w2 = rand([8, 1, 7, 7], 9);
          const y1 = E.scope(() => E.conv2d(T(x), T(w), T(b), { padding: 1 }));
          const y2 = E.scope(() => E.conv2d(T(x2), T(w2), null, { stride: 2, padding: 3 }));
          const res: Array<[Float32Array, ND]> = [
            [await y1.data(), refConv(x, w, b, { padding: 1 })],
            [await y2.data(), refConv(x2, w2, null, { stride: 2, padding: 3 })],
          ];
          y1.dispose();
          y2.dispose();
          return res;
        } finally {
          E.forceConvKernel(null);
        }
      },
    });
    out.push({
      name: `conv2d (${k}) backward: input, weight and bias gradients`,
      rtol: 1e-3,
      atol: 1e-4,
      run: async () => {
        E.forceConvKernel(k);
        try {
          const x = rand([2, 4, 9, 9], 10), w = rand([6, 4, 3, 3], 11), b = rand([6], 12);
          const dy = rand([2, 6, 9, 9], 13);
          const xt = T(x, true), wt = T(w, true), bt = T(b, true);
          // backward inside the scope: the graph's intermediates live until the scope ends.
          E.scope(() => E.sum(E.mul(E.conv2d(xt, wt, bt, { padding: 1 }), T(dy))).backward());
          const ref = conv2dGrads(x, w, dy, { padding: 1 });
          const res: Array<[Float32Array, ND]> = [
            [await xt.grad!.data(), ref.dx], [await wt.grad!.data(), ref.dw], [await bt.grad!.data(), ref.db],
          ];
          for (const t of [xt, wt, bt]) t.dispose();
          return res;
        } finally {
          E.forceConvKernel(null);
        }
      },
    });
    out.push({
      // 1,152 pixels: enough for subgroup-wide's 32x8 tiles with subgroups of up to 64 lanes.
      name: `conv2d (${k}) forward and input gradient on 1,152 pixels [3,2,16,24]`,
      rtol: 1e-3,
      atol: 1e-4,
      run: async () => {
        E.forceConvKernel(k);
        try {
          const x = rand([3, 2, 16, 24], 14), w = rand([6, 2, 3, 3], 15), dy = rand([3, 6, 16, 24], 16);
          const xt = T(x, true);
          const y = E.scope(() => {
            const out = E.conv2d(xt, T(w), null, { padding: 1 });
            E.sum(E.mul(out, T(dy))).backward();
            return out;
          });
          const res: Array<[Float32Array, ND]> = [[await y.data(), refConv(x, w, null, { padding: 1 })], [await xt.grad!.data(), conv2dGrads(x, w, dy, { padding: 1 }).dx]];
          y.dispose();
          xt.dispose();
          return res;
        } finally {
          E.forceConvKernel(null);
        }
      },
    });
  }
  for (const k of bnKernels) {
    out.push({
      name: `batchNorm2d (${k} statistics), training mode [4,6,5,5] and [2,3,8,8]`,
      rtol: 1e-4,
      atol: 1e-4,
      run: async () => {
        E.forceBnStatsKernel(k);
        try {
          const res: Array<[Float32Array, ND]> = [];
          for (const [shape, seed] of [[[4, 6, 5, 5], 20], [[2, 3, 8, 8], 30]] as const) {
            const x = rand([...shape], seed, -2, 3), g = rand([shape[1]], seed + 1, 0.5, 1.5), b = rand([shape[1]], seed + 2);
            const y = E.scope(() => E.batchNorm2d(T(x), T(g), T(b), null, null, { training: true }));
            res.push([await y.data(), batchNormTrain(x, g, b)]);
            y.dispose();
          }
          return res;
        } finally {
          E.forceBnStatsKernel(null);
        }
      },
    });
  }
  // float16 storage (mixed precision), where the adapter has shader-f16: the reference runs on the
  // half-rounded inputs and its output is rounded to half, as the kernel's stores are.
  if (E.gpu().features.shaderF16) {
    const half = (a: ND) => nd(a.shape, E.roundToHalf(a.data));
    const H = (a: ND) => E.tensor(Float32Array.from(a.data), a.shape).half();
    for (const k of convKernels) {
      out.push({
        name: `conv2d (${k}) forward with float16 storage: 3x3 pad 1 [2,5,11,11]`,
        rtol: 2e-3,
        atol: 2e-3,
        run: async () => {
          E.forceConvKernel(k);
          try {
            const x = half(rand([2, 5, 11, 11], 70)), w = rand([6, 5, 3, 3], 71), b = rand([6], 72);
            const y = E.scope(() => E.conv2d(H(x), T(w), T(b), { padding: 1 }));
            const r: Array<[Float32Array, ND]> = [[await y.data(), half(refConv(x, w, b, { padding: 1 }))]];
            y.dispose();
            return r;
          } finally {
            E.forceConvKernel(null);
          }
        },
      });
    }
    out.push({
      name: 'batchNorm2d with float16 storage, training mode [4,6,5,5]',
      rtol: 2e-3,
      atol: 2e-3,
      run: async () => {
        const x = half(rand([4, 6, 5, 5], 80, -2, 3)), g = rand([6], 81, 0.5, 1.5), b = rand([6], 82);
        const y = E.scope(() => E.batchNorm2d(H(x), T(g), T(b), null, null, { training: true }));
        const r: Array<[Float32Array, ND]> = [[await y.data(), half(batchNormTrain(x, g, b))]];
        y.dispose();
        return r;
      },
    });
  }
  out.push({
    name: 'relu [4099]',
    run: async () => {
      const x = rand([4099], 40);
      const y = E.scope(() => E.relu(T(x)));
      const want = nd([4099], Array.from(x.data, (v) => Math.max(0, v)));
      const r: Array<[Float32Array, ND]> = [[await y.data(), want]];
      y.dispose();
      return r;
    },
  });
  out.push({
    name: 'maxPool2d 3x3 stride 2 pad 1 [2,3,9,9]',
    run: async () => {
      const x = rand([2, 3, 9, 9], 50);
      const y = E.scope(() => E.maxPool2d(T(x), { kernel: 3, stride: 2, padding: 1 }));
      const r: Array<[Float32Array, ND]> = [[await y.data(), maxPool(x, [3, 3], [2, 2], [1, 1])]];
      y.dispose();
      return r;
    },
  });
  out.push({
    name: 'crossEntropy [8,10]',
    run: async () => {
      const x = rand([8, 10], 60, -3, 3);
      const labels = [0, 3, 9, 1, 5, 5, 2, 7];
      const y = E.scope(() => E.crossEntropy(T(x), labels));
      const r: Array<[Float32Array, ND]> = [[await y.data(), refCrossEntropy(x, labels)]];
      y.dispose();
      return r;
    },
  });
  return out;
}

/** Runs every check; never throws (a failure is a result with ok false and the error). */
export async function runSelfChecks(onResult?: (r: CheckResult) => void): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const c of cases()) {
    const t0 = performance.now();
    let r: CheckResult;
    try {
      const pairs = await c.run();
      let ok = true;
      let maxAbsErr = 0;
      let worstExcess = -Infinity;
      let elements = 0;
      for (const [got, want] of pairs) {
        const cmp = compare(got, want, c.rtol ?? 1e-4, c.atol ?? 1e-5);
        ok &&= cmp.ok;
        maxAbsErr = Math.max(maxAbsErr, cmp.maxAbsErr);
        worstExcess = Math.max(worstExcess, cmp.worstExcess);
        elements += cmp.elements;
      }
      r = { name: c.name, ok, maxAbsErr, worstExcess, elements, ms: performance.now() - t0 };
    } catch (e) {
      r = { name: c.name, ok: false, maxAbsErr: Infinity, worstExcess: Infinity, elements: 0, ms: performance.now() - t0, error: (e as Error).message };
    }
    results.push(r);
    onResult?.(r);
  }
  return results;
}
