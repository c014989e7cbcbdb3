// Batch transforms run on the GPU, like torchvision.transforms applied to a whole batch [N, C, H, W]:
// resize (bilinear, torchvision's Resize), normalize (per channel), randomCrop (with zero padding) and
// randomHorizontalFlip. Random choices are drawn per sample from the loader's Generator. Each transform
// also maps a sample shape [C, H, W] to its output shape, so the DataLoader checks a pipeline before
// the first batch.

import { Generator, Tensor, cropFlip, fmt, resizeBilinear, scope, sub, div, tensor } from '../engine/index.js';

export interface Transform {
  /** Shown in errors, e.g. 'randomCrop(32, padding 4)'. */
  readonly name: string;
  /** The output sample shape for an input sample shape [C, H, W]; throws if it cannot apply. */
  outShape(sample: readonly number[]): number[];
  /** Transforms a batch [N, C, H, W] (the input is the caller's; the output is new). */
  apply(batch: Tensor, generator: Generator): Tensor;
}

const needImage = (name: string, s: readonly number[]) => {
  if (s.length !== 3) throw new Error(`${name}: expects image samples [C, H, W], got samples of shape ${fmt(s)}`);
};

/** Bilinear resize to size x size (or [h, w]), as torchvision's Resize on tensors (antialias off). */
export function resize(size: number | [number, number]): Transform {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  const name = `resize(${h}x${w})`;
  if (![h, w].every((d) => Number.isInteger(d) && d >= 1)) throw new Error(`${name}: the size must be positive integers`);
  return {
    name,
    outShape: (s) => (needImage(name, s), [s[0], h, w]),
    apply: (x) => resizeBilinear(x, [h, w]),
  };
}

/** (x - mean[c]) / std[c] per channel, as torchvision's Normalize. */
export function normalize(mean: readonly number[], std: readonly number[]): Transform {
  const name = `normalize([${mean}], [${std}])`;
  if (mean.length !== std.length || !mean.length) throw new Error(`${name}: mean and std must have one value per channel`);
  if (std.some((s) => !(s > 0))) throw new Error(`${name}: every std must be > 0`);
  return {
    name,
    outShape: (s) => {
      needImage(name, s);
      if (s[0] !== mean.length) throw new Error(`${name}: ${mean.length} channels given, the samples have ${s[0]} (shape ${fmt(s)})`);
      return [...s];
    },
    apply: (x) =>
      scope(() => {
        const c = mean.length;
        return div(sub(x, tensor([...mean], [1, c, 1, 1])), tensor([...std], [1, c, 1, 1]));
      }),
  };
}

/** A random size x size crop of each sample after zero padding, as torchvision's RandomCrop(size, padding). */
export function randomCrop(size: number | [number, number], { padding = 0 } = {}): Transform {
  const [h, w] = typeof size === 'number' ? [size, size] : size;
  const name = `randomCrop(${h}x${w}, padding ${padding})`;
  if (![h, w].every((d) => Number.isInteger(d) && d >= 1) || !Number.isInteger(padding) || padding < 0) throw new Error(`${name}: the size must be positive integers and padding an integer >= 0`);
  return {
    name,
    outShape: (s) => {
      needImage(name, s);
      if (h > s[1] + 2 * padding || w > s[2] + 2 * padding) throw new Error(`${name}: the crop is larger than the padded ${s[1] + 2 * padding}x${s[2] + 2 * padding} samples (shape ${fmt(s)})`);
      return [s[0], h, w];
    },
    apply: (x, g) => {
      const n = x.shape[0];
      const top = Array.from({ length: n }, () => g.nextU32() % (x.shape[2] + 2 * padding - h + 1));
      const left = Array.from({ length: n }, () => g.nextU32() % (x.shape[3] + 2 * padding - w + 1));
      return cropFlip(x, [h, w], padding, { top, left, flip: top.map(() => false) });
    },
  };
}

/** Flips each sample left-right with probability p, as torchvision's RandomHorizontalFlip. */
export function randomHorizontalFlip(p = 0.5): Transform {
  const name = `randomHorizontalFlip(${p})`;
  if (!(p >= 0 && p <= 1)) throw new Error(`${name}: p must be a probability in [0, 1]`);
  return {
    name,
    outShape: (s) => (needImage(name, s), [...s]),
    apply: (x, g) => {
      const n = x.shape[0];
      const zeros = new Array<number>(n).fill(0);
      return cropFlip(x, [x.shape[2], x.shape[3]], 0, { top: zeros, left: zeros, flip: zeros.map(() => g.uniform() < p) });
    },
  };
}
