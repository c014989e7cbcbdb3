// The smallest input both DenseNets accept: their stem (7x7 convolution, stride 2, padding 3, then 3x3
// max pool, stride 2, padding 1) and each transition's 2x2 average pool (stride 2) must leave at least
// one pixel, so a too-small input gets an error naming the model instead of one from inside a pool.

import { fmt, type Tensor } from '../engine/index.js';

/** The smallest side length that survives the stem and `transitions` halvings (29 for three). */
export function minInputSize(transitions: number): number {
  const fits = (n: number) => {
    let s = Math.floor((n - 1) / 2) + 1; // conv 7x7, stride 2, padding 3
    s = Math.floor((s - 1) / 2) + 1; // max pool 3x3, stride 2, padding 1
    for (let i = 0; i < transitions; i++) {
      if (s < 2) return false;
      s = Math.floor(s / 2); // average pool 2x2, stride 2
    }
    return true;
  };
  let n = 1;
  while (!fits(n)) n++;
  return n;
}

/** Throws `<model> needs inputs of at least SxS, got HxW` when x is too small (or not [N, C, H, W]). */
export function checkInputSize(model: string, x: Tensor, transitions: number): void {
  if (x.ndim !== 4) throw new Error(`${model}: expected an input of shape [N, C, H, W], got ${fmt(x.shape)}`);
  const min = minInputSize(transitions);
  const [, , H, W] = x.shape;
  if (H < min || W < min) throw new Error(`${model} needs inputs of at least ${min}x${min}, got ${H}x${W} (input ${fmt(x.shape)})`);
}
