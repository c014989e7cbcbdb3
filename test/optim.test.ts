// Optimisers against PyTorch fixtures (test/fixtures/make_optim_fixtures.py), the multi-tensor
// kernels against the CPU reference, state dicts, and bad input.

import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { nd } from './reference/ndarray.js';
import * as R from './reference/layers.js';
import { expectClose, randND, toTensor, useEngine } from './helpers.js';

useEngine();

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const spec = JSON.parse(readFileSync(fixture('optim.json'), 'utf8')) as {
  configs: Record<string, { optimizer: 'SGD' | 'Adam' | 'AdamW'; kwargs: Record<string, unknown> }>;
  groups: number[][];
};
const fx = nn.decodeSafetensors(new Uint8Array(readFileSync(fixture('optim.safetensors')))).tensors;
const host = (k: string) => {
  const t = fx.get(k);
  if (!t) throw new Error(`fixture ${k} missing`);
  return t;
};
const up = (k: string) => E.keep(E.tensor(Float32Array.from(host(k).data), host(k).shape));

function makeOptimizer(name: string, groups: Array<{ params: E.Tensor[]; weightDecay?: number }>): nn.Optimizer<{ lr: number; weightDecay: number }> {
  const { optimizer, kwargs: k } = spec.configs[name];
  const common = { lr: k.lr as number, ...(k.weight_decay !== undefined ? { weightDecay: k.weight_decay as number } : {}) };
  if (optimizer === 'SGD') {
    return new nn.SGD(groups, { ...common, momentum: k.momentum as number, dampening: k.dampening as number, nesterov: k.nesterov as boolean });
  }
  const o = { ...common, ...(k.betas ? { betas: k.betas as [number, number] } : {}), ...(k.eps !== undefined ? { eps: k.eps as number } : {}) };
  return optimizer === 'Adam' ? new nn.Adam(groups, o) : new nn.AdamW(groups, o);
}

function fixtureParams(): E.Tensor[] {
  return [0, 1, 2, 3, 4, 5].map((i) => {
    const p = up(`p.${i}`);
    p.requiresGrad = true;
    return p;
  });
}

const setGrads = (ps: E.Tensor[], name: string, step: number) =>
  ps.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = up(`g.${name}.${step}.${i}`);
  });

describe('optimisers against PyTorch 1.13 (5 steps, two parameter groups)', () => {
  for (const name of Object.keys(spec.configs)) {
    test(name, async () => {
      const ps = fixtureParams();
      const groups = [{ params: spec.groups[0].map((i) => ps[i]) }, { params: spec.groups[1].map((i) => ps[i]), weightDecay: 0 }];
      const opt = makeOptimizer(name, groups);
      const before = E.dispatches();
      for (let step = 0; step < 5; step++) {
        setGrads(ps, name, step);
        opt.step();
      }
      // One multi-tensor dispatch per group and step, plus one zero fill per state buffer and group.
      const { optimizer, kwargs } = spec.configs[name];
      const stateKinds = optimizer === 'SGD' ? (kwargs.momentum ? 1 : 0) : 2;
      expect(E.dispatches() - before).toBe(5 * 2 + 2 * stateKinds);
      for (let i = 0; i < ps.length; i++) {
        const want = host(`out.${name}.${i}`);
        expectClose(await ps[i].data(), nd(want.shape, Float64Array.from(want.data)), { rtol: 1e-5, atol: 1e-7, what: `${name} parameter ${i}` });
      }
      opt.zeroGrad();
      opt.dispose();
      ps.forEach((p) => p.dispose());
    });
  }
});

describe('multi-tensor SGD against the CPU reference', () => {
  const run = async (opts: nn.SGDOptions) => {
    const shapes = [[7], [3, 5], [2, 3, 3, 3], [1]];
    const ps = shapes.map((s, i) => randND(s, 200 + i));
    const pt = ps.map((p) => E.keep(toTensor(p, true)));
    const refP = ps.map((p) => [...p.data]);
    const refB: Array<number[] | null> = ps.map(() => null);
    const opt = new nn.SGD(pt, opts);
    for (let step = 0; step < 3; step++) {
      // Parameter 2 has no gradient at step 1: it is skipped, and its momentum does not advance.
      shapes.forEach((s, i) => {
        pt[i].grad?.dispose();
        pt[i].grad = null;
        if (step === 1 && i === 2) return;
        const g = randND(s, 300 + 10 * step + i);
        pt[i].grad = E.keep(toTensor(g));
        refB[i] = R.sgdUpdate(refP[i], [...g.data], refB[i], opts);
      });
      const d0 = E.dispatches();
      opt.step();
      // Parameters 0-3 in one dispatch; at step 1 the gap at parameter 2 splits the range in two.
      const runs = step === 1 ? 2 : 1;
      expect(E.dispatches() - d0 - (step === 0 && opts.momentum ? 1 : 0)).toBe(runs);
    }
    for (let i = 0; i < ps.length; i++) {
      expectClose(await pt[i].data(), nd(ps[i].shape, refP[i]), { rtol: 1e-5, atol: 1e-6, what: `parameter ${i}` });
      if (opts.momentum) expectClose(await opt.state[i]!.data(), nd(ps[i].shape, refB[i]!), { rtol: 1e-5, atol: 1e-6, what: `momentum buffer ${i}` });
      else expect(opt.state[i]).toBeNull();
    }
    opt.zeroGrad();
    opt.dispose();
    pt.forEach((t) => t.dispose());
  };

  test('plain SGD', () => run({ lr: 0.1 }));
  test('momentum and weight decay', () => run({ lr: 0.05, momentum: 0.9, weightDecay: 1e-2 }));
  test('nesterov', () => run({ lr: 0.05, momentum: 0.9, weightDecay: 1e-3, nesterov: true }));
  test('dampening', () => run({ lr: 0.05, momentum: 0.5, dampening: 0.3 }));

  test('hand-computed update: one parameter, two steps', async () => {
    // p = 1, g = 0.5 then 0.25, lr 0.1, momentum 0.9, wd 0.1:
    // step 1: d = 0.5 + 0.1 = 0.6, buf = 0.6, p = 1 - 0.06 = 0.94
    // step 2: d = 0.25 + 0.094 = 0.344, buf = 0.54 + 0.344 = 0.884, p = 0.94 - 0.0884 = 0.8516
    const p = E.keep(E.tensor([1], [1]));
    p.requiresGrad = true;
    const opt = new nn.SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    for (const g of [0.5, 0.25]) {
      opt.zeroGrad();
      p.grad = E.keep(E.tensor([g], [1]));
      opt.step();
    }
    expect(await p.item()).toBeCloseTo(0.8516, 6);
    expect(await opt.state[0]!.item()).toBeCloseTo(0.884, 6);
    opt.dispose();
  });

  test('a momentum buffer assigned to state[i] is loaded at the next step (checkpoint resume)', async () => {
    const p = E.keep(E.tensor([1, 2]));
    p.requiresGrad = true;
    const opt = new nn.SGD([p], { lr: 0.1, momentum: 0.5 });
    opt.state[0] = E.keep(E.tensor([1, -1]));
    p.grad = E.keep(E.tensor([0, 0]));
    opt.step();
    // buf = 0.5 * [1, -1] + 0 -> p -= 0.1 * buf
    expect(Array.from(await p.data()).map((v) => +v.toFixed(6))).toEqual([0.95, 2.05]);
    opt.dispose();
  });

  test('a buffer assigned to state[i] without momentum is taken once, not read again after it is freed', async () => {
    const p = E.keep(E.tensor([1, 2]));
    p.requiresGrad = true;
    const opt = new nn.SGD([p], { lr: 0.1 });
    opt.state[0] = E.keep(E.tensor([1, -1]));
    p.grad = E.keep(E.tensor([1, 1]));
    opt.step();
    expect(opt.state[0]).toBeNull();
    opt.step(); // used to copy from the freed buffer: "copyInto: ... was used after it was disposed"
    expect(Array.from(await p.data()).map((v) => +v.toFixed(6))).toEqual([0.8, 1.8]);
    opt.dispose();
  });
});

describe('state dicts', () => {
  for (const name of ['sgd_nesterov', 'adam_wd', 'adamw']) {
    test(`${name}: 3 steps, save through flat tensors, load into a new optimiser, 2 more steps equal 5 steps`, async () => {
      const a = fixtureParams();
      const b = fixtureParams();
      const groupsOf = (ps: E.Tensor[]) => [{ params: spec.groups[0].map((i) => ps[i]) }, { params: spec.groups[1].map((i) => ps[i]), weightDecay: 0 }];
      const optA = makeOptimizer(name, groupsOf(a));
      const optB = makeOptimizer(name, groupsOf(b));
      for (let step = 0; step < 3; step++) {
        setGrads(a, name, step);
        optA.step();
      }
      const sd = optA.stateDict();
      expect(sd.param_groups.map((g) => g.params)).toEqual([[0, 1], [2, 3, 4, 5]]);
      expect(sd.param_groups[1].weight_decay).toBe(0);
      expect([...sd.state.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
      if (name.startsWith('adam')) expect(sd.state.get(0)!.step).toBe(3);
      // Through safetensors bytes, as a checkpoint would.
      const flat = nn.optimizerStateToTensors(sd);
      const bytes = nn.encodeSafetensors(await nn.toHostTensors(flat.tensors), flat.metadata);
      const dec = nn.decodeSafetensors(bytes);
      const loaded = new Map([...dec.tensors].map(([k, t]) => [k, E.tensor(Float32Array.from(t.data), t.shape)]));
      b.forEach((p, i) => E.copyInto(p, a[i]));
      optB.loadStateDict(nn.optimizerStateFromTensors(loaded, dec.metadata));
      loaded.forEach((t) => t.dispose());
      for (let step = 3; step < 5; step++) {
        setGrads(a, name, step);
        setGrads(b, name, step);
        optA.step();
        optB.step();
      }
      for (let i = 0; i < a.length; i++) expect(Array.from(await b[i].data())).toEqual(Array.from(await a[i].data()));
      for (const o of [optA, optB]) o.dispose();
      [...a, ...b].forEach((p) => p.dispose());
    });
  }

  test('loadStateDict refuses a state dict of another shape', () => {
    const p = fixtureParams();
    const opt = new nn.Adam(p);
    expect(() => opt.loadStateDict({ state: new Map(), param_groups: [] })).toThrow(/Adam.loadStateDict: the state dict has 0 parameter groups, this optimiser 1/);
    expect(() => opt.loadStateDict({ state: new Map(), param_groups: [{ params: [0] }] })).toThrow(/group 0 has 1 parameters in the state dict, 6 in this optimiser/);
    expect(() => nn.optimizerStateFromTensors(new Map(), {})).toThrow(/no 'optimizer.param_groups'/);
    expect(() => nn.optimizerStateFromTensors(new Map(), { 'optimizer.param_groups': '[]', 'optimizer.steps': 'null' })).toThrow(/metadata 'optimizer.steps' is not an object/);
    // A step refused by its checks is not counted (a scheduler reads stepCount).
    p[0].grad = E.keep(E.zeros([p[0].size + 1]));
    expect(() => opt.step()).toThrow(/Adam.step: parameter 0 of group 0 .* has a gradient of shape/);
    expect(opt.stepCount).toBe(0);
    opt.zeroGrad();
    opt.dispose();
    p.forEach((t) => t.dispose());
  });

  /** Two parameters after one Adam step with gradient 1: the optimiser and its state dict. */
  async function stepped() {
    const ps = [0, 1].map(() => {
      const t = E.keep(E.tensor([1, 2, 3]));
      t.requiresGrad = true;
      return t;
    });
    const opt = new nn.Adam(ps, { lr: 0.1 });
    for (const t of ps) t.grad = E.keep(E.tensor([1, 1, 1]));
    opt.step();
    const free = () => {
      opt.dispose();
      ps.forEach((t) => t.dispose());
    };
    const moment = async (i: number) => {
      const m = opt.stateDict().state.get(i)?.exp_avg as E.Tensor | undefined;
      return m ? Array.from(await m.data()) : [];
    };
    return { ps, opt, free, moments: () => Promise.all([moment(0), moment(1)]) };
  }

  test('a bad state dict is refused before anything is loaded: options, state and steps stay', async () => {
    const { opt, free, moments } = await stepped();
    const before = await moments();
    const sd = opt.stateDict();
    const bad: nn.OptimizerStateDict = {
      state: new Map([
        [0, { step: 7, exp_avg: E.zeros([3]), exp_avg_sq: E.zeros([3]) }],
        [1, { step: 7, exp_avg: E.zeros([4]), exp_avg_sq: E.zeros([3]) }],
      ]),
      param_groups: [{ ...sd.param_groups[0], lr: 0.5 }],
    };
    expect(() => opt.loadStateDict(bad)).toThrow(/'exp_avg' of parameter 1 has shape \[4\], the parameter \[3\]/);
    expect(opt.paramGroups[0].lr).toBe(0.1);
    expect(await moments()).toEqual(before);
    expect([...opt.stateDict().state.values()].map((s) => s.step)).toEqual([1, 1]);
    bad.state.get(1)!.exp_avg = E.zeros([3]);
    bad.state.get(1)!.step = 0;
    expect(() => opt.loadStateDict(bad)).toThrow(/'step' of parameter 1 is 0; expected an integer >= 1/);
    expect(opt.paramGroups[0].lr).toBe(0.1);
    expect([...opt.stateDict().state.values()].map((s) => s.step)).toEqual([1, 1]);
    for (const st of bad.state.values()) for (const v of Object.values(st)) if (v instanceof E.Tensor) v.dispose();
    free();
  });

  test('loading replaces the whole state: a parameter absent from the state dict starts afresh', async () => {
    const { ps, opt, free, moments } = await stepped();
    const sd = opt.stateDict();
    const only0: nn.OptimizerStateDict = { state: new Map([[0, sd.state.get(0)!]]), param_groups: sd.param_groups };
    opt.loadStateDict(only0);
    expect([...opt.stateDict().state.keys()]).toEqual([0]);
    const [m0] = await moments();
    expect(m0.map((v) => +v.toFixed(6))).toEqual([0.1, 0.1, 0.1]);
    // Parameter 1 takes a first step again: Adam's first step moves each element by lr.
    const p1 = Array.from(await ps[1].data());
    opt.step();
    const moved = Array.from(await ps[1].data()).map((v, i) => +(p1[i] - v).toFixed(5));
    expect(moved).toEqual([0.1, 0.1, 0.1]);
    expect(opt.stateDict().state.get(1)!.step).toBe(1);
    free();
  });
});

describe('bad input', () => {
  test('a frozen, disposed, repeated or non-leaf parameter is named', () => {
    const w = E.keep(E.zeros([2, 3]));
    w.name = 'net.0.weight';
    expect(() => new nn.SGD([w], { lr: 0.1 })).toThrow(/SGD: parameter 0 of group 0 \(Tensor#\d+ 'net.0.weight' \[2, 3\]\) has requiresGrad = false/);
    w.requiresGrad = true;
    expect(() => new nn.Adam([{ params: [w] }, { params: [w] }])).toThrow(/Adam: parameter 0 of group 1 .* is also parameter 0 of group 0/);
    expect(() => new nn.AdamW([E.mulScalar(w, 2)])).toThrow(/AdamW: parameter 0 of group 0 .* is not a leaf tensor \(it was computed by mulScalar\)/);
    const opt = new nn.SGD([w], { lr: 0.1 });
    w.dispose();
    expect(() => new nn.SGD([w], { lr: 0.1 })).toThrow(/SGD: parameter 0 of group 0 .* was disposed/);
    expect(() => opt.step()).toThrow(/SGD.step \(parameter 0 of group 0\): Tensor#\d+ 'net.0.weight' \[2, 3\] was used after it was disposed/);
  });

  test('packInto and unpackFrom check every tensor before copying any: a bad one leaves the pack as it was', async () => {
    const flat = E.keep(E.zeros([6]));
    const a = E.keep(E.tensor([1, 2, 3]));
    const b = E.keep(E.tensor([4, 5, 6]));
    b.dispose();
    try {
      expect(() => E.packInto(flat, [a, b], [0, 3])).toThrow(/packInto: .* was used after it was disposed/);
      expect(Array.from(await flat.data())).toEqual([0, 0, 0, 0, 0, 0]); // a was not copied either
      expect(() => E.packInto(flat, [a], [4])).toThrow(/packInto: the packed tensor must be a contiguous 1-D tensor of at least 7 elements/);
      expect(() => E.unpackFrom(flat, [a, b], [0, 3])).toThrow(/unpackFrom: .* was used after it was disposed/);
      expect(Array.from(await a.data())).toEqual([1, 2, 3]);
    } finally {
      flat.dispose();
      a.dispose();
    }
  });

  test('bad hyper-parameters', () => {
    expect(() => new nn.SGD([], { lr: -1 })).toThrow(/SGD: lr must be a finite number >= 0, got -1/);
    expect(() => new nn.SGD([], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new nn.Adam([], { betas: [0.9, 1] })).toThrow(/Adam: betas\[1\] must be a finite number >= 0 and < 1, got 1/);
    expect(() => new nn.Adam([], { amsgrad: true })).toThrow(/amsgrad is not supported/);
  });
});
