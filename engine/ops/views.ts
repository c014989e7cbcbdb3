// Views and layout ops: reshape, permute/transpose, slice, expand, contiguous, cat.
// Views share their input's storage (no copy); reshape copies only when the strides do not allow a view.

import { defineOp } from '../autograd.js';
import { broadcastStrides, contiguousStrides, fmt, normAxis, numel, type Shape } from '../shape.js';
import { empty, view, type Tensor } from '../tensor.js';
import { resultDtype } from '../dtype.js';
import { assignMap, fillMap, unaryMap } from './map.js';
import { sumTo } from './reduce_kernel.js';

/** Strides that let a tensor be viewed with a new shape without copying, or null. */
function viewStrides(x: Tensor, shape: Shape): number[] | null {
  if (x.isContiguous) return contiguousStrides(shape);
  // General case (PyTorch's computeStride): walk chunks of old dims that are contiguous among themselves.
  const oldShape = x.shape.filter((d) => d !== 1);
  const oldStrides = x.strides.filter((_, i) => x.shape[i] !== 1);
  const newStrides = new Array<number>(shape.length).fill(0);
  let vi = shape.length - 1;
  let chunkBase = oldStrides[oldStrides.length - 1] ?? 1;
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let ti = oldShape.length - 1; ti >= 0; ti--) {
    tensorNumel *= oldShape[ti];
    if (ti === 0 || oldStrides[ti - 1] !== tensorNumel * chunkBase) {
      while (vi >= 0 && (viewNumel < tensorNumel || shape[vi] === 1)) {
        newStrides[vi] = viewNumel * chunkBase;
        viewNumel *= shape[vi];
        vi--;
      }
      if (viewNumel !== tensorNumel) return null;
      if (ti > 0) {
        chunkBase = oldStrides[ti - 1];
        tensorNumel = 1;
        viewNumel = 1;
      }
    }
  }
  while (vi >= 0) newStrides[vi--] = 1;
  return newStrides;
}

function resolveShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  const inferred = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new Error(`${op}: only one dimension can be -1, got ${fmt(shape)}`);
  for (const d of out) {
    if (d !== -1 && (!Number.isInteger(d) || d < 0)) throw new Error(`${op}: invalid target shape ${fmt(shape)}`);
  }
  if (inferred >= 0) {
    const rest = numel(out.filter((d) => d !== -1));
    if (rest === 0 || x.size % rest !== 0) throw new Error(`${op}: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)}`);
    out[inferred] = x.size / rest;
  }
  if (numel(out) !== x.size) throw new Error(`${op}: cannot reshape ${fmt(x.shape)} (${x.size} elements) to ${fmt(shape)} (${numel(out)} elements)`);
  return out;
}

const contiguousOp = defineOp<null>({
  name: 'contiguous',
  forward: ([x]) => unaryMap('copy', x),
  backward: (_ctx, g) => [g],
});

/** A contiguous copy of x (always a new tensor). */
export function clone(x: Tensor): Tensor {
  return contiguousOp([x], null);
}

/** x itself as a new view when already contiguous, else a contiguous copy. */
export function contiguous(x: Tensor): Tensor {
  return x.isContiguous ? reshape(x, x.shape) : clone(x);
}

const reshapeOp = defineOp<{ shape: number[] }>({
  name: 'reshape',
  forward: ([x], { shape }) => {
    const st = viewStrides(x, shape);
    if (st) return view(x, shape, st, x.offset);
    const c = unaryMap('copy', x);
    const v = view(c, shape, contiguousStrides(shape), 0);
    c.dispose();
    return v;
  },
  backward: ({ inputs: [x] }, g) => [reshape(g, x.shape)],
});

/** Like torch.reshape: a view when the strides allow it, else a copy. One dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return reshapeOp([x], { shape: resolveShape('reshape', x, shape) });
}

/** Flattens dims [startDim, endDim] into one, like torch.flatten. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis('flatten', startDim, x.ndim, x.shape);
  const e = normAxis('flatten', endDim, x.ndim, x.shape);
  if (s > e) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim} for shape ${fmt(x.shape)}`);
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

const permuteOp = defineOp<{ dims: number[] }>({
  name: 'permute',
  forward: ([x], { dims }) => view(x, dims.map((d) => x.shape[d]), dims.map((d) => x.strides[d]), x.offset),
  backward: ({ attrs: { dims } }, g) => {
    const inv = new Array<number>(dims.length);
    dims.forEach((d, i) => (inv[d] = i));
    return [permute(g, inv)];
  },
});

/** Reorders dimensions (a view), like torch.permute. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: ${dims.length} dims given for a tensor of shape ${fmt(x.shape)}`);
  const d = dims.map((a) => normAxis('permute', a, x.ndim, x.shape));
  if (new Set(d).size !== d.length) throw new Error(`permute: [${dims.join(', ')}] is not a permutation of the ${x.ndim} dims of ${fmt(x.shape)}`);
  return permuteOp([x], { dims: d });
}

/** Swaps two dimensions (a view). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normAxis('transpose', dim0, x.ndim, x.shape);
  const b = normAxis('transpose', dim1, x.ndim, x.shape);
  const dims = x.shape.map((_, i) => i);
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permuteOp([x], { dims });
}

interface SliceAttrs {
  axis: number;
  start: number;
  end: number;
}

const sliceOp = defineOp<SliceAttrs>({
  name: 'slice',
  forward: ([x], { axis, start, end }) => {
    const shape = [...x.shape];
    shape[axis] = end - start;
    return view(x, shape, x.strides, x.offset + start * x.strides[axis]);
  },
  backward: ({ inputs: [x], attrs }, g) => {
    const out = fillMap(empty(x.shape, 'tensor', g.dtype), 0);
    const region = sliceRaw(out, attrs.axis, attrs.start, attrs.end);
    assignMap(region, g);
    region.dispose();
    return [out];
  },
});

function sliceRaw(x: Tensor, axis: number, start: number, end: number): Tensor {
  const shape = [...x.shape];
  shape[axis] = end - start;
  return view(x, shape, x.strides, x.offset + start * x.strides[axis]);
}

/** Elements [start, end) along `axis` (a view), like torch.narrow / x[..., start:end, ...]. */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis('slice', axis, x.ndim, x.shape);
  const n = x.shape[a];
  const e = end ?? n;
  if (!Number.isInteger(start) || !Number.isInteger(e) || start < 0 || e > n || start > e) {
    throw new Error(`slice: range [${start}, ${e}) is not within [0, ${n}] on axis ${a} of shape ${fmt(x.shape)}`);
  }
  return sliceOp([x], { axis: a, start, end: e });
}

const expandOp = defineOp<{ shape: number[] }>({
  name: 'expand',
  forward: ([x], { shape }) => view(x, shape, broadcastStrides(x.shape, x.strides, shape), x.offset),
  backward: ({ inputs: [x] }, g) => [sumTo(g, x.shape)],
});

/** Broadcasts x to `shape` without copying (stride 0 on expanded dims), like torch.expand. */
export function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.ndim) throw new Error(`expand: cannot expand ${fmt(x.shape)} to fewer dims ${fmt(shape)}`);
  const off = shape.length - x.ndim;
  x.shape.forEach((d, i) => {
    if (d !== 1 && d !== shape[off + i]) throw new Error(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)} (dimension ${off + i})`);
  });
  return expandOp([x], { shape: [...shape] });
}

const catOp = defineOp<{ axis: number }>({
  name: 'cat',
  forward: (xs, { axis }) => {
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((a, t) => a + t.shape[axis], 0);
    const out = empty(shape, 'tensor', resultDtype(xs.map((t) => t.dtype)));
    let at = 0;
    for (const t of xs) {
      const region = sliceRaw(out, axis, at, at + t.shape[axis]);
      assignMap(region, t);
      region.dispose();
      at += t.shape[axis];
    }
    return out;
  },
  backward: ({ inputs, attrs: { axis } }, g) => {
    let at = 0;
    return inputs.map((t) => {
      const s = sliceRaw(g, axis, at, at + t.shape[axis]);
      at += t.shape[axis];
      return s;
    });
  },
});

/** Concatenates tensors along `axis`, like torch.cat. */
export function cat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new Error('cat: expected at least one tensor');
  const a = normAxis('cat', axis, xs[0].ndim, xs[0].shape);
  for (const t of xs) {
    const ok = t.ndim === xs[0].ndim && t.shape.every((d, i) => i === a || d === xs[0].shape[i]);
    if (!ok) throw new Error(`cat: shapes ${xs.map((u) => fmt(u.shape)).join(', ')} differ outside axis ${a}`);
  }
  return catOp(xs, { axis: a });
}

/** Copies src into dst in place (same shape; dst may be a view). No gradient is recorded. */
export function copyInto(dst: Tensor, src: Tensor): Tensor {
  dst.assertAlive('copyInto');
  src.assertAlive('copyInto');
  if (dst.shape.length !== src.shape.length || dst.shape.some((d, i) => d !== src.shape[i])) {
    throw new Error(`copyInto: source shape ${fmt(src.shape)} differs from destination shape ${fmt(dst.shape)}`);
  }
  if (dst.storage === src.storage) {
    const tmp = unaryMap('copy', src);
    assignMap(dst, tmp);
    tmp.dispose();
  } else assignMap(dst, src);
  return dst;
}
