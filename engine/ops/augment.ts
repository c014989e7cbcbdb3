// Data augmentation on the GPU (augment.wgsl): per-sample random crop with zero padding and horizontal
// flip of an NCHW batch in one dispatch. The per-sample choices come from the caller (data/transforms.ts
// draws them from a Generator), so a seed gives the same augmentation on every adapter. No gradient.

import { dispatch, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { fmt } from '../shape.js';
import { empty, fromData, type Tensor } from '../tensor.js';
import { checkFloat32 } from './check.js';
import { contiguous } from './views.js';
import augmentSrc from '../../shaders/augment.wgsl';

const augmentShader: KernelSource = { file: 'augment.wgsl', source: augmentSrc };

export interface CropFlip {
  /** Top-left corner of each sample's crop in padded coordinates (0..2 * padding + H - outH). */
  top: ArrayLike<number>;
  left: ArrayLike<number>;
  /** Whether each sample is flipped left-right (after the crop). */
  flip: ArrayLike<boolean>;
}

/** Crops each sample of x [B, C, H, W] to [outH, outW] at its own corner of the zero-padded image, flipping where asked. */
export function cropFlip(x: Tensor, [outH, outW]: [number, number], padding: number, s: CropFlip): Tensor {
  const op = 'cropFlip';
  x.assertAlive(op);
  checkFloat32(op, 'x', x);
  if (x.ndim !== 4) throw new Error(`${op}: expected an [N, C, H, W] batch, got ${fmt(x.shape)}`);
  const [B, C, H, W] = x.shape;
  if (!Number.isInteger(padding) || padding < 0) throw new Error(`${op}: padding must be an integer >= 0, got ${padding}`);
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1 || outH > H + 2 * padding || outW > W + 2 * padding) {
    throw new Error(`${op}: a ${outH}x${outW} crop does not fit the ${H + 2 * padding}x${W + 2 * padding} padded input (${fmt(x.shape)}, padding ${padding})`);
  }
  if (s.top.length !== B || s.left.length !== B || s.flip.length !== B) throw new Error(`${op}: expected ${B} crop corners and flips for a batch of ${B}`);
  const table = new Float32Array(B * 3);
  for (let b = 0; b < B; b++) {
    const t = s.top[b];
    const l = s.left[b];
    if (!Number.isInteger(t) || !Number.isInteger(l) || t < 0 || l < 0 || t + outH > H + 2 * padding || l + outW > W + 2 * padding) {
      throw new Error(`${op}: sample ${b}'s crop corner (${t}, ${l}) puts the ${outH}x${outW} crop outside the padded input`);
    }
    table.set([t, l, s.flip[b] ? 1 : 0], b * 3);
  }
  const xc = contiguous(x);
  const st = fromData(table, [B, 3], 'augment');
  const out = empty([B, C, outH, outW]);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([out.size, C, H, W, outH, outW, padding, xc.offset]);
  if (out.size) dispatch({ shader: augmentShader, entry: 'crop_flip' }, { params: p, buffers: [xc.buffer, st.buffer, out.buffer], workgroups: grid1d(Math.ceil(out.size / 256)) });
  st.dispose();
  xc.dispose();
  return out;
}
