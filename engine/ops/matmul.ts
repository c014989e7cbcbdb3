// Batched matrix multiplication (torch.matmul semantics for >= 2-D inputs, 1-D promoted) with autograd.
// Kernels: matmul_subgroup.wgsl (fast, needs `subgroups`), matmul.wgsl matmul_tiled (fast without
// subgroups) and matmul_naive (the reference-grade kernel). chooseMatmulKernel() picks one.

import { defineOp } from '../autograd.js';
import { gpu, type GpuFeatures } from '../gpu.js';
import { dispatch, grid1d, PARAM_WORDS } from '../runtime.js';
import { shaders } from '../shaders.js';
import { broadcastShapes, broadcastStrides, collapse, fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';
import { clone, expandTo, reshape, transpose } from './views.js';

export type MatmulKernel = 'sg8' | 'quad' | 'tiled' | 'naive';

/** Whether the adapter can run a kernel (sg8 needs subgroups of exactly 8; quad a multiple of 4). */
export function matmulKernelSupported(k: MatmulKernel, f: GpuFeatures): boolean {
  if (k === 'sg8') return f.subgroups && f.subgroupMinSize === 8 && f.subgroupMaxSize === 8;
  if (k === 'quad') return f.subgroups && f.subgroupMinSize >= 4 && f.subgroupMinSize % 4 === 0;
  return true;
}

/** Which kernel runs a matmul: sg8 on 8-lane subgroups, quad on other multiples of 4, else the register tile. */
export function chooseMatmulKernel(f: GpuFeatures): MatmulKernel {
  return (['sg8', 'quad'] as const).find((k) => matmulKernelSupported(k, f)) ?? 'tiled';
}

let forcedKernel: MatmulKernel | null = null;
/** Forces one matmul kernel (tests use it to check every kernel); null restores the automatic choice. */
export function forceMatmulKernel(k: MatmulKernel | null): void {
  forcedKernel = k;
}

/** The single batch stride of a tensor's batch dims broadcast to `batch`, or null if they need a copy. */
function batchStride(t: Tensor, batch: number[]): number | null {
  const bs = broadcastStrides(t.shape.slice(0, -2), t.strides.slice(0, -2), batch);
  const c = collapse(batch, [bs]);
  if (c.shape.length === 0) return 0;
  if (c.shape.length === 1) return c.strides[0][0];
  return null;
}

/** C = A x B for A [..., M, K], B [..., K, N] (batch dims broadcast); no autograd. */
export function matmulRaw(a: Tensor, b: Tensor): Tensor {
  const M = a.shape[a.ndim - 2];
  const K = a.shape[a.ndim - 1];
  const N = b.shape[b.ndim - 1];
  const batchShape = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = batchShape.reduce((x, y) => x * y, 1);
  let sa = batchStride(a, batchShape);
  let sb = batchStride(b, batchShape);
  let ac = a;
  let bc = b;
  // Batch dims that no single stride describes are materialised (broadcast included).
  if (sa === null) {
    ac = materialise(a, [...batchShape, M, K]);
    sa = batchStride(ac, batchShape);
  }
  if (sb === null) {
    bc = materialise(b, [...batchShape, K, N]);
    sb = batchStride(bc, batchShape);
  }
  const out = empty([...batchShape, M, N]);
  if (out.size === 0) return out;
  if (batch > gpu().limits.maxComputeWorkgroupsPerDimension) throw new Error(`matmul: batch ${batch} exceeds the device's grid limit`);
  const p = new Uint32Array(PARAM_WORDS);
  p.set([M, N, K, batch, ac.offset, bc.offset, 0, sa!, ac.strides[ac.ndim - 2], ac.strides[ac.ndim - 1],
    sb!, bc.strides[bc.ndim - 2], bc.strides[bc.ndim - 1], M * N, N]);
  const f = gpu().features;
  const kernel = forcedKernel && matmulKernelSupported(forcedKernel, f) ? forcedKernel : chooseMatmulKernel(f);
  const buffers = [ac.buffer, bc.buffer, out.buffer];
  if (kernel === 'naive') {
    const [x, y] = grid1d(Math.ceil((M * N) / 64));
    dispatch({ shader: shaders.matmul, entry: 'matmul_naive' }, { params: p, buffers, workgroups: [x, y, batch] });
  } else if (kernel === 'tiled') {
    const WG = 8;
    dispatch({ shader: shaders.matmul, entry: 'matmul_tiled', constants: { WG } }, { params: p, buffers, workgroups: [Math.ceil(N / (8 * WG)), Math.ceil(M / 16), batch] });
  } else if (kernel === 'sg8') {
    dispatch({ shader: shaders.matmulSubgroup, entry: 'matmul_sg8' }, { params: p, buffers, workgroups: [Math.ceil(N / 32), Math.ceil(M / 32), batch] });
  } else {
    dispatchSubgroupMatmul(p, buffers, M, N, batch);
  }
  if (ac !== a) ac.dispose();
  if (bc !== b) bc.dispose();
  return out;
}

function materialise(t: Tensor, shape: number[]): Tensor {
  const e = expandTo(t, shape);
  const c = clone(e);
  e.dispose();
  return c;
}

/** The quad-broadcast kernel: 16 x 8 outputs per invocation, 8 invocations per workgroup. */
function dispatchSubgroupMatmul(p: Uint32Array, buffers: Tensor['buffer'][], M: number, N: number, batch: number): void {
  const WG = 8;
  dispatch({ shader: shaders.matmulSubgroup, entry: 'matmul_quad', constants: { WG } }, { params: p, buffers, workgroups: [Math.ceil(N / (8 * WG)), Math.ceil(M / 16), batch] });
}

const matmulOp = defineOp<null>({
  name: 'matmul',
  forward: ([a, b]) => matmulRaw(a, b),
  backward: ({ inputs: [a, b] }, g) => [
    a.requiresGrad ? sumTo(matmulRaw(g, transpose(b)), a.shape) : null,
    b.requiresGrad ? sumTo(matmulRaw(transpose(a), g), b.shape) : null,
  ],
});

/**
 * Matrix product like torch.matmul: A [..., M, K] x B [..., K, N] with broadcast batch dims;
 * a 1-D A is a row vector and a 1-D B a column vector (the added dim is removed from the result).
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both operands need at least 1 dimension, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const K = a2.shape[a2.ndim - 1];
  if (b2.shape[b2.ndim - 2] !== K) {
    throw new Error(`matmul: inner dimensions differ: ${fmt(a.shape)} x ${fmt(b.shape)} (expected B's dim -2 to be ${K})`);
  }
  broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  let out = matmulOp([a2, b2], null);
  if (a.ndim === 1) out = reshape(out, [...out.shape.slice(0, -2), out.shape[out.ndim - 1]]);
  if (b.ndim === 1) out = reshape(out, out.shape.slice(0, -1));
  return out;
}
