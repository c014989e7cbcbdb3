// A tiny synthetic Fashion-MNIST in IDX files, for the training and CLI tests.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Generator } from '../engine/random.js';

export function idx(shape: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  head.set([0, 0, 8, shape.length]);
  shape.forEach((d, i) => new DataView(head.buffer).setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/**
 * A folder of IDX files: class c is a bright 4x4 square at a class-dependent place, plus noise.
 * `n` training and `nTest` test images of `side` x `side` pixels.
 */
export function syntheticDataset(n: number, seed: number, nTest = 40, side = 28): string {
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-'));
  const g = new Generator(seed);
  const hw = side * side;
  const make = (count: number) => {
    const images = new Uint8Array(count * hw);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const c = i % 10;
      labels[i] = c;
      const r0 = 2 + 6 * Math.floor(c / 4);
      const c0 = 2 + 6 * (c % 4);
      for (let p = 0; p < hw; p++) images[i * hw + p] = Math.floor(g.uniform() * 40);
      for (let r = 0; r < 4 && r0 + r < side; r++) for (let q = 0; q < 4 && c0 + q < side; q++) images[i * hw + (r0 + r) * side + c0 + q] = 250;
    }
    return { images, labels };
  };
  const tr = make(n);
  const te = make(nTest);
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx([n, side, side], tr.images)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([n], tr.labels));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([nTest, side, side], te.images));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idx([nTest], te.labels)));
  return dir;
}
