// Bilinear image resize (no gradient): the data pipeline's GPU kernel (shaders/resize.wgsl).

import { dispatch, f32bits, grid1d, PARAM_WORDS } from '../runtime.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import src from '../../shaders/resize.wgsl';
import { checkFloat32 } from './check.js';
import { contiguous } from './views.js';

const resizeShader = { file: 'resize.wgsl', source: src };

/** Resizes [..., H, W] to [..., oh, ow] like F.interpolate(mode='bilinear', align_corners=False). */
export function resizeBilinear(x: Tensor, [oh, ow]: [number, number]): Tensor {
  x.assertAlive('resizeBilinear');
  checkFloat32('resizeBilinear', 'x', x);
  if (x.ndim < 2) throw new Error(`resizeBilinear: expected at least 2 dims [..., H, W], got ${fmt(x.shape)}`);
  if (!Number.isInteger(oh) || !Number.isInteger(ow) || oh < 1 || ow < 1) throw new Error(`resizeBilinear: invalid output size ${oh}x${ow}`);
  const H = x.shape[x.ndim - 2];
  const W = x.shape[x.ndim - 1];
  const c = contiguous(x);
  const out = empty([...x.shape.slice(0, -2), oh, ow]);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([out.size, H, W, oh, ow, f32bits(H / oh), f32bits(W / ow), c.offset]);
  if (out.size) dispatch({ shader: resizeShader, entry: 'resize_bilinear' }, { params: p, buffers: [c.buffer, out.buffer], workgroups: grid1d(Math.ceil(out.size / 256)) });
  c.dispose();
  return out;
}
