// Learning-rate schedules against PyTorch 1.13 (test/fixtures/make_optim_fixtures.py writes
// schedules.json): the rate of two parameter groups after construction and after each of 20 steps.

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, test, vi } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { useEngine } from './helpers.js';

useEngine();

const want = JSON.parse(readFileSync(new URL('./fixtures/schedules.json', import.meta.url), 'utf8')) as Record<string, number[][]>;

function optimizer(): nn.SGD {
  const w = E.keep(E.zeros([1]));
  const b = E.keep(E.zeros([1]));
  w.requiresGrad = b.requiresGrad = true;
  return new nn.SGD([{ params: [w] }, { params: [b], lr: 0.05 }], { lr: 0.1 });
}

const make: Record<string, (o: nn.SGD) => nn.LRScheduler> = {
  StepLR: (o) => new nn.StepLR(o, 3, 0.5),
  MultiStepLR: (o) => new nn.MultiStepLR(o, [5, 8, 8], 0.1),
  CosineAnnealingLR: (o) => new nn.CosineAnnealingLR(o, 7, 0.01),
  LinearLR: (o) => new nn.LinearLR(o, 0.25, 1, 4),
  SequentialLR: (o) => new nn.SequentialLR(o, [new nn.LinearLR(o, 0.1, 1, 3), new nn.CosineAnnealingLR(o, 10)], [3]),
};

const expectRates = (got: number[], exp: number[], what: string) =>
  exp.forEach((e, i) => expect(Math.abs(got[i] - e), `${what}, group ${i}: ${got[i]} vs PyTorch ${e}`).toBeLessThanOrEqual(1e-5 * Math.abs(e)));

afterEach(() => vi.restoreAllMocks());

describe('schedules against PyTorch 1.13, every step', () => {
  for (const name of Object.keys(make)) {
    test(name, () => {
      const opt = optimizer();
      const s = make[name](opt);
      const lrs = () => opt.paramGroups.map((g) => g.lr);
      expectRates(lrs(), want[name][0], `${name} after construction`);
      for (let step = 1; step <= 20; step++) {
        opt.step();
        s.step();
        expectRates(lrs(), want[name][step], `${name} after step ${step}`);
        expect(s.getLastLr()).toEqual(lrs());
      }
    });
  }
});

describe('state', () => {
  for (const name of Object.keys(make)) {
    test(`${name}: a scheduler restored from stateDict() after 7 steps continues like the original`, () => {
      const a = optimizer();
      const sa = make[name](a);
      for (let i = 0; i < 7; i++) (a.step(), sa.step());
      const saved = JSON.parse(JSON.stringify(sa.stateDict()));
      const b = optimizer();
      b.loadStateDict(a.stateDict());
      const sb = make[name](b);
      sb.loadStateDict(saved);
      b.loadStateDict(a.stateDict());
      for (let i = 8; i <= 20; i++) {
        a.step(), sa.step(), b.step(), sb.step();
        expectRates(b.paramGroups.map((g) => g.lr), want[name][i], `${name} restored, step ${i}`);
      }
    });
  }

  test('a state dict with a non-numeric setting is refused, naming the key', () => {
    const o = optimizer();
    const s = new nn.StepLR(o, 3, 0.5);
    expect(() => s.loadStateDict({ ...s.stateDict(), gamma: 'half' })).toThrow(/StepLR\.loadStateDict: 'gamma' must be a finite number, got "half"/);
    const m = new nn.MultiStepLR(o, [2, 4]);
    expect(() => m.loadStateDict({ ...m.stateDict(), milestones: [2, 'x'] })).toThrow(/MultiStepLR\.loadStateDict: 'milestones' must be a list of integers/);
    expect(s.stateDict()).toMatchObject({ step_size: 3, gamma: 0.5 });
  });
});

describe('misuse', () => {
  test('stepping the scheduler before the optimiser warns once, naming both calls', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const opt = optimizer();
    const s = new nn.StepLR(opt, 2);
    s.step();
    s.step();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(/StepLR.step\(\) was called before optimizer.step\(\).*first learning rate of the schedule \(0.1, 0.05\) is skipped/);
    const ok = new nn.StepLR(optimizer(), 2);
    ok.optimizer.step();
    ok.step();
    expect(warn).toHaveBeenCalledTimes(1);
  });

  test('bad settings name the scheduler and the value', () => {
    const opt = optimizer();
    expect(() => new nn.StepLR(opt, 0)).toThrow(/StepLR: stepSize must be an integer >= 1, got 0/);
    expect(() => new nn.MultiStepLR(opt, [5, 3])).toThrow(/MultiStepLR: milestones must be a non-decreasing list of integers >= 0, got \[5,3\]/);
    expect(() => new nn.CosineAnnealingLR(opt, 2.5)).toThrow(/CosineAnnealingLR: tMax must be an integer >= 1, got 2.5/);
    expect(() => new nn.LinearLR(opt, 0)).toThrow(/LinearLR: startFactor must be in \(0, 1\], got 0/);
    expect(() => new nn.SequentialLR(opt, [new nn.StepLR(opt, 1)], [2])).toThrow(/SequentialLR: expected 0 milestones for 1 schedulers, got 1/);
    expect(() => new nn.SequentialLR(opt, [new nn.StepLR(optimizer(), 1), new nn.StepLR(opt, 1)], [2])).toThrow(/schedulers\[0\] \(StepLR\) belongs to another optimiser/);
    expect(() => new nn.StepLR({} as nn.SGD, 2)).toThrow(/StepLR: expected an optimiser/);
    const fresh = optimizer();
    expect(() => new nn.StepLR(fresh, 2, 0.1, 4)).toThrow(/StepLR: parameter group 0 has no initialLr; resuming with lastEpoch 4/);
  });
});
