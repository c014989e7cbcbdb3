import { describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as E from '../engine/index.js';
import { decodeSafetensors } from '../nn/index.js';
import { planTrain, runTrain } from '../bench/train.js';
import type { Flags } from '../bench/args.js';
import { Reporter } from '../bench/report.js';
import { useEngine } from './helpers.js';

useEngine();

function idx(shape: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  head.set([0, 0, 8, shape.length]);
  shape.forEach((d, i) => new DataView(head.buffer).setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** A tiny synthetic Fashion-MNIST: class c is a bright 4x4 square at a class-dependent place, plus noise. */
function syntheticDataset(n: number, seed: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-'));
  const g = new E.Generator(seed);
  const make = (count: number) => {
    const images = new Uint8Array(count * 28 * 28);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const c = i % 10;
      labels[i] = c;
      const r0 = 2 + 6 * Math.floor(c / 4);
      const c0 = 2 + 6 * (c % 4);
      for (let p = 0; p < 784; p++) images[i * 784 + p] = Math.floor(g.uniform() * 40);
      for (let r = 0; r < 4; r++) for (let q = 0; q < 4; q++) images[i * 784 + (r0 + r) * 28 + c0 + q] = 250;
    }
    return { images, labels };
  };
  const tr = make(n);
  const te = make(40);
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx([n, 28, 28], tr.images)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([n], tr.labels));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([40, 28, 28], te.images));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx([40], te.labels)));
  return dir;
}

const quiet = new Reporter(true);
quiet.progress = () => {};
quiet.record = () => {};
const train = (f: Flags) => runTrain(planTrain(f), quiet);
const small = { arch: '1,1', growth: 4, size: 16, batch: 20, lr: 0.1, momentum: 0.9, 'log-every': 100 };

function params(path: string): Map<string, Float32Array> {
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(path)));
  return new Map([...tensors].map(([k, t]) => [k, t.data]));
}

describe('training on Fashion-MNIST files', () => {
  const data = syntheticDataset(100, 1);

  test('a few epochs on a tiny synthetic set drive the loss down and write the log, curves and checkpoint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    await train({ ...small, data, out, epochs: 4 });
    const log = JSON.parse(readFileSync(join(out, 'train-log.json'), 'utf8'));
    const losses = log.epochs.map((e: { loss: number }) => e.loss);
    expect(losses[3]).toBeLessThan(losses[0]);
    expect(log.summary.testAcc).toBeGreaterThanOrEqual(0);
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toContain('<svg');
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
  });

  test('resuming from a checkpoint gives the same parameters and optimiser state as training straight through', async () => {
    const a = mkdtempSync(join(tmpdir(), 'train-'));
    await train({ ...small, data, out: a, epochs: 2 });
    const b = mkdtempSync(join(tmpdir(), 'train-'));
    await train({ ...small, data, out: b, epochs: 1 });
    await train({ ...small, data, out: b, epochs: 2, resume: join(b, 'checkpoint.safetensors') });
    const pa = params(join(a, 'checkpoint.safetensors'));
    const pb = params(join(b, 'checkpoint.safetensors'));
    expect([...pb.keys()]).toEqual([...pa.keys()]);
    expect([...pa.keys()].some((k) => k.startsWith('optimizer.momentum_buffer.'))).toBe(true);
    for (const [k, v] of pa) expect(Array.from(pb.get(k)!), k).toEqual(Array.from(v));
  });

  test('a NaN loss stops the run naming the step, and keeps the last good checkpoint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    const ck = join(out, 'checkpoint.safetensors');
    await expect(train({ ...small, data, out, epochs: 3, 'inject-nan-at': 7 })).rejects.toThrow(
      /loss is NaN at epoch 2, step 3 \(global step 7\).*last good checkpoint is .*checkpoint\.safetensors/,
    );
    const meta = decodeSafetensors(new Uint8Array(readFileSync(ck))).metadata;
    expect(meta.epoch).toBe('1');
  });
});
