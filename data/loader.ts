// DataLoader: batches of a Dataset as GPU tensors, like torch.utils.data.DataLoader (map-style, one
// process): batchSize, shuffle with a seeded Generator (a new order each epoch), dropLast, and a list
// of GPU transforms applied to the first field (the inputs).
//
// Iterating gives one epoch: `for (const [x, y] of loader) { ... }`. A batch belongs to the loader and
// is disposed when the next one is taken (keep() a tensor to hold on to it). While the caller's step
// for batch k runs on the GPU, the loader assembles batch k + 1 on the host and uploads it: when the
// caller asks for the next batch, the loader first submits the work encoded so far (flush), then
// gathers and uploads, so the host's copying overlaps the GPU's step.

import { Generator, Tensor, defaultGenerator, flush, fmt, scope, tensor } from '../engine/index.js';
import type { Dataset } from './dataset.js';
import type { Transform } from './transforms.js';

export interface DataLoaderOptions {
  batchSize?: number;
  /** A new random order every epoch (from `generator`). */
  shuffle?: boolean;
  /** Draws the order and the transforms' random choices (default: the engine's default generator). */
  generator?: Generator;
  /** Leave out the last batch when it is smaller than batchSize. */
  dropLast?: boolean;
  /** GPU transforms of the first field, applied in order to each batch. */
  transforms?: readonly Transform[];
  /** The sample shape the model takes: checked against what the transforms produce. */
  expectShape?: readonly number[];
}

export class DataLoader implements Iterable<Tensor[]> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly generator: Generator;
  readonly transforms: readonly Transform[];
  /** The shape of one sample of each field after the transforms. */
  readonly sampleShapes: number[][];

  constructor(
    readonly dataset: Dataset,
    { batchSize = 1, shuffle = false, generator = defaultGenerator, dropLast = false, transforms = [], expectShape }: DataLoaderOptions = {},
  ) {
    if (!dataset || typeof dataset.length !== 'number' || !Array.isArray(dataset.fields)) throw new Error('DataLoader: expected a Dataset (length and fields), e.g. a TensorDataset');
    if (dataset.length === 0) throw new Error(`DataLoader: the dataset (${dataset.constructor.name}) is empty: length 0`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`DataLoader: batchSize must be an integer >= 1, got ${batchSize}`);
    if (dropLast && dataset.length < batchSize) {
      throw new Error(`DataLoader: dropLast with ${dataset.length} samples and batchSize ${batchSize} leaves no batch`);
    }
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.generator = generator;
    this.transforms = [...transforms];
    let shape = [...dataset.fields[0].shape];
    for (const t of this.transforms) shape = t.outShape(shape);
    this.sampleShapes = [shape, ...dataset.fields.slice(1).map((f) => [...f.shape])];
    if (expectShape && (expectShape.length !== shape.length || expectShape.some((d, i) => d !== shape[i]))) {
      const names = this.transforms.map((t) => t.name).join(', ') || 'none';
      throw new Error(`DataLoader: the samples after the transforms [${names}] have shape ${fmt(shape)}, but the model takes ${fmt(expectShape)} (expectShape)`);
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The sample order of one epoch (draws from the generator when shuffling). */
  epochOrder(): Uint32Array {
    const n = this.dataset.length;
    return this.shuffle ? this.generator.permutation(n) : Uint32Array.from({ length: n }, (_, i) => i);
  }

  /**
   * Uploads the samples `idx` as one tensor per field and applies the transforms to the first. In a
   * scope: if a transform throws, the tensors already uploaded for this batch are freed.
   */
  loadBatch(idx: ArrayLike<number>): Tensor[] {
    const n = idx.length;
    return scope(() => this.dataset.fields.map((f, k) => {
      const per = f.shape.reduce((p, d) => p * d, 1);
      const host = new Float32Array(n * per);
      for (let i = 0; i < n; i++) f.read(idx[i], host, i * per);
      let t = tensor(host, [n, ...f.shape]);
      if (k === 0) {
        for (const tr of this.transforms) {
          const y = tr.apply(t, this.generator);
          t.dispose();
          t = y;
        }
      }
      return t;
    }));
  }

  *[Symbol.iterator](): Iterator<Tensor[]> {
    const order = this.epochOrder();
    const nb = this.length;
    const slice = (k: number) => order.subarray(k * this.batchSize, Math.min(order.length, (k + 1) * this.batchSize));
    let cur = this.loadBatch(slice(0));
    let next: Tensor[] = [];
    try {
      for (let k = 0; k < nb; k++) {
        // Submit what the caller encoded for the previous batch, then prepare the next while it runs.
        flush();
        next = k + 1 < nb ? this.loadBatch(slice(k + 1)) : [];
        yield cur;
        for (const t of cur) if (!t.kept) t.dispose();
        cur = next;
        next = [];
      }
    } finally {
      // Also on a break out of the loop: the batch handed out and the one prepared after it.
      for (const t of [...cur, ...next]) if (!t.kept && !t.disposed) t.dispose();
    }
  }
}
