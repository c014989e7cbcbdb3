// argmax and topk along an axis (topk.wgsl): the k <= 5 largest values of each row, largest first,
// with their indices as float32 (the engine's one dtype). A NaN counts as larger than every number and
// ties keep the lower index first, as in PyTorch. topk's values have a gradient (scattered back to the
// chosen elements); argmax and the indices have none.

import { defineOp, noGrad } from '../autograd.js';
import { dispatch, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { fmt, normAxis } from '../shape.js';
import { empty, keep, scope, Tensor, view } from '../tensor.js';
import { checkFloat32 } from './check.js';
import { toRows, viaRows } from './rows.js';
import { contiguous, reshape } from './views.js';
import topkSrc from '../../shaders/topk.wgsl';

const topkShader: KernelSource = { file: 'topk.wgsl', source: topkSrc };

// Bound as IDX in backward (never touched there; a binding needs some buffer).
let dummy: Tensor | null = null;

interface TopkAttrs {
  k: number;
  /** Set by forward: a view of the indices [R, k] for the caller (topk takes it and clears this). */
  indices?: Tensor;
}

const topkOp = defineOp<TopkAttrs>({
  name: 'topk',
  forward: ([x], attrs, saved) => {
    const [R, C] = x.shape;
    const { k } = attrs;
    const vals = empty([R, k]);
    const idx = empty([R, k], 'topk-indices');
    const p = new Uint32Array(PARAM_WORDS);
    p.set([R, C, x.offset, 0, k]);
    dispatch({ shader: topkShader, entry: 'topk_fwd' }, { params: p, buffers: [x.buffer, x.buffer, vals.buffer, idx.buffer], workgroups: grid1d(Math.ceil(R / 256)) });
    // The node owns idx (freed with the graph, or at once without one); the caller gets its own view.
    saved.push(idx);
    attrs.indices = view(idx, idx.shape, idx.strides, idx.offset);
    return vals;
  },
  backward: ({ inputs: [x], attrs: { k }, saved: [indices] }, g) => {
    const [R, C] = x.shape;
    const gc = g.isContiguous ? g : contiguous(g);
    const dx = empty([R, C]);
    const p = new Uint32Array(PARAM_WORDS);
    p.set([R, C, indices!.offset, gc.offset, k]);
    dispatch(
      { shader: topkShader, entry: 'topk_bwd' },
      { params: p, buffers: [indices!.buffer, gc.buffer, dx.buffer, (dummy ??= keep(empty([1], 'topk-dummy'))).buffer], workgroups: grid1d(Math.ceil(R / 256)) },
    );
    return [dx];
  },
});

/** Indices are float32: exact integers only up to 2^24. */
const MAX_INDEX_LENGTH = 2 ** 24;

/** Throws, naming `op`, when `what` (an axis or the flattened tensor) is too long for float32 indices. */
function checkIndexable(op: string, what: string, n: number): void {
  if (n > MAX_INDEX_LENGTH) {
    throw new Error(`${op}: ${what} has ${n} elements; the indices are float32, exact only up to 2^24 = ${MAX_INDEX_LENGTH} elements along the axis`);
  }
}

/** The k largest values along `axis` (default the last), largest first, and their indices, like torch.topk. */
export function topk(x: Tensor, k: number, axis = -1): { values: Tensor; indices: Tensor } {
  if (!(x instanceof Tensor)) throw new Error(`topk: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  checkFloat32('topk', 'x', x);
  const a = normAxis('topk', axis, Math.max(x.ndim, 1), x.shape);
  const C = x.shape[a] ?? 0;
  if (!Number.isInteger(k) || k < 1 || k > 5 || k > C) throw new Error(`topk: k must be an integer in [1, ${Math.min(5, C)}] for axis ${a} of shape ${fmt(x.shape)} (k <= 5 is supported), got ${k}`);
  checkIndexable('topk', `axis ${a} of shape ${fmt(x.shape)}`, C);
  return viaRows(x, () => {
    const r = toRows('topk', x, a);
    const attrs: TopkAttrs = { k };
    const values = r.restore(topkOp([r.rows], attrs));
    const own = attrs.indices!;
    attrs.indices = undefined;
    const indices = r.restore(own);
    own.dispose();
    return { values, indices };
  });
}

/**
 * Indices of the largest values along `axis` as float32, like torch.argmax; without an axis, the index
 * into the flattened tensor. No gradient.
 */
export function argmax(x: Tensor, axis?: number, keepdims = false): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`argmax: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
  checkFloat32('argmax', 'x', x);
  return scope(() => {
    if (axis === undefined) {
      if (x.size === 0) throw new Error(`argmax: the tensor of shape ${fmt(x.shape)} is empty`);
      checkIndexable('argmax', `the flattened tensor of shape ${fmt(x.shape)}`, x.size);
      return reshape(noGrad(() => topk(reshape(x, [x.size]), 1, 0)).indices, keepdims ? x.shape.map(() => 1) : []);
    }
    const a = normAxis('argmax', axis, Math.max(x.ndim, 1), x.shape);
    checkIndexable('argmax', `axis ${a} of shape ${fmt(x.shape)}`, x.shape[a] ?? 0);
    const { indices } = noGrad(() => topk(x, 1, a));
    return keepdims ? indices : reshape(indices, indices.shape.filter((_, i) => i !== a));
  });
}
