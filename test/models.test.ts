import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { DenseBlock, DenseNet, transitionBlock, densenet121, densenet169, densenet201, DenseNetBC } from '../models/index.js';
import { expectClose, useEngine } from './helpers.js';
import { nd } from './reference/ndarray.js';

useEngine();

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);

describe("the seed's DenseNet (d2l)", () => {
  test("the seed's examples: DenseBlock(2, 10) and transitionBlock(10) shapes", () => {
    const blk = new DenseBlock(2, 10);
    const Y = blk(E.randn([4, 3, 8, 8]));
    expect(Y.shape).toEqual([4, 23, 8, 8]);
    expect(transitionBlock(10)(Y).shape).toEqual([4, 10, 4, 4]);
  });

  test('DenseNet() on a 1x96x96 batch gives [B, 10]; its state-dict keys are d2l\'s, in order', () => {
    const model = new DenseNet();
    const out = E.scope(() => model.predict(E.randn([2, 1, 96, 96])));
    expect(out.shape).toEqual([2, 10]);
    const want = JSON.parse(readFileSync(fixture('d2l_keys.json'), 'utf8')) as string[];
    expect([...model.stateDict().keys()]).toEqual(want);
    expect(want).toContain('net.0.0.weight');
    expect(want).toContain('net.dense_blk1.net.0.0.weight');
    expect(want).toContain('net.tran_blk1.2.weight');
    expect(want).toContain('net.last.4.weight');
    model.dispose();
  });

  test('weights written by PyTorch load and give PyTorch\'s logits, loss, gradients and running stats', async () => {
    const t = await nn.loadSafetensors(readFileSync(fixture('d2l_small.safetensors')));
    const nd32 = async (k: string) => nd([...t.get(k)!.shape], await t.get(k)!.data());
    const model = new DenseNet({ growthRate: 8, arch: [2, 2] });
    const state = new Map([...t].filter(([k]) => k.startsWith('net.')));
    model.loadStateDict(state);
    const x = t.get('input')!;
    const logits = model(x);
    expectClose(await logits.data(), await nd32('logits_train'), { rtol: 1e-4, atol: 1e-5, what: 'train-mode logits' });
    const loss = nn.crossEntropy(logits, t.get('labels')!);
    expectClose(await loss.data(), await nd32('loss'), { rtol: 1e-5, what: 'loss' });
    loss.backward();
    const params = new Map(model.namedParameters());
    for (const k of [...t.keys()].filter((k) => k.startsWith('grad.'))) {
      const name = k.slice(5);
      expectClose(await params.get(name)!.grad!.data(), await nd32(k), { rtol: 1e-3, atol: 1e-5, what: `gradient of ${name}` });
    }
    const sd = model.stateDict();
    for (const k of [...t.keys()].filter((k) => k.startsWith('after.'))) {
      expectClose(await sd.get(k.slice(6))!.data(), await nd32(k), { rtol: 1e-5, atol: 1e-6, what: k });
    }
    // 1 from the fixture's dummy forward, 1 from this step: in the stem's BN and in every fused dense-block BN.
    const counters = [...sd.keys()].filter((k) => k.endsWith('num_batches_tracked'));
    expect(counters.length).toBeGreaterThan(4);
    for (const k of counters) expect(await sd.get(k)!.item(), k).toBe(2);
    const evalLogits = model.predict(x);
    expectClose(await evalLogits.data(), await nd32('logits_eval'), { rtol: 1e-4, atol: 1e-5, what: 'eval-mode logits' });
  });

  test('eval and train mode differ as in PyTorch (running vs batch statistics)', async () => {
    const model = new DenseNet({ growthRate: 4, arch: [1, 1] });
    const x = E.randn([2, 1, 32, 32]);
    const train = await model(x).data();
    const evalOut = await model.predict(x).data();
    expect(Array.from(train)).not.toEqual(Array.from(evalOut));
    expect(model.training).toBe(true);
  });

  test('a training step on a tiny input reduces the loss', async () => {
    E.manualSeed(3);
    const model = new DenseNet({ growthRate: 4, arch: [1, 1] });
    const x = E.keep(E.randn([4, 1, 32, 32]));
    const y = E.keep(E.tensor([0, 1, 2, 3]));
    model(x); // materialise the lazy layers
    const opt = new nn.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const loss = E.scope(() => {
        opt.zeroGrad();
        const l = nn.crossEntropy(model(x), y);
        l.backward();
        opt.step();
        return l;
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    expect(losses[4]).toBeLessThan(losses[0]);
  });

  test('a spatial size that pools below 1x1 is a clear error naming the model and its minimum', () => {
    const model = new DenseNet();
    expect(() => model(E.zeros([2, 1, 8, 8]))).toThrow(/^DenseNet needs inputs of at least 29x29, got 8x8/);
  });
});

describe('DenseNet-BC (torchvision)', () => {
  test('parameter counts equal torchvision\'s', () => {
    for (const [make, n] of [[densenet121, 7_978_856], [densenet169, 14_149_480], [densenet201, 20_013_928]] as const) {
      const m = make();
      expect(m.numParameters()).toBe(n);
      m.dispose();
    }
  });

  test('state-dict keys of densenet121 are torchvision\'s, in order', () => {
    const m = densenet121();
    const want = JSON.parse(readFileSync(fixture('densenet121_keys.json'), 'utf8')) as string[];
    expect([...m.stateDict().keys()]).toEqual(want);
    m.dispose();
  });

  test('weights written by torchvision load and give its logits, loss and gradients', async () => {
    const t = await nn.loadSafetensors(readFileSync(fixture('densenet_bc_small.safetensors')));
    const nd32 = async (k: string) => nd([...t.get(k)!.shape], await t.get(k)!.data());
    const model = new DenseNetBC({ growthRate: 4, blockConfig: [2, 3], numInitFeatures: 8, bnSize: 2, numClasses: 5 });
    model.loadStateDict(new Map([...t].filter(([k]) => k.startsWith('features.') || k.startsWith('classifier.'))));
    const x = t.get('input')!;
    const logits = model(x);
    expectClose(await logits.data(), await nd32('logits_train'), { rtol: 1e-4, atol: 1e-5, what: 'train-mode logits' });
    const loss = nn.crossEntropy(logits, t.get('labels')!);
    expectClose(await loss.data(), await nd32('loss'), { rtol: 1e-5, what: 'loss' });
    loss.backward();
    const params = new Map(model.namedParameters());
    for (const k of [...t.keys()].filter((k) => k.startsWith('grad.'))) {
      expectClose(await params.get(k.slice(5))!.grad!.data(), await nd32(k), { rtol: 1e-3, atol: 1e-5, what: k });
    }
    expectClose(await model.predict(x).data(), await nd32('logits_eval'), { rtol: 1e-4, atol: 1e-5, what: 'eval-mode logits' });
  });

  test('module names are torchvision\'s', () => {
    const m = new DenseNetBC({ blockConfig: [2, 2], numClasses: 3, growthRate: 4, numInitFeatures: 8 });
    const keys = [...m.stateDict().keys()];
    expect(keys.slice(0, 7)).toEqual([
      'features.conv0.weight', 'features.norm0.weight', 'features.norm0.bias', 'features.norm0.running_mean',
      'features.norm0.running_var', 'features.norm0.num_batches_tracked', 'features.denseblock1.denselayer1.norm1.weight',
    ]);
    expect(keys).toContain('features.denseblock2.denselayer2.conv2.weight');
    expect(keys).toContain('features.transition1.conv.weight');
    expect(keys).toContain('features.norm5.running_var');
    expect(keys.slice(-2)).toEqual(['classifier.weight', 'classifier.bias']);
    const out = m(E.randn([2, 3, 32, 32]));
    expect(out.shape).toEqual([2, 3]);
  });
});
