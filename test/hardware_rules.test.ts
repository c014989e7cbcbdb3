// The code paths a hardware GPU takes, run on whatever adapter the tests have: with
// assumeHardwareRules(true) the rules size workgroups and pick defaults as on a GPU (256 workgroups to
// fill, so more weight-gradient splits; 64-lane plane kernels with one image each; batch norm's
// backward in two dispatches), and a training step must compute what it computes under the adapter's
// own rules. (DENSENET_RULES=hardware runs any test file that way: `npm run test:gpu-paths`, which
// .ci/run runs, takes the kernel and model tests with 16-lane subgroups too.)

import { afterEach, describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { DenseNet, DenseNetBC } from '../models/index.js';
import { planeImagesPerWorkgroup, planeWorkgroupSize, targetWorkgroups } from '../engine/variants.js';
import { expectClose, useEngine } from './helpers.js';
import { nd, type ND } from './reference/ndarray.js';

useEngine();

const initial = E.rulesAssumeHardware();
afterEach(() => E.assumeHardwareRules(initial));

async function host(t: E.Tensor): Promise<ND> {
  return nd([...t.shape], await t.data());
}

type Model = DenseNet | DenseNetBC;

/** Output, loss, every gradient and the state after one training step, by name. */
async function trainStep(m: Model, x: E.Tensor, labels: E.Tensor): Promise<Map<string, ND>> {
  m.train(true);
  const r = E.scope(() => {
    const out = m(x);
    const loss = nn.crossEntropy(out, labels);
    loss.backward();
    return { out, loss };
  });
  try {
    const got = new Map<string, ND>([['output', await host(r.out)], ['loss', await host(r.loss)]]);
    for (const [name, p] of m.namedParameters()) got.set(`gradient of ${name}`, await host(p.grad!));
    for (const [name, t] of m.stateDict()) got.set(`state ${name}`, await host(t));
    return got;
  } finally {
    r.out.dispose();
    r.loss.dispose();
  }
}

/** The same step under the adapter's rules and under hardware rules, from the same weights. */
async function compareRules(make: () => Model, x: E.Tensor, labels: E.Tensor): Promise<void> {
  const models = [make(), make()];
  let adapter: Map<string, ND>;
  let hardware: Map<string, ND>;
  try {
    for (const m of models) E.scope(() => void m.predict(x)); // materialise lazy layers
    models[1].loadStateDict(models[0].stateDict());
    E.assumeHardwareRules(false);
    adapter = await trainStep(models[0], x, labels);
    E.assumeHardwareRules(true);
    hardware = await trainStep(models[1], x, labels);
  } finally {
    for (const m of models) m.dispose();
  }
  expect([...hardware.keys()]).toEqual([...adapter.keys()]);
  // Sums run in another order (more weight-gradient splits, other workgroup sizes), so a value that
  // cancels to about 0 (a conv bias before batch norm: its true gradient is 0) differs by rounding of
  // the terms, not of the result: gradients are compared within 1e-5 of the largest gradient anywhere.
  const largest = (keys: string[]) => Math.max(...keys.flatMap((k) => Array.from(adapter.get(k)!.data, Math.abs)), 1e-12);
  const gradScale = largest([...adapter.keys()].filter((k) => k.startsWith('gradient of')));
  for (const [what, want] of adapter) {
    const scale = what.startsWith('gradient of') ? gradScale : largest([what]);
    expectClose(hardware.get(what)!, want, { rtol: 1e-5, atol: 1e-5 * scale, what: `${what} (hardware rules)` });
  }
}

describe('hardware-GPU rules on this adapter', () => {
  test('the switch changes what the rules say, and only that', () => {
    E.assumeHardwareRules(false);
    const supported = E.FAMILIES.map((f) => E.supportedVariants(f));
    E.assumeHardwareRules(true);
    expect(E.FAMILIES.map((f) => E.supportedVariants(f)), 'the variants this adapter can run').toEqual(supported);
    expect(E.rulesAssumeHardware()).toBe(true);
    expect(targetWorkgroups()).toBe(256);
    expect(planeWorkgroupSize()).toBe(64);
    expect(planeImagesPerWorkgroup(8, 64)).toBe(1);
    expect(E.heuristicVariant('bnBackward')).toBe('split');
    E.assumeHardwareRules(false);
    expect(E.rulesAssumeHardware()).toBe(false);
    const g = E.gpu();
    expect(targetWorkgroups()).toBe(g.adapter.isFallbackAdapter ? 16 : 256);
    expect(E.heuristicVariant('bnBackward')).toBe(g.adapter.isFallbackAdapter ? 'fused' : 'split');
  });

  test("the seed's DenseNet (naive and memory-efficient blocks): a training step computes the same", async () => {
    E.manualSeed(3);
    const x = E.keep(E.randn([4, 1, 24, 20]));
    const y = E.keep(E.tensor([1, 7, 3, 0]));
    try {
      for (const eff of [false, true]) await compareRules(() => new DenseNet({ growthRate: 8, arch: [3, 2] }).setMemoryEfficient(eff), x, y);
    } finally {
      x.dispose();
      y.dispose();
    }
  });

  test('a small DenseNet-BC (memory-efficient): a training step computes the same', async () => {
    E.manualSeed(4);
    const x = E.keep(E.randn([3, 3, 33, 29]));
    const y = E.keep(E.tensor([4, 0, 2]));
    try {
      await compareRules(() => new DenseNetBC({ growthRate: 4, blockConfig: [3, 2], numInitFeatures: 8, bnSize: 2, numClasses: 5 }), x, y);
    } finally {
      x.dispose();
      y.dispose();
    }
  });
});
