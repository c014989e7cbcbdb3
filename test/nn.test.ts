import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { expectClose, useEngine } from './helpers.js';
import { nd } from './reference/ndarray.js';

useEngine();

describe('Module', () => {
  test('dotted names, Sequential numbering, addModule names, callable modules', async () => {
    const net = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU());
    net.addModule('head', new nn.Linear(4, 2));
    expect(net.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', 'head.weight', 'head.bias']);
    const y = net(E.ones([5, 3]));
    expect(y.shape).toEqual([5, 2]);
    expect(net.children().length).toBe(3);
  });

  test('Sequential runs BatchNorm2d then ReLU as one fused op: same values and gradients, fewer dispatches', async () => {
    class LeakyReLU extends nn.ReLU {
      override forward(x: E.Tensor): E.Tensor {
        return E.sub(E.relu(x), E.mulScalar(E.relu(E.neg(x)), 0.1));
      }
    }
    const x = E.randn([3, 4, 5, 6]);
    const step = async (bn: nn.BatchNorm2d, forward: (x: E.Tensor) => E.Tensor) => {
      const before = E.dispatches();
      const y = forward(x);
      const dispatches = E.dispatches() - before;
      E.mean(E.square(y)).backward();
      const out = await Promise.all([y, bn.weight.grad!, bn.bias.grad!, bn.runningMean].map(async (t) => Array.from(await t.data())));
      y.dispose();
      return { out, dispatches };
    };
    const bn1 = new nn.BatchNorm2d(4);
    const fused = await step(bn1, (t) => new nn.Sequential(bn1, new nn.ReLU()).forward(t));
    const bn2 = new nn.BatchNorm2d(4);
    const apart = await step(bn2, (t) => E.relu(bn2.forward(t)));
    expect(fused.out).toEqual(apart.out);
    expect(fused.dispatches).toBe(apart.dispatches - 1);
    // A ReLU subclass with a forward of its own runs as written.
    const bn3 = new nn.BatchNorm2d(4);
    const leaky = await step(bn3, (t) => new nn.Sequential(bn3, new LeakyReLU()).forward(t));
    expect(leaky.out[0].some((v) => v < 0)).toBe(true);
    x.dispose();
  });

  test('Sequential runs BatchNorm2d, ReLU and MaxPool2d as one fused op (the pooling reads the BN-ReLU): same values, gradients and running statistics', async () => {
    class MyPool extends nn.MaxPool2d {
      override forward(x: E.Tensor): E.Tensor {
        return E.maxPool2d(x, { kernel: 2 });
      }
    }
    for (const training of [true, false]) {
      const x = E.randn([3, 4, 9, 7], { generator: new E.Generator(4) });
      const run = async (pool: nn.MaxPool2d, fused: boolean) => {
        const bn = new nn.BatchNorm2d(4);
        bn.loadStateDict({ weight: E.randn([4], { generator: new E.Generator(5) }), running_var: E.full([4], 0.7) }, { strict: false });
        bn.train(training);
        const before = E.dispatches();
        const y = fused ? new nn.Sequential(bn, new nn.ReLU(), pool).forward(x) : pool.forward(E.relu(bn.forward(x)));
        const dispatches = E.dispatches() - before;
        E.mean(E.square(y)).backward();
        const out = await Promise.all([y, bn.weight.grad!, bn.bias.grad!, bn.runningMean, bn.runningVar].map(async (t) => Array.from(await t.data())));
        y.dispose();
        return { out, dispatches, shape: y.shape };
      };
      const fused = await run(new nn.MaxPool2d(3, { stride: 2, padding: 1 }), true);
      const apart = await run(new nn.MaxPool2d(3, { stride: 2, padding: 1 }), false);
      expect(fused.shape).toEqual([3, 4, 5, 4]);
      fused.out.forEach((v, i) => expectClose(nd([v.length], v), nd([v.length], apart.out[i]), { rtol: 1e-5, atol: 1e-6, what: `${training ? 'train' : 'eval'} ${i}` }));
      // No BN output and no ReLU pass: two dispatches fewer (the statistics, and in training the running
      // statistics, come from the dispatch that makes the prologue).
      expect(fused.dispatches, `${training ? 'train' : 'eval'}`).toBe(apart.dispatches - 2);
      // A pooling with a forward of its own runs as written (BN and ReLU still fused with each other).
      const mine = await run(new MyPool(2), true);
      expect(mine.shape).toEqual([3, 4, 4, 3]);
      x.dispose();
    }
  });

  test('buffers, train/eval, apply order, zeroGrad', async () => {
    const bn = new nn.BatchNorm2d(3);
    const seq = new nn.Sequential(new nn.Conv2d(2, 3, 3, { padding: 1 }), bn);
    expect(seq.namedBuffers().map(([n]) => n)).toEqual(['1.running_mean', '1.running_var', '1.num_batches_tracked']);
    seq.eval();
    expect(bn.training).toBe(false);
    seq.train();
    expect(bn.training).toBe(true);
    const order: string[] = [];
    seq.apply((m) => order.push(m.constructor.name));
    expect(order).toEqual(['Conv2d', 'BatchNorm2d', 'Sequential']);
    const loss = E.mean(seq(E.randn([2, 2, 5, 5])));
    loss.backward();
    expect(seq.parameters().every((p) => p.grad !== null)).toBe(true);
    seq.zeroGrad();
    expect(seq.parameters().every((p) => p.grad === null)).toBe(true);
  });

  test('state dict order and keys are PyTorch\'s: own params, own buffers, then children', () => {
    const seq = new nn.Sequential(new nn.BatchNorm2d(2), new nn.Conv2d(2, 3, 1, { bias: false }));
    expect([...seq.stateDict().keys()]).toEqual([
      '0.weight', '0.bias', '0.running_mean', '0.running_var', '0.num_batches_tracked', '1.weight',
    ]);
  });

  test('lazy layers infer their input size at the first call; their parameters are an error before', () => {
    const conv = new nn.LazyConv2d(4, 3, { padding: 1 });
    expect(() => conv.parameters()).toThrow(/not initialised yet/);
    expect(() => conv.weight).toThrow(/not initialised yet/);
    conv(E.zeros([1, 5, 6, 6]));
    expect(conv.weight.shape).toEqual([4, 5, 3, 3]);
    const lin = new nn.LazyLinear(2);
    lin(E.zeros([3, 7]));
    expect(lin.weight.shape).toEqual([2, 7]);
    const bn = new nn.LazyBatchNorm2d();
    bn(E.randn([2, 6, 3, 3]));
    expect(bn.runningMean.shape).toEqual([6]);
  });

  test('the wrong number of input channels for a built layer names the module path and the shapes', () => {
    const seq = new nn.Sequential(new nn.Conv2d(3, 4, 3));
    seq.nameModules('net');
    expect(() => seq(E.zeros([1, 2, 8, 8]))).toThrow(/Conv2d\(3, 4.*at 'net\.0'.*2 channels, expected 3.*\[1, 2, 8, 8\]/);
    const lin = new nn.Linear(4, 2);
    expect(() => lin(E.zeros([3, 5]))).toThrow(/5 features, expected 4/);
  });

  test('loadStateDict: strict checks, shape mismatches, and values copied', async () => {
    const a = new nn.Linear(3, 2);
    const b = new nn.Linear(3, 2);
    b.loadStateDict(a.stateDict());
    expect(Array.from(await b.weight.data())).toEqual(Array.from(await a.weight.data()));
    expect(() => b.loadStateDict({ weight: E.zeros([2, 3]) })).toThrow(/missing keys: bias/);
    expect(() => b.loadStateDict({ weight: E.zeros([2, 3]), bias: E.zeros([2]), extra: E.zeros([1]) })).toThrow(/unexpected keys: extra/);
    expect(() => b.loadStateDict({ weight: E.zeros([3, 3]), bias: E.zeros([2]) })).toThrow(/'weight' has shape \[3, 3\].*expects \[2, 3\]/);
    const r = b.loadStateDict({ weight: E.ones([2, 3]) }, { strict: false });
    expect(r.missing).toEqual(['bias']);
    expect(Array.from(await b.weight.data())).toEqual([1, 1, 1, 1, 1, 1]);
  });

  test('a lazy model materialises from a loaded state dict', () => {
    const lazy = new nn.Sequential(new nn.LazyConv2d(4, 3), new nn.LazyBatchNorm2d());
    const eager = new nn.Sequential(new nn.Conv2d(2, 4, 3), new nn.BatchNorm2d(4));
    lazy.loadStateDict(eager.stateDict());
    expect((lazy.children()[0] as nn.Conv2d).weight.shape).toEqual([4, 2, 3, 3]);
  });
});

describe('SGD', () => {
  test('one step with momentum, weight decay and nesterov matches the hand-computed update', async () => {
    const p = E.keep(E.tensor([1, -2]));
    p.requiresGrad = true;
    const opt = new nn.SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true });
    // loss = sum(p^2) / 2 -> grad = p
    let ref = [1, -2];
    let buf: number[] | null = null;
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      E.scope(() => E.mulScalar(E.sum(E.square(p)), 0.5).backward());
      opt.step();
      const d = ref.map((v) => v + 0.01 * v);
      buf = buf ? buf.map((b, i) => 0.9 * b + d[i]) : d;
      const upd = d.map((v, i) => v + 0.9 * buf![i]);
      ref = ref.map((v, i) => v - 0.1 * upd[i]);
    }
    const got = Array.from(await p.data());
    got.forEach((v, i) => expect(v).toBeCloseTo(ref[i], 6));
  });

  test('bad hyper-parameters are clear errors', () => {
    expect(() => new nn.SGD([], { lr: -1 })).toThrow(/lr must be/);
    expect(() => new nn.SGD([], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
  });
});
