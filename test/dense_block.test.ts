import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { DenseNet, DenseNetBC } from '../models/index.js';
import { blockStepPeak } from '../bench/block_peak.js';
import { expectClose, useEngine } from './helpers.js';
import { nd, type ND } from './reference/ndarray.js';

useEngine();

async function host(t: E.Tensor): Promise<ND> {
  return nd([...t.shape], await t.data());
}

/** Closeness within `rel` of the tensor's largest magnitude (gradients summed in another order). */
function expectSame(a: ND, b: ND, what: string, rel = 1e-5): void {
  const scale = Math.max(...Array.from(b.data, Math.abs), 1e-12);
  expectClose(a, b, { rtol: rel, atol: rel * scale, what });
}

type Model = DenseNet | DenseNetBC;

/** One training step (or an eval forward) of two copies of a model, naive and memory-efficient. */
async function compare(make: () => Model, x: E.Tensor, labels: E.Tensor, training: boolean): Promise<void> {
  const naive = make();
  const eff = make();
  naive.setMemoryEfficient(false);
  eff.setMemoryEfficient(true);
  E.scope(() => void naive.predict(x)); // materialise lazy layers
  E.scope(() => void eff.predict(x));
  eff.loadStateDict(naive.stateDict());
  naive.train(training);
  eff.train(training);
  const outs: ND[] = [];
  const losses: ND[] = [];
  for (const m of [naive, eff]) {
    const r = E.scope(() => {
      const out = m(x);
      const loss = nn.crossEntropy(out, labels);
      loss.backward();
      return { out, loss };
    });
    outs.push(await host(r.out));
    losses.push(await host(r.loss));
  }
  expectSame(outs[1], outs[0], `${training ? 'train' : 'eval'} output`);
  expectSame(losses[1], losses[0], 'loss');
  const gn = new Map(naive.namedParameters());
  for (const [name, p] of eff.namedParameters()) {
    expectSame(await host(p.grad!), await host(gn.get(name)!.grad!), `gradient of ${name}`);
  }
  const bn = naive.stateDict();
  for (const [name, t] of eff.stateDict()) expectSame(await host(t), await host(bn.get(name)!), `state ${name}`);
  naive.dispose();
  eff.dispose();
}

describe('memory-efficient dense blocks compute the same function as the naive path', () => {
  test("the seed's DenseNet, train and eval", async () => {
    E.manualSeed(1);
    const x = E.randn([3, 1, 29, 31]);
    const y = E.tensor([1, 7, 3]);
    const make = () => new DenseNet({ growthRate: 8, arch: [3, 2] });
    await compare(make, x, y, true);
    await compare(make, x, y, false);
  });

  test('a small DenseNet-BC, train and eval', async () => {
    E.manualSeed(2);
    const x = E.randn([2, 3, 33, 35]);
    const y = E.tensor([4, 0]);
    const make = () => new DenseNetBC({ growthRate: 4, blockConfig: [3, 2], numInitFeatures: 8, bnSize: 2, numClasses: 5 });
    await compare(make, x, y, true);
    await compare(make, x, y, false);
  });

  test('the input gradient of a block (x requires grad)', async () => {
    const x0 = E.randn([2, 1, 16, 16]);
    const blocks = [false, true].map((eff) => new DenseNet({ growthRate: 4, arch: [2] }).setMemoryEfficient(eff));
    for (const b of blocks) E.scope(() => void b.predict(x0));
    blocks[1].loadStateDict(blocks[0].stateDict());
    const grads: ND[] = [];
    for (const m of blocks) {
      const x = E.randn([2, 1, 16, 16], { generator: new E.Generator(5) });
      x.requiresGrad = true;
      E.scope(() => E.sum(E.square(m(x))).backward());
      grads.push(await host(x.grad!));
    }
    expectSame(grads[1], grads[0], 'input gradient');
  });
});

describe('NaN propagates through the fused BN-ReLU prologue as through relu', () => {
  // The memory-efficient block applies its BN-ReLUs inside the conv kernels (prologue): a NaN there must
  // stay NaN as relu(NaN) does on the naive path, not become the 0 that WGSL's max() may give.
  test("a NaN in a dense layer's BN weight makes every output NaN in both modes, train and eval", async () => {
    E.manualSeed(8);
    const x = E.randn([2, 1, 32, 32]);
    const make = () => new DenseNet({ growthRate: 4, arch: [2, 2] });
    for (const training of [true, false]) {
      for (const efficient of [false, true]) {
        const m = make().setMemoryEfficient(efficient);
        E.scope(() => void m.predict(x));
        const key = 'net.dense_blk1.net.1.0.weight'; // the second layer's BN
        const w = await m.stateDict().get(key)!.data();
        w[1] = NaN;
        m.loadStateDict({ [key]: E.tensor(w) }, { strict: false });
        m.train(training);
        const out = await E.scope(() => m(x)).data();
        expect(Array.from(out).every(Number.isNaN), `${efficient ? 'memory-efficient' : 'naive'}, ${training ? 'train' : 'eval'}: ${Array.from(out.slice(0, 4))}`).toBe(true);
        m.dispose();
      }
    }
  });
});

describe('memory', () => {
  // Parameters are frozen so the peak is activation memory (weights grow with depth squared anyway).
  test('the peak of forward + backward grows linearly with depth (memory-efficient), faster than linearly (naive)', async () => {
    const depths = [4, 8, 16, 32];
    const peaks: Record<string, number[]> = { naive: [], efficient: [] };
    for (const L of depths) {
      peaks.naive.push(await blockStepPeak('d2l', L, 4, [16, 16], false, false));
      peaks.efficient.push(await blockStepPeak('d2l', L, 4, [16, 16], true, false));
    }
    const perLayer = (p: number[]) => p.slice(1).map((v, i) => (v - p[i]) / (depths[i + 1] - depths[i]));
    const eff = perLayer(peaks.efficient);
    const naive = perLayer(peaks.naive);
    const ctx = JSON.stringify(peaks);
    // memory-efficient: the same bytes per added layer, within 10%
    for (const v of eff) expect(Math.abs(v / eff[eff.length - 1] - 1), ctx).toBeLessThan(0.1);
    // naive: each added layer costs more than the one before (quadratic growth)
    expect(naive[2], ctx).toBeGreaterThan(1.5 * naive[0]);
    expect(peaks.efficient[3], ctx).toBeLessThan(peaks.naive[3] / 2);
  });

  test('no leak: live bytes after step 2 and after step 50 are equal', async () => {
    E.manualSeed(6);
    const model = new DenseNet({ growthRate: 4, arch: [2, 2], memoryEfficient: true });
    const x = E.keep(E.randn([4, 1, 32, 32]));
    const y = E.keep(E.tensor([0, 1, 2, 3]));
    E.scope(() => void model(x));
    const opt = new nn.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const step = () =>
      E.scope(() => {
        opt.zeroGrad();
        nn.crossEntropy(model(x), y).backward();
        opt.step();
      });
    step();
    step();
    await E.sync();
    const after2 = E.memory().liveBytes;
    for (let i = 2; i < 50; i++) step();
    await E.sync();
    expect(E.memory().liveBytes).toBe(after2);
  });
});
