// float16 storage (engine/dtype.ts, engine/storage.ts): uploads and read-backs, cast both ways and its
// gradient, elementwise maps on float16, and the runtime's refusal to bind a float16 buffer to a kernel
// that reads float32.
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { expectClose, useEngine } from './helpers.js';

useEngine();
const { features } = await E.init();
const f16 = test.skipIf(!features.shaderF16);

// Values that exercise rounding (ties, subnormals), the edge of the range, overflow, NaN and infinities.
const EDGE = [0, -0, 1, -1, 1 / 3, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, -70000, 1e-8, 2 ** -24, 3e-5, 6.1e-5, Infinity, -Infinity, NaN, 123.456, -0.1];

describe('float16 storage', () => {
  test('host conversions round to nearest, ties to even, overflow to infinity', () => {
    expect(E.floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie: to the even neighbour 1
    expect(E.floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(E.floatToHalfBits(65520)).toBe(0x7c00);
    expect(E.floatToHalfBits(65519)).toBe(0x7bff);
    expect(E.halfToFloat(0x7bff)).toBe(65504);
    expect(E.halfToFloat(0x0001)).toBe(2 ** -24);
    expect(Array.from(E.roundToHalf([0.1]))[0]).toBeCloseTo(0.0999755859375, 12);
  });

  f16('a float16 tensor uploads, reads back and views like a float32 one, in half the bytes', async () => {
    const t = E.tensor(new Float32Array(EDGE), [4, 5]);
    const h = t.half();
    expect(h.dtype).toBe('float16');
    expect(h.itemBytes).toBe(2);
    expect(Array.from(await h.data())).toEqual(Array.from(E.roundToHalf(EDGE)));
    // A strided view at an odd element offset reads the right elements.
    const col = E.slice(h.transpose(0, 1), 0, 1, 2);
    expect(Array.from(await col.data())).toEqual(Array.from(E.roundToHalf([EDGE[1], EDGE[6], EDGE[11], EDGE[16]])));
    const before = E.memory().liveBytes;
    const big = E.empty([1000, 1000], 'tensor', 'float16');
    expect(E.memory().liveBytes - before).toBe(Math.ceil(2_000_000 / 4096) * 4096); // the pool's size class
    big.dispose();
    E.scope(() => void 0);
    t.dispose();
    h.dispose();
    col.dispose();
  });

  f16('the GPU cast rounds as the host does (overflow is infinity, NaN stays NaN) and back exactly', async () => {
    const x = E.tensor(new Float32Array(EDGE));
    const h = E.cast(x, 'float16');
    const back = h.float();
    expect(back.dtype).toBe('float32');
    expect(Array.from(await back.data())).toEqual(Array.from(E.roundToHalf(EDGE)));
    expect(E.cast(back, 'float32')).toBe(back);
    for (const t of [x, h, back]) t.dispose();
  });

  f16('elementwise ops run on float16 and promote a mixed pair to float32', async () => {
    const a = E.tensor([[1.5, -2, 3.25], [70000, -0.5, 8]]).half();
    const b = E.tensor([0.25, 0.5, -1]).half();
    const r = E.relu(a);
    expect(r.dtype).toBe('float16');
    expect(Array.from(await r.data())).toEqual([1.5, 0, 3.25, Infinity, 0, 8]);
    const s = E.add(a, b);
    expect(s.dtype).toBe('float16');
    expect(Array.from(await s.data())).toEqual([1.75, -1.5, 2.25, Infinity, 0, 7]);
    const m = E.mul(a, E.tensor([2, 2, 2]));
    expect(m.dtype).toBe('float32');
    expect(Array.from(await m.data())).toEqual([3, -4, 6.5, Infinity, -1, 16]);
    for (const t of [a, b, r, s, m]) t.dispose();
  });

  f16("a 0-dim float32 operand does not promote a float16 tensor (PyTorch's rule: dimensioned operands decide)", async () => {
    const a = E.tensor([1.5, -2, 3.25]).half();
    const s = E.tensor(2);
    expect(s.ndim).toBe(0);
    const m = E.mul(a, s);
    expect(m.dtype).toBe('float16');
    expect(Array.from(await m.data())).toEqual([3, -4, 6.5]);
    expect(E.add(s, a).dtype).toBe('float16');
    expect(E.mul(a, E.tensor([2])).dtype).toBe('float32'); // [1] has a dimension: it promotes
    expect(E.mul(E.sum(a), s).dtype).toBe('float32'); // only 0-dim operands: they all decide
    for (const t of [a, s, m]) t.dispose();
  });

  f16('sum and mean of float16 give float16 (folded in float32), and their gradients are float16', async () => {
    const n = 5000; // two passes: partial sums (float32) then the total
    const x = E.full([n], 0.1, 'float16');
    x.requiresGrad = true;
    const s = E.sum(x);
    expect(s.dtype).toBe('float16');
    // 5000 * half(0.1) summed in float32, then rounded to half once (a float16 running sum would stall at 256).
    expect(await s.item()).toBe(E.roundToHalf([n * E.roundToHalf([0.1])[0]])[0]);
    const m = E.mean(x);
    expect(m.dtype).toBe('float16');
    m.backward();
    expect(x.grad!.dtype).toBe('float16');
    expect((await x.grad!.data())[7]).toBe(E.roundToHalf([1 / n])[0]);
    for (const t of [x, s, m]) t.dispose();
  });

  f16('gradients flow through casts: float16 in the middle, float32 at the ends', async () => {
    const x = E.tensor([0.1, -0.2, 0.3, 4]);
    x.requiresGrad = true;
    const y = E.relu(x.half()).float();
    const loss = E.sum(E.mul(y, E.tensor([1, 2, 3, 1 / 3])));
    loss.backward();
    expect(x.grad!.dtype).toBe('float32');
    expect(Array.from(await x.grad!.data())).toEqual(Array.from(E.roundToHalf([1, 0, 3, 1 / 3])));
    loss.dispose();
    x.dispose();
  });

  f16("a gradient takes its tensor's dtype (as PyTorch's): mixed pairs, a float32 output gradient, accumulation", async () => {
    const x = E.tensor([0.5, -1.5, 2]).half();
    x.requiresGrad = true;
    const w = E.tensor([3, 0.25, -2]);
    w.requiresGrad = true;
    // x * w is float32 (promotion); x's gradient (w) comes back float16, w's (x) float32.
    E.sum(E.add(E.mul(x, w), x)).backward();
    expect(x.grad!.dtype).toBe('float16');
    expect(w.grad!.dtype).toBe('float32');
    expect(Array.from(await x.grad!.data())).toEqual([4, 1.25, -1]);
    expect(Array.from(await w.grad!.data())).toEqual([0.5, -1.5, 2]);
    // A second backward accumulates into the float16 gradient; an explicit float32 gradient for a
    // float16 output is cast too.
    const y = E.mulScalar(x, 2);
    y.backward(E.tensor([1, 1, 1]));
    expect(x.grad!.dtype).toBe('float16');
    expect(Array.from(await x.grad!.data())).toEqual([6, 3.25, 1]);
    for (const t of [x, w, y]) t.dispose();
  });

  f16('dropout keeps float16 (DenseNet-BC drops float16 activations under mixed precision), forward and backward', async () => {
    const { nd } = await import('./reference/ndarray.js');
    const R = await import('./reference/ops.js');
    const data = E.roundToHalf(Array.from({ length: 5 * 37 }, (_, i) => Math.sin(i) * 3));
    const x = E.tensor(data, [5, 37]).half();
    x.requiresGrad = true;
    const y = E.dropout(x, 0.3, { seed: 1234 });
    expect(y.dtype).toBe('float16');
    // The reference's float64 product rounded to half: within one half ulp (2^-11 relative) of the kernel's.
    const want = R.dropout(nd([5, 37], data), 0.3, 1234);
    expectClose(await y.data(), nd(want.shape, E.roundToHalf(want.data)), { rtol: 2 ** -11, atol: 0 });
    E.sum(y).backward();
    expect(x.grad!.dtype).toBe('float16');
    const mask = R.dropout(nd([5, 37], new Float32Array(5 * 37).fill(1)), 0.3, 1234);
    expect(Array.from(await x.grad!.data())).toEqual(Array.from(E.roundToHalf(mask.data)));
    y.dispose();
    x.dispose();
  });

  f16('an op without a float16 variant refuses float16 before it allocates, naming the op and the fix', () => {
    const h = E.tensor([[1, 2, 3], [4, 5, 6]]).half();
    const g = E.tensor([[1, 2, 3], [4, 5, 6]]).half();
    g.requiresGrad = true;
    const w = E.ones([4, 3]);
    const img = E.ones([2, 1, 3, 3]).half();
    const calls: Array<[string, () => unknown]> = [
      ['softmax', () => E.softmax(h, 1)],
      ['softmax', () => E.softmax(g, 1)],
      ['logSoftmax', () => E.logSoftmax(g, 0)],
      ['topk', () => E.topk(h, 2)],
      ['argmax', () => E.argmax(h, 1)],
      ['argmax', () => E.argmax(h)],
      ['matmul', () => E.matmul(h, E.transpose(w))],
      ['matmul', () => E.matmul(w, E.transpose(h))],
      ['linear', () => E.linear(g, w)],
      ['crossEntropy', () => E.crossEntropy(g, [0, 2])],
      ['resizeBilinear', () => E.resizeBilinear(img, [5, 5])],
      ['cropFlip', () => E.cropFlip(img, [3, 3], 1, { top: [0, 1], left: [1, 0], flip: [true, false] })],
    ];
    for (const [op, call] of calls) {
      const live = E.memory().liveBytes;
      expect(call, op).toThrow(new RegExp(`^${op}: .* is float16; ${op} has no float16 variant: cast it with \\.float\\(\\) first`));
      expect(E.memory().liveBytes, `${op} frees what it made before refusing`).toBe(live);
    }
    for (const t of [h, g, w, img]) t.dispose();
  });

  f16('the runtime refuses a float16 buffer where a kernel reads float32, naming the kernel and the fix', async () => {
    const { dispatch, PARAM_WORDS } = await import('../engine/runtime.js');
    const { shaders } = await import('../engine/shaders.js');
    const h = E.tensor([1, 2, 3]).half();
    const out = E.empty([3]);
    const kernel = { shader: E.typed(shaders.unary, { X: 'float32', OUT: 'float32' }), entry: 'unary_flat' };
    const args = { params: new Uint32Array(PARAM_WORDS), buffers: [h.buffer, out.buffer], workgroups: [1, 1] as [number, number] };
    expect(() => dispatch(kernel, args)).toThrow(/unary.*storage binding 1 holds float16 data where the kernel reads float32.*\.float\(\)/);
    h.dispose();
    out.dispose();
  });

  f16('the optimiser refuses a float16 parameter instead of copying the wrong bytes', async () => {
    const { SGD } = await import('../nn/index.js');
    const p = E.tensor([1, 2, 3]).half();
    p.requiresGrad = true;
    p.grad = E.tensor([1, 1, 1]).half();
    const opt = new SGD([p], { lr: 0.1 });
    expect(() => opt.step()).toThrow(/packInto: Tensor#\d+ \[3\] is float16; parameters and gradients must be float32/);
    opt.dispose();
    p.dispose();
  });

  test('an unknown dtype is a clear error', () => {
    const x = E.tensor([1]);
    expect(() => E.cast(x, 'int8' as E.DType)).toThrow(/cast: unknown dtype "int8" \(expected 'float32' or 'float16'\)/);
    expect(() => E.empty([2], 'tensor', 'float64' as E.DType)).toThrow(/empty: unknown dtype "float64" \(expected 'float32' or 'float16'\)/);
    expect(() => E.full([2], 1, 'half' as E.DType)).toThrow(/full: unknown dtype "half"/);
    x.dispose();
  });
});
