import { describe, expect, test } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseIdx } from '../data/index.js';
import { readIdxFile } from '../data/node.js';
import { readImageSet, loadFashionMnist, nonEmpty } from '../bench/data.js';
import { InputError } from '../bench/args.js';

function idx(shape: number[], data: number[], magic = [0, 0, 8]): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  head.set([...magic, shape.length]);
  const dv = new DataView(head.buffer);
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  return new Uint8Array([...head, ...data]);
}

describe('IDX reader', () => {
  test('reads images and labels, plain and gzipped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idx-'));
    const img = idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    writeFileSync(join(dir, 'i'), img);
    writeFileSync(join(dir, 'l.gz'), gzipSync(idx([2], [3, 9])));
    const set = readImageSet(join(dir, 'i'), join(dir, 'l.gz'));
    expect(set.count).toBe(2);
    expect([set.height, set.width]).toEqual([2, 3]);
    expect(Array.from(set.images.slice(6))).toEqual([250, 251, 252, 253, 254, 255]);
    expect(Array.from(set.labels)).toEqual([3, 9]);
  });

  test('bad files say which file and how', () => {
    expect(() => parseIdx(idx([2, 2, 2], [1, 2, 3]), 'imgs', 3)).toThrow(/imgs: truncated: the header promises 8 bytes/);
    expect(() => parseIdx(idx([2], [1, 2], [1, 0, 8]), 'labels', 1)).toThrow(/labels: wrong magic number/);
    expect(() => parseIdx(idx([2], [1, 2]), 'labels', 3)).toThrow(/labels: wrong number of dimensions: the header says 1, expected 3/);
    const dir = mkdtempSync(join(tmpdir(), 'idx-'));
    writeFileSync(join(dir, 'gz'), new Uint8Array([0x1f, 0x8b, 1, 2, 3]));
    expect(() => readIdxFile(join(dir, 'gz'))).toThrow(/gz: the gzip stream is corrupt/);
    writeFileSync(join(dir, 'i'), idx([3, 1, 1], [1, 2, 3]));
    writeFileSync(join(dir, 'l'), idx([2], [1, 2]));
    expect(() => readImageSet(join(dir, 'i'), join(dir, 'l'))).toThrow(/2 labels, but .* has 3 images/);
    writeFileSync(join(dir, 'l'), idx([3], [1, 2, 12]));
    expect(() => readImageSet(join(dir, 'i'), join(dir, 'l'))).toThrow(/label 12 at index 2/);
    expect(() => readImageSet(join(dir, 'i'), join(dir, 'l'))).toThrow(InputError);
  });

  test('a missing dataset says how to install it', () => {
    expect(() => loadFashionMnist('/nonexistent/fashion')).toThrow(/apt-get install dataset-fashion-mnist/);
  });

  test('a folder where a file should be, 0x0 images and empty sets are named clearly (issue 13, items 5 and 14)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idx-'));
    mkdirSync(join(dir, 'i'));
    writeFileSync(join(dir, 'l'), idx([1], [3]));
    expect(() => readImageSet(join(dir, 'i'), join(dir, 'l'))).toThrow(new RegExp(`${join(dir, 'i')} is a directory, expected an IDX file`));
    writeFileSync(join(dir, 'z'), idx([1, 0, 0], []));
    expect(() => readImageSet(join(dir, 'z'), join(dir, 'l'))).toThrow(/z: the images are 0x0; they need at least one pixel/);
    writeFileSync(join(dir, 'e'), idx([0, 28, 28], []));
    writeFileSync(join(dir, 'l0'), idx([0], []));
    const empty = readImageSet(join(dir, 'e'), join(dir, 'l0'));
    expect(() => nonEmpty(empty, 'training set')).toThrow(/e: the training set has 0 images/);
    expect(() => nonEmpty(empty, 'training set')).toThrow(InputError);
  });
});
