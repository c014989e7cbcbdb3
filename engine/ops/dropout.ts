// Dropout (dropout.wgsl): zeroes each element with probability p and scales the rest by 1 / (1 - p),
// like torch.nn.functional.dropout in training mode. The mask comes from a hash of a seed drawn from a
// Generator (the engine's default one unless given) and the element index, so the same seed gives the
// same mask on every adapter, and backward recomputes the mask instead of storing it. float16 in gives
// float16 out (computed in float32).

import { defineOp } from '../autograd.js';
import { defaultGenerator, Generator } from '../random.js';
import { dispatch, f32bits, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { typed } from '../storage.js';
import { empty, Tensor } from '../tensor.js';
import { contiguous } from './views.js';
import dropoutSrc from '../../shaders/dropout.wgsl';

const dropoutShader: KernelSource = { file: 'dropout.wgsl', source: dropoutSrc };

interface DropoutAttrs {
  p: number;
  seed: number;
}

/** x * mask / (1 - p) for a contiguous x, with the mask of `seed`. */
function dropoutKernel(x: Tensor, { p, seed }: DropoutAttrs): Tensor {
  const out = empty(x.shape, 'tensor', x.dtype);
  const pr = new Uint32Array(PARAM_WORDS);
  pr.set([x.size, x.offset, 0, seed >>> 0, f32bits(p), f32bits(1 / (1 - p))]);
  if (x.size) dispatch({ shader: typed(dropoutShader, { X: x.dtype, OUT: x.dtype }), entry: 'dropout' }, { params: pr, buffers: [x.buffer, out.buffer], workgroups: grid1d(Math.ceil(x.size / 256)) });
  return out;
}

const dropoutOp = defineOp<DropoutAttrs>({
  name: 'dropout',
  forward: ([x], attrs) => dropoutKernel(x.isContiguous ? x : contiguous(x), attrs),
  backward: ({ attrs }, g) => [dropoutKernel(g.isContiguous ? g : contiguous(g), attrs)],
});

export interface DropoutOptions {
  /** Whether to drop (training); false returns x unchanged. Default true, as torch.nn.functional.dropout. */
  training?: boolean;
  generator?: Generator;
  /** A fixed seed instead of drawing one from the generator. */
  seed?: number;
}

/** Zeroes elements with probability p and scales the others by 1 / (1 - p) (when training). */
export function dropout(x: Tensor, p = 0.5, { training = true, generator = defaultGenerator, seed }: DropoutOptions = {}): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`dropout: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`dropout: p must be a probability in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)) throw new Error(`dropout: seed must be a 32-bit unsigned integer, got ${seed}`);
  return dropoutOp([x], { p, seed: seed ?? generator.nextU32() });
}
