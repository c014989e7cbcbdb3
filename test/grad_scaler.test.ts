// GradScaler (nn/grad_scaler.ts) against PyTorch's GradScaler semantics, and the optimisers' skip flag
// (nn/optim.ts): a step with an inf or NaN gradient changes nothing (parameters, momentum, Adam's
// moments and step counts), the scale backs off and grows as PyTorch's _amp_update_scale_ kernel does,
// and a scaled step never reads the GPU back.
// PyTorch 1.13 has no CPU kernels for GradScaler (_amp_update_scale_ and the unscale kernel are CUDA
// only), so the scale's evolution is checked against refUpdate(), a transcription of that CUDA kernel.

import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { nd } from './reference/ndarray.js';
import { expectClose, randND, toTensor, useEngine } from './helpers.js';

useEngine();

/** PyTorch's _amp_update_scale_ (aten/src/ATen/native/cuda/AmpKernels.cu), in float32 like the kernel. */
function refUpdate(s: { scale: number; tracker: number }, foundInf: boolean, growth: number, backoff: number, interval: number): void {
  if (foundInf) {
    s.scale = Math.fround(s.scale * backoff);
    s.tracker = 0;
  } else if (s.tracker + 1 === interval) {
    const grown = Math.fround(s.scale * growth);
    if (Number.isFinite(grown)) s.scale = grown;
    s.tracker = 0;
  } else s.tracker++;
}

const SHAPES = [[3, 5], [7], [1], [2, 3, 2]];

/** A tensor of one value everywhere (mulScalar refuses inf and NaN). */
const filled = (shape: number[], v: number) => E.tensor(new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(v), shape);

/** Parameters of awkward sizes in two groups, and a twin set with the same values for the reference optimiser. */
function makeParams(seed: number): E.Tensor[] {
  return SHAPES.map((s, i) => E.keep(toTensor(randND(s, seed + i), true)));
}

/** Gradients for step k: the coefficients c of loss = sum_i sum(c_i * p_i) (so the gradient of p_i is c_i). */
const coeffs = (k: number) => SHAPES.map((s, i) => randND(s, 100 + 10 * k + i, -2, 2));

type Kind = 'SGD' | 'Adam' | 'AdamW';
function makeOptimizer(kind: Kind, ps: E.Tensor[]): nn.Optimizer<{ lr: number; weightDecay: number }> {
  const groups = [{ params: [ps[0], ps[1]] }, { params: [ps[2], ps[3]], weightDecay: 0 }];
  if (kind === 'SGD') return new nn.SGD(groups, { lr: 0.1, momentum: 0.9, dampening: 0.3, weightDecay: 1e-2 });
  return kind === 'Adam' ? new nn.Adam(groups, { lr: 0.01, weightDecay: 1e-2 }) : new nn.AdamW(groups, { lr: 0.01 });
}

async function snapshot(ps: E.Tensor[], opt: nn.Optimizer<{ lr: number; weightDecay: number }>): Promise<Float32Array[]> {
  const out = [];
  for (const p of ps) out.push(await p.data());
  // The flat state buffers hold every parameter's state (zeros before its first step).
  for (const pack of (opt as unknown as { packs: Array<{ flats: E.Tensor[] | null }> }).packs) for (const f of pack.flats ?? []) out.push(await f.data());
  return out;
}

describe('GradScaler: a step with inf or NaN gradients is skipped on the GPU', () => {
  // Iterations: which are overflows (a huge loss on parameter 0), and which parameters have no gradient.
  const plan: Array<{ overflow: boolean | 'nan'; inactive: number[] }> = [
    { overflow: true, inactive: [] },
    { overflow: false, inactive: [] },
    { overflow: true, inactive: [2] },
    { overflow: false, inactive: [2] },
    { overflow: false, inactive: [] },
    { overflow: 'nan', inactive: [] },
    { overflow: false, inactive: [] },
  ];

  for (const kind of ['SGD', 'Adam', 'AdamW'] as const) {
    test(`${kind}: skipped steps leave parameters and state untouched; the others match an optimiser that only saw the clean steps`, async () => {
      const ps = makeParams(1);
      const ref = makeParams(1);
      const opt = makeOptimizer(kind, ps);
      const refOpt = makeOptimizer(kind, ref);
      const scaler = new nn.GradScaler();
      const expected = { scale: 2 ** 16, tracker: 0 };
      let skipped = 0;
      for (const [k, it] of plan.entries()) {
        const c = coeffs(k);
        const before = await snapshot(ps, opt);
        opt.zeroGrad();
        E.scope(() => {
          let loss = E.tensor([0], []);
          ps.forEach((p, i) => {
            if (it.inactive.includes(i)) return;
            const ci = toTensor(c[i]);
            const bump = i === 0 && it.overflow === true ? E.mulScalar(ci, 1e36) : i === 0 && it.overflow === 'nan' ? E.mul(ci, filled(SHAPES[0], NaN)) : ci;
            loss = E.add(loss, E.sum(E.mul(p, bump)));
          });
          scaler.scale(loss).backward();
        });
        scaler.step(opt);
        scaler.update();
        refUpdate(expected, it.overflow !== false, 2, 0.5, 2000);
        if (it.overflow) {
          skipped++;
          const after = await snapshot(ps, opt);
          // (State buffers made by this step hold zeros, as a fresh optimiser's.)
          after.forEach((a, j) => expect([...a], `${kind} iteration ${k}: buffer ${j} changed on a skipped step`).toEqual(before[j] ? [...before[j]] : new Array(a.length).fill(0)));
        } else {
          refOpt.zeroGrad();
          ref.forEach((p, i) => {
            if (!it.inactive.includes(i)) p.grad = E.keep(toTensor(c[i]));
          });
          refOpt.step();
          for (const [i, p] of ps.entries()) expectClose(await p.data(), nd(SHAPES[i], await ref[i].data()), { rtol: 2e-5, atol: 1e-6, what: `${kind} iteration ${k}, parameter ${i}` });
        }
        expect(await scaler.getScale(), `scale after iteration ${k}`).toBe(expected.scale);
        expect((await scaler.stateDict())._growth_tracker).toBe(expected.tracker);
      }
      expect(await scaler.skippedSteps()).toBe(skipped);
      // The step counts: stateDict() needs the skip counts from the GPU first.
      expect(opt.stepsPending).toBe(true);
      expect(() => opt.stateDict()).toThrow(`${kind}.stateDict: steps taken with a skip flag (GradScaler) have their skip counts on the GPU; await optimizer.syncSteps() first`);
      expect(await opt.syncSteps()).toEqual([3, 3]); // per group, the most skips of any parameter
      expect(opt.stepsPending).toBe(false);
      const got = opt.stateDict();
      const want = refOpt.stateDict();
      expect([...got.state.keys()]).toEqual([...want.state.keys()]);
      for (const [id, st] of want.state) {
        if (kind !== 'SGD') expect(got.state.get(id)!.step, `step of parameter ${id}`).toBe(st.step);
        for (const [name, t] of Object.entries(st)) {
          if (t instanceof E.Tensor) expectClose(await (got.state.get(id)![name] as E.Tensor).data(), nd([...t.shape], await t.data()), { rtol: 2e-5, atol: 1e-6, what: `${name} of parameter ${id}` });
        }
      }
      // Parameter 2 took 4 clean steps of the 7 (it had no gradient in two of them, one an overflow).
      if (kind !== 'SGD') expect([0, 1, 2, 3].map((i) => got.state.get(i)!.step)).toEqual([4, 4, 3, 4]);
      // After the sync, a plain step goes back to the host's step counts and still matches.
      opt.zeroGrad();
      refOpt.zeroGrad();
      const c = coeffs(99);
      ps.forEach((p, i) => (p.grad = E.keep(toTensor(c[i]))));
      ref.forEach((p, i) => (p.grad = E.keep(toTensor(c[i]))));
      opt.step();
      refOpt.step();
      for (const [i, p] of ps.entries()) expectClose(await p.data(), nd(SHAPES[i], await ref[i].data()), { rtol: 2e-5, atol: 1e-6, what: `${kind} after syncSteps, parameter ${i}` });
      for (const o of [opt, refOpt]) o.zeroGrad();
      for (const o of [opt, refOpt]) o.dispose();
      scaler.dispose();
      [...ps, ...ref].forEach((p) => p.dispose());
    });
  }
});

describe('the update kernels with a skip flag', () => {
  test("adamUpdate's bias corrections computed on the GPU match the host's, early and late steps, with skipped steps subtracted", async () => {
    const n = 37;
    const g = toTensor(randND([n], 21));
    const p0 = nd([n]); // zeros, so the parameters after the step are the update itself
    const m0 = randND([n], 23, -0.1, 0.1);
    const v0 = randND([n], 24, 0, 0.01);
    const flag = E.zeros([1]);
    const skipped = E.tensor([0, 3, 0], [3]);
    for (const step of [1, 2, 7, 50, 99, 101, 1000, 20000]) {
      const run = (skip: E.SkipStep | null, s: number) => {
        const [p, m, v] = [p0, m0, v0].map((a) => toTensor(a));
        E.adamUpdate(p, g, m, v, { start: 0, count: n }, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, step: s }, skip);
        return p;
      };
      const host = run(null, step);
      const gpu = run({ flag, skipped, slot: 1, count: false }, step + 3); // 3 skipped steps in slot 1
      expectClose(await gpu.data(), nd([n], await host.data()), { rtol: 3e-6, atol: 1e-8, what: `step ${step}` });
      [host, gpu].forEach((t) => t.dispose());
    }
    [g, flag, skipped].forEach((t) => t.dispose());
  });
});

describe('GradScaler: scale, growth and state', () => {
  test('the scale and growth tracker follow PyTorch over a sequence of clean and overflow steps (growth interval 3)', async () => {
    const p = E.keep(toTensor(randND([5], 3), true));
    const opt = new nn.SGD([p], { lr: 0.01 });
    const scaler = new nn.GradScaler({ initScale: 1024, growthInterval: 3 });
    const expected = { scale: 1024, tracker: 0 };
    const seq = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0].map(Boolean);
    for (const [k, overflow] of seq.entries()) {
      opt.zeroGrad();
      E.scope(() => scaler.scale(E.sum(E.mul(p, filled([5], overflow ? Infinity : 1)))).backward());
      scaler.step(opt);
      scaler.update();
      refUpdate(expected, overflow, 2, 0.5, 3);
      const sd = await scaler.stateDict();
      expect([sd.scale, sd._growth_tracker], `after step ${k}`).toEqual([expected.scale, expected.tracker]);
    }
    expect(expected.scale).toBe(1024 * 2 ** 3 * 0.5 ** 3 * 2); // grew 3 + 1 times, backed off 3 times
    expect(await scaler.skippedSteps()).toBe(3);
    // Growth that would overflow float32 keeps the scale (as PyTorch).
    const big = new nn.GradScaler({ initScale: 2 ** 127, growthInterval: 1 });
    opt.zeroGrad();
    E.scope(() => big.scale(E.sum(E.mulScalar(p, 1e-30))).backward());
    big.step(opt);
    big.update();
    expect(await big.getScale()).toBe(2 ** 127);
    opt.zeroGrad();
    opt.dispose();
    [scaler, big].forEach((s) => s.dispose());
    p.dispose();
  });

  test('unscale_ divides the gradients in place (so they can be clipped) and step() does not unscale again', async () => {
    const p = E.keep(toTensor(randND([6], 4), true));
    const opt = new nn.SGD([p], { lr: 0.5 });
    const scaler = new nn.GradScaler({ initScale: 8 });
    const c = randND([6], 5);
    E.scope(() => scaler.scale(E.sum(E.mul(p, toTensor(c)))).backward());
    expectClose(await p.grad!.data(), nd([6], c.data.map((v) => v * 8)), { what: 'scaled gradient' });
    scaler.unscale_(opt);
    expectClose(await p.grad!.data(), nd([6], Float32Array.from(c.data)), { rtol: 0, atol: 0, what: 'unscaled gradient' });
    const before = await p.data();
    scaler.step(opt);
    scaler.update();
    expectClose(await p.data(), nd([6], before.map((v, i) => v - 0.5 * c.data[i])), { what: 'parameter' });
    opt.zeroGrad();
    opt.dispose();
    scaler.dispose();
    p.dispose();
  });

  test('state dict: PyTorch keys, round trip, loading before first use', async () => {
    const p = E.keep(toTensor(randND([4], 6), true));
    const opt = new nn.Adam([p]);
    const a = new nn.GradScaler({ initScale: 256, growthFactor: 4, backoffFactor: 0.25, growthInterval: 5 });
    for (const overflow of [false, false, true, false, false]) {
      opt.zeroGrad();
      E.scope(() => a.scale(E.sum(E.mul(p, filled([4], overflow ? NaN : 1)))).backward());
      a.step(opt);
      a.update();
    }
    const sd = await a.stateDict();
    expect(sd).toEqual({ scale: 64, growth_factor: 4, backoff_factor: 0.25, growth_interval: 5, _growth_tracker: 2 });
    const b = new nn.GradScaler();
    b.loadStateDict(sd as nn.GradScalerState); // before its buffer exists
    expect(await b.stateDict()).toEqual(sd);
    const c = new nn.GradScaler();
    await c.getScale(); // the buffer exists
    c.loadStateDict(sd as nn.GradScalerState);
    expect(await c.stateDict()).toEqual(sd);
    // The loaded growth settings are used: 3 more clean steps reach the interval of 5 and grow by 4.
    for (let k = 0; k < 3; k++) {
      opt.zeroGrad();
      E.scope(() => c.scale(E.sum(p)).backward());
      c.step(opt);
      c.update();
    }
    expect(await c.stateDict()).toEqual({ ...sd, scale: 256, _growth_tracker: 0 });
    expect(() => c.loadStateDict({} as nn.GradScalerState)).toThrow('GradScaler.loadStateDict: the state dict is empty, possibly because it was saved from a disabled GradScaler');
    expect(() => c.loadStateDict({ ...sd, growth_interval: 2.5 } as nn.GradScalerState)).toThrow('GradScaler: growthInterval must be an integer in [1, 2^24], got 2.5');
    c.update(3);
    expect(await c.getScale()).toBe(3);
    opt.zeroGrad();
    opt.dispose();
    [a, b, c].forEach((s) => s.dispose());
    p.dispose();
  });

  test('disabled: a pass-through, as PyTorch', async () => {
    const p = E.keep(toTensor(randND([3], 7), true));
    const opt = new nn.SGD([p], { lr: 1 });
    const s = new nn.GradScaler({ enabled: false });
    const loss = E.sum(p);
    expect(s.scale(loss)).toBe(loss);
    loss.backward();
    const before = await p.data();
    s.step(opt);
    s.update();
    expectClose(await p.data(), nd([3], before.map((v) => v - 1)), { what: 'parameter' });
    expect([await s.getScale(), await s.stateDict(), s.isEnabled()]).toEqual([1, {}, false]);
    loss.dispose();
    opt.zeroGrad();
    opt.dispose();
    p.dispose();
  });

  test('misuse gets PyTorch errors', async () => {
    const p = E.keep(toTensor(randND([3], 8), true));
    const opt = new nn.SGD([p], { lr: 1 });
    const s = new nn.GradScaler();
    expect(() => s.update()).toThrow('GradScaler.update: no inf checks were recorded prior to update() (call step() or unscale_() first)');
    expect(() => s.step(opt)).toThrow('GradScaler.unscale_: no inf checks were recorded for this optimizer (none of its parameters has a gradient)');
    E.scope(() => s.scale(E.sum(p)).backward());
    s.unscale_(opt);
    expect(() => s.unscale_(opt)).toThrow('GradScaler.unscale_: unscale_() has already been called on this optimizer since the last update()');
    s.step(opt);
    expect(() => s.step(opt)).toThrow('GradScaler.step: step() has already been called since the last update()');
    expect(() => s.unscale_(opt)).toThrow('GradScaler.unscale_: unscale_() is being called after step()');
    s.update();
    expect(() => new nn.GradScaler({ growthFactor: 1 })).toThrow('GradScaler: growthFactor must be > 1, got 1');
    expect(() => new nn.GradScaler({ initScale: NaN })).toThrow('GradScaler: initScale must be a finite number > 0, got NaN');
    expect(() => opt.step({ skipIf: E.zeros([2]) })).toThrow('SGD.step: skipIf must be a 1-element Tensor, got shape [2]');
    // SGD's assignable momentum buffers wait for the skip counts.
    const m = new nn.SGD([p], { lr: 1, momentum: 0.9 });
    E.scope(() => s.scale(E.sum(p)).backward());
    s.step(m);
    s.update();
    m.state[0] = E.zeros([3]);
    expect(() => m.step()).toThrow('SGD.step: a momentum buffer was assigned to state[0] while skipped-step counts are on the GPU (GradScaler); await optimizer.syncSteps() before assigning');
    await m.syncSteps();
    m.step();
    m.dispose();
    opt.zeroGrad();
    opt.dispose();
    s.dispose();
    p.dispose();
  });

  test('a scaled step: unscale is one dispatch, the update one more, and nothing is read back', async () => {
    const ps = makeParams(11);
    const opt = makeOptimizer('Adam', ps);
    const scaler = new nn.GradScaler();
    await scaler.getScale(); // make the state buffer
    // The first step also makes the optimiser's state buffers and skipped-step counts (fills): not counted.
    for (const [k, overflow] of [false, false, true, false].entries()) {
      opt.zeroGrad();
      const r0 = E.readbacks();
      E.scope(() => {
        const terms = ps.map((p) => E.sum(E.mulScalar(p, overflow ? 1e38 : 1)));
        scaler.scale(terms.reduce((a, b) => E.add(a, b))).backward();
      });
      const d0 = E.dispatches();
      scaler.step(opt);
      scaler.update();
      E.flush();
      // 1 unscale (all gradients packed together) + 1 update per group + 1 scale update.
      if (k > 0) expect(E.dispatches() - d0, overflow ? 'overflow step' : 'clean step').toBe(1 + 2 + 1);
      expect(E.readbacks() - r0).toBe(0);
    }
    expect(await scaler.skippedSteps()).toBe(1);
    opt.zeroGrad();
    opt.dispose();
    scaler.dispose();
    ps.forEach((p) => p.dispose());
  });
});
