// Fashion-MNIST for `train`, `eval` and the demo server: the library's reader (data/node.ts) with its
// errors turned into InputError (the CLI's exit code 2), and the check that a set is not empty. Host
// only: it imports no engine code, so the demo's static server (bench/web/serve.ts) bundles without it.

import { FASHION_MNIST_CLASSES, type FashionMNIST } from '../data/dataset.js';
import type { ImageSet } from '../data/idx.js';
import { FASHION_MNIST_DIR, FASHION_MNIST_HINT, loadFashionMNIST, readImageSet as readSet } from '../data/node.js';
import { InputError } from './args.js';

export const DEFAULT_DATA_DIR = FASHION_MNIST_DIR;
export const INSTALL_HINT = FASHION_MNIST_HINT;
export const CLASS_NAMES: readonly string[] = FASHION_MNIST_CLASSES;

function asInput<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw e instanceof InputError ? e : new InputError((e as Error).message);
  }
}

/** The training and test sets in a folder (default: Debian's package); a bad file is an InputError naming it. */
export function loadFashionMnist(dir: string = DEFAULT_DATA_DIR): { train: FashionMNIST; test: FashionMNIST } {
  return asInput(() => ({ train: loadFashionMNIST({ root: dir, train: true }), test: loadFashionMNIST({ root: dir, train: false }) }));
}

/** An images file and its labels file, checked to agree; a bad file is an InputError naming it. */
export function readImageSet(imagesPath: string, labelsPath: string): ImageSet {
  return asInput(() => readSet(imagesPath, labelsPath));
}

/** Refuses a set without images (training on it would report a loss of 0, testing an accuracy of NaN). */
export function nonEmpty<T extends { set: ImageSet } | ImageSet>(data: T, what: string): T {
  const set: ImageSet = 'set' in data ? data.set : data;
  if (set.count === 0) throw new InputError(`${set.source ?? 'Fashion-MNIST'}: the ${what} has 0 images`);
  return data;
}
