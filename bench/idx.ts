// The IDX format of MNIST and Fashion-MNIST (`*-idx3-ubyte` images, `*-idx1-ubyte` labels), gzipped
// or not. A file is: 2 zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, each
// dimension as a big-endian u32, then the data. Every check names the file and what is wrong, as an
// InputError (the CLI's exit code 2).

import { gunzipSync } from 'node:zlib';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from './args.js';

function fail(msg: string): never {
  throw new InputError(msg);
}

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function parseIdx(bytes: Uint8Array, name: string, expectDims?: number): IdxArray {
  let b = bytes;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = new Uint8Array(gunzipSync(b));
    } catch (e) {
      fail(`${name}: the gzip stream is corrupt or truncated (${(e as Error).message})`);
    }
  }
  if (b.length < 4) fail(`${name}: truncated: ${b.length} bytes, an IDX header needs at least 4`);
  if (b[0] !== 0 || b[1] !== 0) fail(`${name}: wrong magic number: the first two bytes are ${b[0]}, ${b[1]}, expected 0, 0 (not an IDX file)`);
  if (b[2] !== 0x08) fail(`${name}: unsupported IDX element type 0x${b[2].toString(16)}; expected 0x08 (unsigned bytes)`);
  const ndim = b[3];
  if (expectDims !== undefined && ndim !== expectDims) {
    fail(`${name}: wrong magic number: ${ndim} dimensions, expected ${expectDims} (${expectDims === 3 ? 'an images file, idx3' : 'a labels file, idx1'})`);
  }
  if (b.length < 4 + 4 * ndim) fail(`${name}: truncated inside the header (${b.length} bytes)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(dv.getUint32(4 + 4 * i, false));
  const n = shape.reduce((x, y) => x * y, 1);
  const start = 4 + 4 * ndim;
  if (b.length - start < n) fail(`${name}: truncated: the header promises ${n} bytes of data (shape [${shape}]), the file has ${b.length - start}`);
  if (b.length - start > n) fail(`${name}: ${b.length - start - n} unexpected bytes after the data (shape [${shape}])`);
  return { shape, data: b.subarray(start, start + n) };
}

export interface ImageSet {
  /** The images file, for messages. */
  source?: string;
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

function readIdxFile(path: string, dims: number): IdxArray {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) fail(`${path} is a directory, expected an IDX file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof InputError) throw e;
    fail(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseIdx(bytes, path, dims);
}

/** Reads an images file and its labels file and checks that they agree (and that images have pixels). */
export function readImageSet(imagesPath: string, labelsPath: string): ImageSet {
  const images = checkPixels(readIdxFile(imagesPath, 3), imagesPath);
  const labels = readIdxFile(labelsPath, 1);
  if (images.shape[0] !== labels.shape[0]) {
    fail(`${labelsPath}: ${labels.shape[0]} labels, but ${imagesPath} has ${images.shape[0]} images`);
  }
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] > 9) fail(`${labelsPath}: label ${labels.data[i]} at index ${i} is not a class 0-9`);
  }
  return { source: imagesPath, images: images.data, labels: labels.data, count: images.shape[0], height: images.shape[1], width: images.shape[2] };
}

function checkPixels(images: IdxArray, path: string): IdxArray {
  const [, h, w] = images.shape;
  if (h === 0 || w === 0) fail(`${path}: the images are ${h}x${w}; they need at least one pixel`);
  return images;
}

/** Refuses a set without images (training on it would report a loss of 0, testing an accuracy of NaN). */
export function nonEmpty(set: ImageSet, what: string): ImageSet {
  if (set.count === 0) fail(`${set.source ?? 'Fashion-MNIST'}: the ${what} has 0 images`);
  return set;
}

export const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';
export const INSTALL_HINT = 'install Debian\'s package with `apt-get install dataset-fashion-mnist` (it puts the files in /usr/share/datasets/fashion-mnist/), or pass --data DIR';

/** Finds `<stem>-idx3-ubyte` (or `.gz`) in a folder. */
function find(dir: string, stem: string): string {
  for (const name of [stem, `${stem}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  fail(`Fashion-MNIST: ${join(dir, stem)}[.gz] not found; ${INSTALL_HINT}`);
}

export function loadFashionMnist(dir = DEFAULT_DATA_DIR): { train: ImageSet; test: ImageSet } {
  if (!existsSync(dir)) fail(`Fashion-MNIST: the folder ${dir} does not exist; ${INSTALL_HINT}`);
  return {
    train: readImageSet(find(dir, 'train-images-idx3-ubyte'), find(dir, 'train-labels-idx1-ubyte')),
    test: readImageSet(find(dir, 't10k-images-idx3-ubyte'), find(dir, 't10k-labels-idx1-ubyte')),
  };
}

export const CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
