// Reading IDX datasets from disk in Node (data/index.ts is the browser-safe part). Files may be gzipped.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FashionMNIST, IdxDataset } from './dataset.js';
import { imageSet, parseIdx, type IdxArray, type ImageSet } from './idx.js';

/** Debian's dataset-fashion-mnist package puts the files here. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_MNIST_HINT = "install Debian's package with `apt-get install dataset-fashion-mnist` (it puts the files in /usr/share/datasets/fashion-mnist/), or pass the folder";

/** Reads and parses an IDX file, gzipped or not. */
export function readIdxFile(path: string, expectDims?: number): IdxArray {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  if (statSync(path).isDirectory()) throw new Error(`${path} is a directory, expected an IDX file`);
  let b: Uint8Array;
  try {
    b = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = new Uint8Array(gunzipSync(b));
    } catch (e) {
      throw new Error(`${path}: the gzip stream is corrupt or truncated (${(e as Error).message})`);
    }
  }
  return parseIdx(b, path, expectDims);
}

/** Reads an images file and its labels file and checks that they agree. */
export function readImageSet(imagesPath: string, labelsPath: string, numClasses = 10): ImageSet {
  return imageSet(readIdxFile(imagesPath, 3), readIdxFile(labelsPath, 1), [imagesPath, labelsPath], numClasses);
}

/** Finds `<stem>` or `<stem>.gz` in a folder. */
function find(dir: string, stem: string, what: string, hint: string): string {
  for (const name of [stem, `${stem}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${what}: ${join(dir, stem)}[.gz] not found; ${hint}`);
}

/** An IDX dataset from `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` in a folder (MNIST naming). */
export function loadIdxDataset(dir: string, prefix: 'train' | 't10k' | string, { numClasses = 10, classes = [] as readonly string[] } = {}): IdxDataset {
  if (!existsSync(dir)) throw new Error(`IdxDataset: the folder ${dir} does not exist`);
  const hint = 'expected MNIST-style file names';
  const set = readImageSet(find(dir, `${prefix}-images-idx3-ubyte`, 'IdxDataset', hint), find(dir, `${prefix}-labels-idx1-ubyte`, 'IdxDataset', hint), numClasses);
  return new IdxDataset(set, classes);
}

/** Fashion-MNIST's training (60,000) or test (10,000) images from a folder (default: Debian's package). */
export function loadFashionMNIST({ root = FASHION_MNIST_DIR, train = true } = {}): FashionMNIST {
  if (!existsSync(root)) throw new Error(`FashionMNIST: the folder ${root} does not exist; ${FASHION_MNIST_HINT}`);
  const prefix = train ? 'train' : 't10k';
  const images = find(root, `${prefix}-images-idx3-ubyte`, 'FashionMNIST', FASHION_MNIST_HINT);
  const labels = find(root, `${prefix}-labels-idx1-ubyte`, 'FashionMNIST', FASHION_MNIST_HINT);
  return new FashionMNIST(readImageSet(images, labels));
}
