// softmax and logSoftmax along an axis (softmax.wgsl), numerically stable (the row maximum is
// subtracted first), with gradients. A row containing a NaN gives NaN everywhere in the row.

import { defineOp } from '../autograd.js';
import { dispatch, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { empty, Tensor } from '../tensor.js';
import { checkFloat32 } from './check.js';
import { toRows, viaRows } from './rows.js';
import { contiguous } from './views.js';
import softmaxSrc from '../../shaders/softmax.wgsl';

const softmaxShader: KernelSource = { file: 'softmax.wgsl', source: softmaxSrc };

function rowsKernel(entry: 'softmax_fwd' | 'softmax_bwd', log: boolean, x: Tensor, g: Tensor | null): Tensor {
  const [R, C] = x.shape;
  const out = empty([R, C]);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([R, C, x.offset, g?.offset ?? 0, 0]);
  dispatch(
    { shader: softmaxShader, entry, constants: { LOG: log ? 1 : 0 } },
    { params: p, buffers: [x.buffer, (g ?? x).buffer, out.buffer], workgroups: grid1d(Math.ceil(R / 256)) },
  );
  return out;
}

function rowsOp(name: string, log: boolean) {
  return defineOp<null>({
    name,
    forward: ([x]) => rowsKernel('softmax_fwd', log, x, null),
    // g may be a view; the kernel reads contiguous rows.
    backward: ({ output }, g) => [rowsKernel('softmax_bwd', log, output, g.isContiguous ? g : contiguous(g))],
  });
}

const softmaxRows = rowsOp('softmax', false);
const logSoftmaxRows = rowsOp('logSoftmax', true);

function apply(op: string, f: (xs: readonly Tensor[], a: null) => Tensor, x: Tensor, axis: number): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  checkFloat32(op, 'x', x);
  return viaRows(x, () => {
    const r = toRows(op, x, axis);
    return r.restore(f([r.rows], null));
  });
}

/** exp(x) / sum(exp(x)) along `axis` (default the last), like torch.softmax. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return apply('softmax', softmaxRows, x, axis);
}

/** x - log(sum(exp(x))) along `axis` (default the last), like torch.log_softmax. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return apply('logSoftmax', logSoftmaxRows, x, axis);
}
