// Datasets: samples indexed 0..length-1, each a list of fields (an image and a label, say) that the
// DataLoader copies into float32 batches. Host memory only; no Node imports.

import { decodeIdx, imageSet, type ImageSet } from './idx.js';

/** One field of every sample: its per-sample shape and how to read it as float32. */
export interface Field {
  /** Shape of one sample of this field ([] for a scalar such as a label). */
  shape: number[];
  /** Writes sample i of this field into dst at `offset` (shape.product values). */
  read(i: number, dst: Float32Array, offset: number): void;
}

/** A map-style dataset, like torch.utils.data.Dataset: a length and fields read by index. */
export interface Dataset {
  readonly length: number;
  readonly fields: readonly Field[];
}

/** Host data for one field of every sample: the first dimension indexes the samples. */
export interface HostArray {
  data: ArrayLike<number>;
  shape: readonly number[];
}

/**
 * In-memory samples, like torch.utils.data.TensorDataset: each array's first dimension indexes the
 * samples and all arrays must agree on it. `scale` multiplies every value as it is read (1/255 for
 * bytes), so images can stay as Uint8Array.
 */
export class TensorDataset implements Dataset {
  readonly length: number;
  readonly fields: Field[];

  constructor(arrays: readonly HostArray[], { scale = [] as ReadonlyArray<number | undefined> } = {}) {
    if (!arrays.length) throw new Error('TensorDataset: expected at least one array');
    // (Array 0 is checked with the others below; read its length only if it has a shape.)
    this.length = Array.isArray(arrays[0]?.shape) ? (arrays[0].shape[0] ?? 0) : 0;
    this.fields = arrays.map((a, k) => {
      if (!a || !a.data || !Array.isArray(a.shape) || !a.shape.length) throw new Error(`TensorDataset: array ${k} must be { data, shape } with shape [N, ...]`);
      const n = a.shape.reduce((p, d) => p * d, 1);
      if (a.data.length !== n) throw new Error(`TensorDataset: array ${k} has ${a.data.length} values for shape [${a.shape}] (${n})`);
      if (a.shape[0] !== this.length) throw new Error(`TensorDataset: array ${k} has ${a.shape[0]} samples, array 0 has ${this.length}`);
      const shape = a.shape.slice(1);
      const per = shape.reduce((p, d) => p * d, 1);
      const s = scale[k] ?? 1;
      const data = a.data;
      return {
        shape,
        read(i: number, dst: Float32Array, offset: number) {
          const base = i * per;
          for (let j = 0; j < per; j++) dst[offset + j] = data[base + j] * s;
        },
      };
    });
  }
}

/** Images [N, 1, H, W] scaled to [0, 1] and integer labels [N], from parsed IDX files. */
export class IdxDataset extends TensorDataset {
  readonly height: number;
  readonly width: number;
  constructor(
    readonly set: ImageSet,
    readonly classes: readonly string[] = [],
  ) {
    super([{ data: set.images, shape: [set.count, 1, set.height, set.width] }, { data: set.labels, shape: [set.count] }], { scale: [1 / 255] });
    this.height = set.height;
    this.width = set.width;
  }
  /** The label of sample i. */
  label(i: number): number {
    return this.set.labels[i];
  }
}

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

/** Fashion-MNIST (28x28 grey images, 10 classes) from parsed IDX files; data/node.ts loads the files. */
export class FashionMNIST extends IdxDataset {
  constructor(set: ImageSet) {
    super(set, FASHION_MNIST_CLASSES);
  }

  /** From the bytes of an images file and a labels file (gzipped or not), e.g. fetched in a browser. */
  static async fromBuffers(images: ArrayBuffer | Uint8Array, labels: ArrayBuffer | Uint8Array): Promise<FashionMNIST> {
    const names: [string, string] = ['FashionMNIST images', 'FashionMNIST labels'];
    return new FashionMNIST(imageSet(await decodeIdx(images, names[0], 3), await decodeIdx(labels, names[1], 1), names));
  }
}
