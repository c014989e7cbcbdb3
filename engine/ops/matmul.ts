// Batched matrix multiplication (torch.matmul semantics for >= 2-D inputs, 1-D promoted) with autograd.
// Kernels: matmul_naive (the reference-grade kernel) and one register-tile body (shaders/matmul.wgsl
// tile_main) composed per variant with the snippet that brings A and B to the lanes: each lane loading
// its own (tiled), quad or 8-lane subgroup broadcasts (quad, sg8), or workgroup-memory tiles staged
// with barriers (wg*, vec4 loads where the layout allows). The variants, what each needs and the
// default are in engine/variants.ts; which one runs a call is engine/tuner.ts's selectVariant().

import { defineOp } from '../autograd.js';
import { gpu, type GpuFeatures } from '../gpu.js';
import { compose, dispatch, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { broadcastShapes, broadcastStrides, collapse, fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { selectVariant } from '../tuner.js';
import { currentCaps, forceVariant, heuristicVariant, MATMUL_TILES, missingFor, type VariantName } from '../variants.js';
import { checkFloat32 } from './check.js';
import { sumTo } from './reduce.js';
import { clone, expandTo, reshape, transpose } from './views.js';
import bodySrc from '../../shaders/matmul.wgsl';
import lanesSrc from '../../shaders/matmul_lanes.wgsl';
import ownSrc from '../../shaders/matmul_lanes_own.wgsl';
import quadSrc from '../../shaders/matmul_lanes_quad.wgsl';
import sg8Src from '../../shaders/matmul_lanes_sg8.wgsl';
import wgmemSrc from '../../shaders/matmul_wgmem.wgsl';

export type MatmulKernel = VariantName<'matmul'>;

const body: KernelSource = { file: 'matmul.wgsl', source: bodySrc };
const part = (file: string, source: string): KernelSource => ({ file, source });
const lanes = part('matmul_lanes.wgsl', lanesSrc);
const snippets: Record<'own' | 'quad' | 'sg8' | 'wgmem', KernelSource[]> = {
  own: [lanes, part('matmul_lanes_own.wgsl', ownSrc)],
  quad: [lanes, part('matmul_lanes_quad.wgsl', quadSrc)],
  sg8: [lanes, part('matmul_lanes_sg8.wgsl', sg8Src)],
  wgmem: [part('matmul_wgmem.wgsl', wgmemSrc)],
};

/** The tile geometry of a variant: TX x TY invocations, TM x TN outputs each, K in chunks of BK. */
interface Geometry {
  TM: number;
  TN: number;
  TX: number;
  TY: number;
  BK: number;
  lanes: keyof typeof snippets;
}

function geometryOf(v: Exclude<MatmulKernel, 'naive'>): Geometry {
  if (v === 'sg8') return { TM: 32, TN: 4, TX: 8, TY: 1, BK: 64, lanes: 'sg8' };
  if (v === 'quad') return { TM: 16, TN: 8, TX: 8, TY: 1, BK: 64, lanes: 'quad' };
  if (v === 'tiled') return { TM: 16, TN: 8, TX: 8, TY: 1, BK: 64, lanes: 'own' };
  const t = MATMUL_TILES[v];
  return { TM: t.TM, TN: t.TN, TX: t.BN / t.TN, TY: t.BM / t.TM, BK: t.BK, lanes: 'wgmem' };
}

const composed = new Map<string, KernelSource>();
/** The composed module of a variant (cached: the runtime caches modules by their source). */
export function matmulSource(v: Exclude<MatmulKernel, 'naive'>): KernelSource {
  let src = composed.get(v);
  if (!src) {
    const g = geometryOf(v);
    const consts = part(`matmul[${v}] constants`, `const TM: u32 = ${g.TM}u; const TN: u32 = ${g.TN}u; const TX: u32 = ${g.TX}u; const TY: u32 = ${g.TY}u; const BK: u32 = ${g.BK}u;`);
    const enables = g.lanes === 'quad' || g.lanes === 'sg8' ? ['subgroups'] : [];
    src = compose(body, [consts, ...snippets[g.lanes]], { enables, variant: v });
    composed.set(v, src);
  }
  return src;
}

/** Whether the adapter can run a kernel (see engine/variants.ts). */
export function matmulKernelSupported(k: MatmulKernel, f: GpuFeatures): boolean {
  return missingFor('matmul', k, { ...currentCaps(), features: f }) === null;
}

/**
 * The heuristic kernel for adapter features alone (see engine/variants.ts): a pure function of them, so
 * without the adapter's kind; what runs here is heuristicVariant('matmul'), which also picks the
 * workgroup-memory tile on a hardware GPU without subgroups.
 */
export function chooseMatmulKernel(f: GpuFeatures): MatmulKernel {
  return heuristicVariant('matmul', { features: f });
}

/** Forces one matmul kernel (tests use it to check every kernel); null restores the automatic choice. */
export function forceMatmulKernel(k: MatmulKernel | null): void {
  forceVariant('matmul', k);
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
  const buffers = [ac.buffer, bc.buffer, out.buffer];
  const key = `${M}x${N}x${K}x${batch}|a${ac.strides[ac.ndim - 1] === 1 ? 'r' : 'c'}b${bc.strides[bc.ndim - 1] === 1 ? 'r' : 'c'}`;
  const run = (v: MatmulKernel, bufs: Tensor['buffer'][]) => launchMatmul(v, p, bufs, M, N, batch);
  run(selectVariant('matmul', key, { buffers, run, flops: 2 * M * N * K * batch, label: `matmul ${batch > 1 ? `${batch}x` : ''}[${M},${K}]x[${K},${N}]` }), buffers);
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

function launchMatmul(v: MatmulKernel, p: Uint32Array, buffers: Tensor['buffer'][], M: number, N: number, batch: number): void {
  if (v === 'naive') {
    const [x, y] = grid1d(Math.ceil((M * N) / 64));
    // The body needs a composition to compile; the plain one serves the naive entry point too.
    dispatch({ shader: matmulSource('tiled'), entry: 'matmul_naive' }, { params: p, buffers, workgroups: [x, y, batch] });
    return;
  }
  const g = geometryOf(v);
  const workgroups: [number, number, number] = [Math.ceil(N / (g.TX * g.TN)), Math.ceil(M / (g.TY * g.TM)), batch];
  if (g.lanes !== 'wgmem') {
    dispatch({ shader: matmulSource(v), entry: 'matmul_tile' }, { params: p, buffers, workgroups });
    return;
  }
  // vec4 staging where rows are contiguous and every row start is a multiple of 4 (matmul_wgmem.wgsl).
  const [, , K, , aOff, bOff, , aBs, aRs, aCs, bBs, bRs, bCs] = p;
  const aligned = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  const VEC_A = aCs === 1 && K >= 4 && aligned(K, aOff, aRs, batch > 1 ? aBs : 0) ? 1 : 0;
  const VEC_B = bCs === 1 && N >= 4 && aligned(N, bOff, bRs, batch > 1 ? bBs : 0) ? 1 : 0;
  dispatch(
    { shader: matmulSource(v), entry: 'matmul_tile', constants: { VEC_A, VEC_B } },
    { params: p, buffers: [...buffers, buffers[0], buffers[1]], workgroups },
  );
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
  checkFloat32('matmul', 'a', a);
  checkFloat32('matmul', 'b', b);
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
