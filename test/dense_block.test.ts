import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { DenseBlock, DenseNet, DenseNetBC, transitionBlock } from '../models/index.js';
import { blockStepPeak } from '../bench/block_peak.js';
import { expectClose, useEngine } from './helpers.js';
import { nd, type ND } from './reference/ndarray.js';

useEngine();

async function host(t: E.Tensor): Promise<ND> {
  return nd([...t.shape], await t.data());
}

/**
 * Closeness within `rel` of the tensor's largest magnitude, or of `floor` where that is larger
 * (gradients summed in another order).
 */
function expectSame(a: ND, b: ND, what: string, rel = 1e-5, floor = 1e-12): void {
  const scale = Math.max(...Array.from(b.data, Math.abs), floor);
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
  // A gradient that is zero but for rounding (a conv bias right before a batch norm; the gamma of a
  // batch norm with beta 0 whose scale the next batch norm undoes) is float32 noise, whatever the order
  // of the sums: every gradient is compared within rel of at least a tenth of the model's largest one.
  let largest = 0;
  for (const [, p] of naive.namedParameters()) largest = Math.max(largest, ...Array.from((await host(p.grad!)).data, Math.abs));
  for (const [name, p] of eff.namedParameters()) {
    expectSame(await host(p.grad!), await host(gn.get(name)!.grad!), `gradient of ${name}`, 1e-5, largest / 10);
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

describe('FLOP records', () => {
  // The benchmarks' GFLOP/s come from these records: the fused paths must record what the modules' own
  // forwards would (before, the memory-efficient d2l block left out its ReLUs, and every fused BN in eval).
  test('the same FLOP counts for naive and memory-efficient blocks, train and eval, d2l and DenseNet-BC', () => {
    const x = E.randn([2, 1, 40, 40]);
    const makers = [
      () => new DenseNet({ growthRate: 8, arch: [2, 2] }),
      () => new DenseNetBC({ growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2, numClasses: 5, inChannels: 1 }),
    ];
    for (const make of makers) {
      for (const training of [true, false]) {
        const counts = [false, true].map((efficient) => {
          const m = make().setMemoryEfficient(efficient);
          E.scope(() => void m(x));
          m.train(training);
          const c = nn.countFlops(() => E.scope(() => void m(x)));
          m.dispose();
          return c;
        });
        expect(counts[1], `${training ? 'train' : 'eval'}`).toEqual(counts[0]);
      }
    }
    x.dispose();
  });
});

describe("a block's tail (the transition's BN-ReLU-conv inside the op)", () => {
  // Parameters of one BN-ReLU-conv stage on c channels to `out`, from a seeded generator.
  function stage(gen: E.Generator, c: number, out: number, k: number, bias: boolean): E.DenseStage {
    const leaf = (t: E.Tensor) => {
      t.requiresGrad = true;
      return E.keep(t);
    };
    return {
      norm: {
        gamma: leaf(E.addScalar(E.rand([c], { generator: gen }), 0.5)),
        beta: leaf(E.randn([c], { generator: gen })),
        runningMean: E.keep(E.randn([c], { generator: gen })),
        runningVar: E.keep(E.addScalar(E.rand([c], { generator: gen }), 0.5)),
        numBatchesTracked: E.keep(E.zeros([1])),
      },
      conv: { weight: leaf(E.mulScalar(E.randn([out, c, k, k], { generator: gen }), 0.3)), bias: bias ? leaf(E.randn([out], { generator: gen })) : null },
    };
  }

  test('equals the block followed by batchNormRelu2d and conv2d: output, every gradient, running statistics; train and eval', async () => {
    for (const [training, k, bias, pool] of [[true, 1, true, false], [true, 3, false, false], [false, 1, false, false], [true, 1, true, true], [false, 1, false, true]] as const) {
      const run = (fused: boolean) => {
        const gen = new E.Generator(11);
        const x = E.keep(E.randn([2, 5, 7, 6], { generator: gen }));
        x.requiresGrad = true;
        const layers = [0, 1].map((i) => ({ stages: [stage(gen, 5 + 3 * i, 3, 3, i === 0)] }));
        const tail = stage(gen, 11, 4, k, bias);
        const dy = E.keep(E.randn(pool ? [2, 4, 3, 3] : [2, 4, 7, 6], { generator: gen }));
        const out = E.scope(() => {
          const o = { training, momentum: 0.1, eps: 1e-5 };
          let y: E.Tensor;
          const tailPool = pool ? { kernel: 2, stride: 2 } : null;
          if (fused) y = E.denseBlock(x, layers, { ...o, tail, tailPool });
          else {
            const b = E.denseBlock(x, layers, o);
            const t = tail.norm;
            const a = E.batchNormRelu2d(b, t.gamma, t.beta, t.runningMean, t.runningVar, { ...o, numBatchesTracked: t.numBatchesTracked });
            y = E.conv2d(a, tail.conv.weight, tail.conv.bias, { padding: k >> 1 });
            if (tailPool) y = E.avgPool2d(y, tailPool);
          }
          E.sum(E.mul(y, dy)).backward();
          return y;
        });
        const all = [x, ...layers.flatMap((l) => l.stages), tail].flatMap((s) =>
          s instanceof E.Tensor ? [s] : [s.norm.gamma, s.norm.beta, s.conv.weight, ...(s.conv.bias ? [s.conv.bias] : []), s.norm.runningMean, s.norm.runningVar, s.norm.numBatchesTracked!],
        );
        return { out, all };
      };
      const [a, b] = [run(false), run(true)];
      const what = `${training ? 'train' : 'eval'}, ${k}x${k} tail${bias ? ' with bias' : ''}${pool ? ', pooled' : ''}`;
      expectSame(await host(b.out), await host(a.out), `${what}: output`);
      for (let i = 0; i < a.all.length; i++) {
        const [ta, tb] = [a.all[i], b.all[i]];
        expectSame(await host(tb), await host(ta), `${what}: tensor ${i}`);
        if (ta.requiresGrad) expectSame(await host(tb.grad!), await host(ta.grad!), `${what}: gradient ${i}`);
      }
    }
  });

  test('a tail that does not read every channel of the block, has an even kernel or a pooling that does not fit, is a clear error', () => {
    const gen = new E.Generator(3);
    const x = E.randn([2, 4, 5, 5], { generator: gen });
    const layers = [{ stages: [stage(gen, 4, 2, 3, false)] }];
    expect(() => E.denseBlock(x, layers, { training: true, tail: stage(gen, 4, 3, 1, false) })).toThrow(/tail reads all 6 channels/);
    expect(() => E.denseBlock(x, layers, { training: true, tail: stage(gen, 6, 3, 2, false) })).toThrow(/tail needs an odd kernel/);
    expect(() => E.denseBlock(x, layers, { training: true, tailPool: { kernel: 2 } })).toThrow(/tailPool pools the tail: give a tail too/);
    expect(() => E.denseBlock(x, layers, { training: true, tail: stage(gen, 6, 3, 1, false), tailPool: { kernel: 9 } })).toThrow(/avgPool2d \(the tail of denseBlock\): the kernel \[9, 9\]/);
  });

  test('a Sequential runs a memory-efficient block and the transition after it fused, and only when the fused op computes the same', () => {
    const block = () => {
      const b = new DenseBlock(2, 4);
      E.scope(() => void b(E.randn([2, 3, 8, 8])));
      return b;
    };
    const x = E.randn([2, 3, 8, 8]);
    const tries = (b: DenseBlock, t: nn.Module) => E.scope(() => b.fuseForward(x, [t]) !== null);
    expect(tries(block(), transitionBlock(5))).toBe(true);
    const naive = block();
    naive.memoryEfficient = false;
    expect(tries(naive, transitionBlock(5))).toBe(false);
    // A strided conv, another eps, a ReLU with a forward of its own, or no conv third: run one by one.
    expect(tries(block(), new nn.Sequential(new nn.LazyBatchNorm2d(), new nn.ReLU(), new nn.LazyConv2d(5, 1, { stride: 2 })))).toBe(false);
    expect(tries(block(), new nn.Sequential(new nn.BatchNorm2d(11, { eps: 1e-3 }), new nn.ReLU(), new nn.LazyConv2d(5, 1)))).toBe(false);
    class LeakyRelu extends nn.ReLU {
      override forward(t: E.Tensor): E.Tensor {
        return E.relu(t);
      }
    }
    expect(tries(block(), new nn.Sequential(new nn.LazyBatchNorm2d(), new LeakyRelu(), new nn.LazyConv2d(5, 1)))).toBe(false);
    expect(tries(block(), new nn.Sequential(new nn.LazyBatchNorm2d(), new nn.ReLU(), new nn.AvgPool2d(2)))).toBe(false);
    // A transition in another mode than the block (the block's mode is the one the fused op would use).
    expect(tries(block(), transitionBlock(5).eval())).toBe(false);
  });
});

describe('NaN propagates through the fused BN-ReLU prologue as through relu', () => {
  // The memory-efficient block applies its BN-ReLUs inside the conv kernels (prologue): a NaN there must
  // stay NaN as relu(NaN) does on the naive path, not become the 0 that WGSL's max() may give.
  // The second dense layer's BN, and the transition's (its BN-ReLU is the pooling's prologue there).
  test.each(['net.dense_blk1.net.1.0.weight', 'net.tran_blk1.0.weight'])("a NaN in a BN weight (%s) makes every output NaN in both modes, train and eval", async (key) => {
    E.manualSeed(8);
    const x = E.randn([2, 1, 32, 32]);
    const make = () => new DenseNet({ growthRate: 4, arch: [2, 2] });
    for (const training of [true, false]) {
      for (const efficient of [false, true]) {
        const m = make().setMemoryEfficient(efficient);
        E.scope(() => void m.predict(x));
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
