// densenet-webgpu/data: IDX parsing, datasets, the DataLoader's epochs and GPU transforms.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import * as D from '../data/index.js';
import { loadFashionMNIST, loadIdxDataset, readIdxFile } from '../data/node.js';
import { useEngine } from './helpers.js';

useEngine();

/** IDX bytes of unsigned bytes with the given shape. */
function idx(shape: number[], data: ArrayLike<number>): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  head.set([0, 0, 8, shape.length]);
  const dv = new DataView(head.buffer);
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(Uint8Array.from(data), head.length);
  return out;
}

/** N images of H x W whose pixel 0 is the sample index, labels i % 10. */
function synthetic(n: number, h = 4, w = 5): D.ImageSet {
  const images = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) for (let j = 0; j < h * w; j++) images[i * h * w + j] = j === 0 ? i : (i + j) % 256;
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), count: n, height: h, width: w };
}

describe('IDX', () => {
  test('parses, decodes gzip, and names the file in every error', async () => {
    const bytes = idx([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(D.parseIdx(bytes, 'a')).toEqual({ shape: [2, 3], data: Uint8Array.from([1, 2, 3, 4, 5, 6]) });
    expect((await D.decodeIdx(gzipSync(bytes), 'a.gz')).shape).toEqual([2, 3]);
    expect(() => D.parseIdx(gzipSync(bytes), 'a.gz')).toThrow(/a.gz: the data is gzipped; decompress it first/);
    await expect(D.decodeIdx(gzipSync(bytes).subarray(0, 12), 'cut.gz')).rejects.toThrow(/cut.gz: the gzip stream is corrupt or truncated/);
    expect(() => D.parseIdx(bytes.subarray(0, 10), 'x')).toThrow(/x: truncated inside the header/);
    expect(() => D.parseIdx(bytes.subarray(0, 14), 'x')).toThrow(/x: truncated: the header promises 6 bytes/);
    expect(() => D.parseIdx(idx([2], [1, 2]), 'lab', 3)).toThrow(/lab: wrong number of dimensions: the header says 1, expected 3/);
    const fm = await D.FashionMNIST.fromBuffers(Uint8Array.from(gzipSync(idx([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]))).buffer, idx([2], [9, 0]));
    expect([fm.length, fm.label(0), fm.classes[fm.label(0)]]).toEqual([2, 9, 'Ankle boot']);
    await expect(D.FashionMNIST.fromBuffers(idx([2], [1, 2]), idx([2], [1, 2]))).rejects.toThrow(/FashionMNIST images: wrong number of dimensions: the header says 1, expected 3/);
    expect(() => D.imageSet(D.parseIdx(idx([2, 1, 1], [0, 0]), 'i'), D.parseIdx(idx([2], [3, 12]), 'l'), ['i', 'l'])).toThrow(/l: label 12 at index 1 is not a class 0-9/);
  });

  test('Node: files in a folder, gzipped or not; a missing folder names the install hint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idx-'));
    const s = synthetic(6, 3, 3);
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(idx([6, 3, 3], s.images)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([6], s.labels));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([6, 3, 3], s.images));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([5], s.labels.subarray(0, 5)));
    const ds = loadFashionMNIST({ root: dir });
    expect(ds.length).toBe(6);
    expect(ds.classes[9]).toBe('Ankle boot');
    expect(readIdxFile(join(dir, 'train-labels-idx1-ubyte'), 1).shape).toEqual([6]);
    expect(loadIdxDataset(dir, 'train').fields.map((f) => f.shape)).toEqual([[1, 3, 3], []]);
    expect(() => loadFashionMNIST({ root: dir, train: false })).toThrow(/t10k-labels-idx1-ubyte: 5 labels, but .*t10k-images-idx3-ubyte has 6 images/);
    expect(() => loadFashionMNIST({ root: join(dir, 'none') })).toThrow(/FashionMNIST: the folder .* does not exist; install Debian's package/);
  });
});

describe('DataLoader', () => {
  const ds = new D.IdxDataset(synthetic(23));
  /** The sample indices of one epoch, read back from pixel 0 of each image. */
  async function epoch(loader: D.DataLoader): Promise<{ ids: number[]; sizes: number[] }> {
    const ids: number[] = [];
    const sizes: number[] = [];
    for (const [x, y] of loader) {
      const px = await x.data();
      const lab = await y.data();
      const per = x.size / x.shape[0];
      for (let i = 0; i < x.shape[0]; i++) {
        const id = Math.round(px[i * per] * 255);
        ids.push(id);
        expect(lab[i]).toBe(id % 10);
      }
      sizes.push(x.shape[0]);
    }
    return { ids, sizes };
  }

  test('every sample exactly once per epoch; the last partial batch kept or dropped', async () => {
    const kept = await epoch(new D.DataLoader(ds, { batchSize: 5 }));
    expect(kept.ids).toEqual([...Array(23).keys()]);
    expect(kept.sizes).toEqual([5, 5, 5, 5, 3]);
    const loader = new D.DataLoader(ds, { batchSize: 5, shuffle: true, dropLast: true, generator: new E.Generator(1) });
    expect(loader.length).toBe(4);
    const dropped = await epoch(loader);
    expect(dropped.sizes).toEqual([5, 5, 5, 5]);
    expect(new Set(dropped.ids).size).toBe(20);
    const all = await epoch(new D.DataLoader(ds, { batchSize: 5, shuffle: true, generator: new E.Generator(1) }));
    expect([...all.ids].sort((a, b) => a - b)).toEqual([...Array(23).keys()]);
  });

  test('the same order for the same seed, another for another seed and for the next epoch', async () => {
    const order = async (seed: number, epochs = 1) => {
      const l = new D.DataLoader(ds, { batchSize: 4, shuffle: true, generator: new E.Generator(seed) });
      const out: number[][] = [];
      for (let e = 0; e < epochs; e++) out.push((await epoch(l)).ids);
      return out;
    };
    const [a1, a2] = await order(7, 2);
    expect((await order(7))[0]).toEqual(a1);
    expect((await order(8))[0]).not.toEqual(a1);
    expect(a2).not.toEqual(a1);
    expect(a1).not.toEqual([...Array(23).keys()]);
  });

  test('a batch is freed when the next is taken, unless kept; none is left after the epoch', async () => {
    const before = E.memory().liveBytes;
    const seen: E.Tensor[] = [];
    let held: E.Tensor | null = null;
    for (const [x, y] of new D.DataLoader(ds, { batchSize: 10 })) {
      seen.push(x, y);
      if (!held) held = E.keep(x);
    }
    expect(seen.filter((t) => !t.disposed)).toEqual([held]);
    held!.dispose();
    E.flush();
    expect(E.memory().liveBytes).toBeLessThanOrEqual(before + 4096);
  });

  test('leaving an epoch early (break) frees the batch in hand and the next one already uploaded', () => {
    const big = new D.IdxDataset(synthetic(40, 16, 16));
    const before = E.memory().liveBytes;
    let taken = 0;
    for (const [x] of new D.DataLoader(big, { batchSize: 10 })) {
      expect(x.shape).toEqual([10, 1, 16, 16]);
      if (++taken === 2) break;
    }
    E.flush();
    expect(E.memory().liveBytes).toBe(before);
  });

  test('a transform that throws leaves no uploaded tensor behind', () => {
    const big = new D.IdxDataset(synthetic(23, 32, 32));
    const failing: D.Transform = {
      name: 'failing',
      outShape: (s) => [...s],
      apply: () => {
        throw new Error('failing: no');
      },
    };
    // A first batch through normalize, so that the engine's own once-made buffers (uniforms) exist.
    for (const t of new D.DataLoader(big, { batchSize: 5, transforms: [D.normalize([0.5], [0.25])] }).loadBatch([0])) t.dispose();
    E.flush();
    const before = E.memory().liveBytes;
    const loader = new D.DataLoader(big, { batchSize: 5, transforms: [D.normalize([0.5], [0.25]), failing] });
    expect(() => loader.loadBatch([0, 1, 2, 3, 4])).toThrow(/failing: no/);
    expect(() => {
      for (const _ of loader) break;
    }).toThrow(/failing: no/);
    E.flush();
    expect(E.memory().liveBytes).toBe(before);
  });

  test('bad input: empty dataset, batch size, dropLast leaving nothing, transform size against the model', () => {
    const empty = new D.TensorDataset([{ data: new Float32Array(0), shape: [0, 3] }]);
    expect(() => new D.DataLoader(empty)).toThrow(/DataLoader: the dataset \(TensorDataset\) is empty: length 0/);
    expect(() => new D.DataLoader(ds, { batchSize: 0 })).toThrow(/batchSize must be an integer >= 1, got 0/);
    expect(() => new D.DataLoader(ds, { batchSize: 30, dropLast: true })).toThrow(/dropLast with 23 samples and batchSize 30 leaves no batch/);
    expect(() => new D.DataLoader(ds, { transforms: [D.resize(20)], expectShape: [1, 32, 32] })).toThrow(
      /DataLoader: the samples after the transforms \[resize\(20x20\)\] have shape \[1, 20, 20\], but the model takes \[1, 32, 32\]/,
    );
    expect(() => new D.DataLoader(ds, { transforms: [D.randomCrop(9, { padding: 2 })] })).toThrow(/randomCrop\(9x9, padding 2\): the crop is larger than the padded 8x9 samples/);
    expect(() => new D.DataLoader(ds, { transforms: [D.normalize([0.5, 0.5], [1, 1])] })).toThrow(/2 channels given, the samples have 1/);
    expect(() => new D.TensorDataset([{ data: [1, 2, 3], shape: [3] }, { data: [1], shape: [1] }])).toThrow(/array 1 has 1 samples, array 0 has 3/);
    expect(() => new D.TensorDataset([null as unknown as D.HostArray])).toThrow(/TensorDataset: array 0 must be \{ data, shape \} with shape \[N, \.\.\.\]/);
  });
});

describe('GPU transforms', () => {
  test('randomCrop with padding and flips match a CPU crop of the padded images', async () => {
    const [N, C, H, W, pad, oh, ow] = [3, 2, 5, 6, 2, 4, 7];
    const host = Float32Array.from({ length: N * C * H * W }, (_, i) => i + 1);
    const x = E.tensor(host, [N, C, H, W]);
    const top = [0, 3, 4];
    const left = [1, 0, 3];
    const flip = [false, true, true];
    const y = await E.cropFlip(x, [oh, ow], pad, { top, left, flip }).data();
    for (let b = 0; b < N; b++)
      for (let c = 0; c < C; c++)
        for (let i = 0; i < oh; i++)
          for (let j = 0; j < ow; j++) {
            const jj = flip[b] ? ow - 1 - j : j;
            const sy = i + top[b] - pad;
            const sx = jj + left[b] - pad;
            const want = sy >= 0 && sy < H && sx >= 0 && sx < W ? host[((b * C + c) * H + sy) * W + sx] : 0;
            expect(y[((b * C + c) * oh + i) * ow + j], `b ${b} c ${c} y ${i} x ${j}`).toBe(want);
          }
    expect(() => E.cropFlip(x, [4, 7], 2, { top: [0, 0, 6], left: [0, 0, 0], flip: [false, false, false] })).toThrow(/sample 2's crop corner \(6, 0\)/);
  });

  test('a pipeline: resize, crop, flip, normalise; seeded', async () => {
    const ds = new D.IdxDataset(synthetic(8, 6, 6));
    const make = (seed: number) =>
      new D.DataLoader(ds, {
        batchSize: 8,
        generator: new E.Generator(seed),
        transforms: [D.resize(8), D.randomCrop(8, { padding: 1 }), D.randomHorizontalFlip(), D.normalize([0.5], [0.25])],
        expectShape: [1, 8, 8],
      });
    const first = async (l: D.DataLoader) => {
      for (const [x] of l) return Array.from(await x.data());
      return [];
    };
    const a = await first(make(1));
    expect(a.length).toBe(8 * 64);
    expect(await first(make(1))).toEqual(a);
    expect(await first(make(2))).not.toEqual(a);
    // normalize: (x - 0.5) / 0.25, so zero padding maps to -2.
    expect(a.some((v) => v === -2)).toBe(true);
    const flat = new D.DataLoader(ds, { batchSize: 8, transforms: [D.normalize([0.5], [0.25])] });
    for (const [x] of flat) {
      const v = await x.data();
      expect(v[0]).toBeCloseTo((0 / 255 - 0.5) / 0.25, 6);
      expect(v[36]).toBeCloseTo((1 / 255 - 0.5) / 0.25, 6);
      break;
    }
  });
});
