// The README's "Training your own loop" example, run as written: the code between the README markers
// below is the README's code block verbatim (the README's imports name the package's entry points:
// 'densenet-webgpu', 'densenet-webgpu/nn', 'densenet-webgpu/data', 'densenet-webgpu/models'). When the
// README has that section, the last test checks that its block and this file agree.

import { readFileSync } from 'node:fs';
import { expect, test, vi } from 'vitest';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import * as data from '../data/index.js';
import * as models from '../models/index.js';
import { useEngine } from './helpers.js';

useEngine();

async function example(): Promise<Uint8Array> {
  // README:begin
  // Synthetic data: 96 grey 28x28 images, class 1 brighter than class 0. For Fashion-MNIST in Node:
  // const trainSet = loadFashionMNIST({ train: true }) (from 'densenet-webgpu/data/node').
  const g = new E.Generator(1);
  const N = 96;
  const pixels = new Float32Array(N * 28 * 28);
  const classes = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    classes[i] = i % 2;
    for (let j = 0; j < 28 * 28; j++) pixels[i * 784 + j] = 0.6 * g.uniform() + 0.4 * classes[i];
  }
  const trainSet = new data.TensorDataset([{ data: pixels, shape: [N, 1, 28, 28] }, { data: classes, shape: [N] }]);

  E.manualSeed(0);
  const loader = new data.DataLoader(trainSet, {
    batchSize: 8,
    shuffle: true,
    dropLast: true,
    transforms: [data.resize(32), data.randomCrop(32, { padding: 2 }), data.randomHorizontalFlip(), data.normalize([0.5], [0.5])],
    expectShape: [1, 32, 32],
  });
  const model = new models.DenseNet({ numChannels: 16, growthRate: 8, arch: [2, 2], numClasses: 2 });
  model.predict(E.zeros([1, 1, 32, 32])).dispose(); // lazy layers infer their sizes

  // No weight decay on biases and batch-norm parameters (the 1-D ones).
  const params = model.parameters();
  const opt = new nn.AdamW(
    [{ params: params.filter((p) => p.ndim > 1) }, { params: params.filter((p) => p.ndim <= 1), weightDecay: 0 }],
    { lr: 3e-3 },
  );
  // One epoch of linear warm-up, then cosine decay, stepped once per batch.
  const epochs = 3;
  const steps = loader.length;
  const sched = new nn.SequentialLR(opt, [new nn.LinearLR(opt, 0.1, 1, steps), new nn.CosineAnnealingLR(opt, (epochs - 1) * steps)], [steps]);

  for (let epoch = 0; epoch < epochs; epoch++) {
    let total = 0;
    for (const [x, y] of loader) {
      const loss = E.scope(() => {
        opt.zeroGrad();
        const l = nn.crossEntropy(model(x), y, { labelSmoothing: 0.1 });
        l.backward();
        opt.step();
        return l;
      });
      sched.step();
      total += await loss.item();
      loss.dispose();
    }
    console.log(`epoch ${epoch + 1}: loss ${(total / steps).toFixed(3)}, lr ${sched.getLastLr()[0].toExponential(2)}`);
  }

  // Accuracy with the GPU's argmax, on batches without augmentation.
  const evalLoader = new data.DataLoader(trainSet, { batchSize: 32, transforms: [data.resize(32), data.normalize([0.5], [0.5])] });
  let correct = 0;
  for (const [x, y] of evalLoader) {
    const pred = E.scope(() => model.predict(x).argmax(1));
    const [p, t] = [await pred.data(), await y.data()];
    p.forEach((c, i) => (correct += c === t[i] ? 1 : 0));
    pred.dispose();
  }
  console.log(`accuracy ${correct / trainSet.length}`);

  // One safetensors checkpoint: the model, the optimiser (PyTorch's layout) and the schedule.
  const { tensors, metadata } = nn.optimizerStateToTensors(opt.stateDict());
  const checkpoint = new Map([...model.stateDict(), ...tensors]);
  const bytes = nn.encodeSafetensors(await nn.toHostTensors(checkpoint), { ...metadata, scheduler: JSON.stringify(sched.stateDict()) });
  // README:end
  opt.dispose();
  model.dispose();
  return bytes;
}

const readmeRegion = (src: string) => src.slice(src.indexOf('// README:begin') + '// README:begin'.length, src.indexOf('  // README:end')).trim();

test('the training-loop example learns the synthetic task and writes one checkpoint with the model, the optimiser and the schedule', async () => {
  const log = vi.spyOn(console, "log");
  const bytes = await example();
  const lines = log.mock.calls.map((c) => String(c[0]));
  log.mockRestore();
  const losses = lines.filter((l) => l.startsWith('epoch')).map((l) => Number(/loss ([\d.]+)/.exec(l)![1]));
  expect(losses.length).toBe(3);
  expect(losses[2]).toBeLessThan(losses[0]);
  expect(Number(/accuracy ([\d.]+)/.exec(lines.at(-1)!)![1])).toBeGreaterThanOrEqual(0.9);
  const { tensors, metadata } = nn.decodeSafetensors(bytes);
  expect([...tensors.keys()].some((k) => k.startsWith('optimizer.state.0.exp_avg'))).toBe(true);
  expect(JSON.parse(metadata.scheduler)._milestones).toEqual([12]);
}, 120_000);

test("the README's code block is this file's example, verbatim ", () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const at = readme.indexOf('## Training your own loop');
  expect(at, 'README.md has a "Training your own loop" section').toBeGreaterThan(-1);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at))![1];
  const body = block.split('\n').filter((l) => !l.startsWith('import ')).join('\n').trim();
  const mine = readmeRegion(readFileSync(new URL(import.meta.url), 'utf8'))
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n');
  expect(body).toBe(mine);
});
