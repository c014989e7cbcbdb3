// 2-D pooling over NCHW with autograd: maxPool2d, avgPool2d (PyTorch defaults: floor mode,
// count_include_pad = true) and adaptiveAvgPool2d (PyTorch's window formula).
// Forward: one invocation per output; backward: one per 2x2 cell of input elements, gathering from the
// windows that overlap it (no atomics). Max pooling saves the arg-max of each output for backward.
// The raw launchers (maxPoolRaw, avgPoolRaw) serve fused ops: batch norm's BN-ReLU-max-pool (the pooling
// reads relu(x * scale + shift) as its prologue) and the dense block's transition tail.
// x may be any strided [N, C, H, W] view (channel views of a shared buffer included); outputs are contiguous.
// x, y and the gradients are float32 or float16 storage (roles A: what a kernel reads, OUT: what it
// writes; engine/storage.ts): y and dx have x's dtype, dy may be either; sums, comparisons and max
// pooling's arg-max indices are float32.

import { defineOp } from '../autograd.js';
import { dispatch, PARAM_WORDS, spareBuffer, type KernelSource } from '../runtime.js';
import { typed } from '../storage.js';
import type { DType } from '../dtype.js';
import { fmt, pair } from '../shape.js';
import { empty, Tensor } from '../tensor.js';
import { checkGrid, checkTensor } from './check.js';
import { planeImagesPerWorkgroup, planeWorkgroupSize } from '../variants.js';
import maxSrc from '../../shaders/maxpool2d.wgsl';
import avgSrc from '../../shaders/avgpool2d.wgsl';
import commonSrc from '../../shaders/pool_common.wgsl';

const common: KernelSource = { file: 'pool_common.wgsl', source: commonSrc };
const maxBody: KernelSource = { file: 'maxpool2d.wgsl', source: maxSrc };
const avgBody: KernelSource = { file: 'avgpool2d.wgsl', source: avgSrc };
/** A pooling body composed with pool_common.wgsl, reading A and writing OUT in these storage types. */
const poolShader = (body: KernelSource, A: DType, OUT: DType) => typed(body, { A, OUT }, { snippets: [common] });
/** The pooling modules as the engine compiles them, for the shader tests: each body with `dtype` storage. */
export const poolShaders = (dtype: DType): KernelSource[] => [maxBody, avgBody].map((b) => poolShader(b, dtype, dtype));
/** Workgroup size (see engine/variants.ts). */
const workgroupSize = () => planeWorkgroupSize();

export interface Pool2dOptions {
  kernel: number | [number, number];
  /** Defaults to the kernel size. */
  stride?: number | [number, number];
  padding?: number | [number, number];
}

interface Geometry {
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; OH: number; OW: number;
}

function checkInput(op: string, x: unknown): asserts x is Tensor {
  checkTensor(op, 'x', x);
  if (x.ndim !== 4) throw new Error(`${op}: expected x of shape [N, C, H, W], got ${fmt(x.shape)}`);
  checkGrid(op, x);
}

/** A number or an [h, w] pair from the options, or a clear error naming the op and the option. */
function option(op: string, name: string, v: unknown): [number, number] {
  if (typeof v === 'number' || (Array.isArray(v) && v.length === 2)) return pair(v as number | [number, number]);
  throw new Error(`${op}: ${name} must be a number or a pair [h, w], got ${v === undefined ? 'none' : JSON.stringify(v)}`);
}

function geometry(op: string, shape: readonly number[], o: Pool2dOptions): Geometry {
  if (o?.kernel === undefined) throw new Error(`${op}: options.kernel (the window size, a number or [h, w]) is required`);
  const [kh, kw] = option(op, 'kernel', o.kernel);
  const [sh, sw] = option(op, 'stride', o.stride ?? o.kernel);
  const [ph, pw] = option(op, 'padding', o.padding ?? 0);
  const [, , H, W] = shape;
  const desc = `kernel [${kh}, ${kw}], stride [${sh}, ${sw}], padding [${ph}, ${pw}]`;
  if (![kh, kw, sh, sw].every((v) => Number.isInteger(v) && v > 0)) throw new Error(`${op}: kernel and stride must be positive integers, got ${desc}`);
  if (![ph, pw].every((v) => Number.isInteger(v) && v >= 0)) throw new Error(`${op}: padding must be a non-negative integer, got ${desc}`);
  if (2 * ph > kh || 2 * pw > kw) throw new Error(`${op}: padding should be at most half of the kernel size, got ${desc}`);
  if (kh > H + 2 * ph || kw > W + 2 * pw) throw new Error(`${op}: the ${desc} is larger than the padded input of shape ${fmt(shape)}`);
  return { kh, kw, sh, sw, ph, pw, OH: Math.floor((H + 2 * ph - kh) / sh) + 1, OW: Math.floor((W + 2 * pw - kw) / sw) + 1 };
}

function poolParams(a: Tensor, [N, C, H, W]: readonly number[], g: Geometry): Uint32Array {
  const p = new Uint32Array(PARAM_WORDS);
  p.set([N, C, H, W, g.OH, g.OW, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, a.offset, ...a.strides]);
  return p;
}

/**
 * Runs `entry` with one workgroup per (channel, group of images) (see engine/variants.ts); a null buffer
 * is a binding this entry point does not use (max pooling's prologue).
 */
function run(shader: KernelSource, entry: string, p: Uint32Array, buffers: Array<Tensor | null>, N: number, C: number, constants: Record<string, number> = {}): void {
  const G = planeImagesPerWorkgroup(N, C);
  p[21] = G;
  dispatch(
    { shader, entry, constants: { WG: workgroupSize(), ...constants } },
    { params: p, buffers: buffers.map((t, i) => t?.buffer ?? spareBuffer(`pool-${i}`)), workgroups: [C, Math.ceil(N / G)] },
  );
}

/**
 * Runs a backward `entry` (see run()), its invocations walking the 2x2 cells of input pixels
 * (pool_common.wgsl). With stride 2 the cells are shifted by the padding's parity
 * so that they line up with the windows.
 */
function runCells(shader: KernelSource, entry: string, p: Uint32Array, buffers: Array<Tensor | null>, [N, C, H, W]: readonly number[], g: Geometry): void {
  const ah = g.sh === 2 ? g.ph % 2 : 0;
  const aw = g.sw === 2 ? g.pw % 2 : 0;
  p.set([Math.ceil((H + ah) / 2), Math.ceil((W + aw) / 2), ah, aw], 17);
  run(shader, entry, p, buffers, N, C);
}

/** A BN-ReLU applied to max pooling's input as it is read: relu(x * scale[c] + shift[c]), float32 [C] each. */
export interface PoolPrologue {
  scale: Tensor;
  shift: Tensor;
}

/** Max pooling's forward (no autograd): y in x's dtype and the arg-max of each output; with `prologue`, of relu(x * scale + shift). */
function maxForward(x: Tensor, g: Geometry, prologue: PoolPrologue | null): { y: Tensor; idx: Tensor } {
  const [N, C] = x.shape;
  const y = empty([N, C, g.OH, g.OW], 'tensor', x.dtype);
  const idx = empty([N, C, g.OH, g.OW], 'pool-index');
  if (!y.size) return { y, idx };
  // The scale and shift are read through one binding: views of one buffer (batchNormPrologue's [2, C]).
  if (prologue && prologue.scale.storage !== prologue.shift.storage) throw new Error('maxPool2d prologue: scale and shift must be views of one buffer');
  const p = poolParams(x, x.shape, g);
  p[22] = prologue?.scale.offset ?? 0;
  p[23] = prologue?.shift.offset ?? 0;
  run(poolShader(maxBody, x.dtype, y.dtype), 'max_pool_fwd', p, [x, y, idx, prologue?.scale ?? null], N, C, { PROLOGUE: prologue ? 1 : 0 });
  return { y, idx };
}

/** Max pooling's backward (no autograd): dx of x's shape in `dtype`, from dy and the forward's arg-max. */
function maxBackward(dy: Tensor, idx: Tensor, xShape: readonly number[], g: Geometry, dtype: DType): Tensor {
  const dx = empty(xShape, 'tensor', dtype);
  if (dx.size) runCells(poolShader(maxBody, dy.dtype, dx.dtype), 'max_pool_bwd', poolParams(dy, xShape, g), [dy, dx, idx, null], xShape, g);
  return dx;
}

const maxPoolOp = defineOp<Geometry>({
  name: 'maxPool2d',
  forward: ([x], g, saved) => {
    const { y, idx } = maxForward(x, g, null);
    saved.push(idx);
    return y;
  },
  backward: ({ inputs: [x], attrs: g, saved: [idx] }, dy) => [maxBackward(dy, idx, x.shape, g, x.dtype)],
});

/**
 * The raw launchers of a max pooling whose input is relu(batchnorm(x)) (engine/ops/batchnorm.ts fuses
 * them, so that the normalised tensor is never stored): the checked geometry, the forward with the
 * prologue, and the backward to the gradient at the pooling's input.
 */
export const maxPoolRaw = {
  geometry: (op: string, x: Tensor, options: Pool2dOptions): Geometry => {
    checkInput(op, x);
    if (x.shape[2] * x.shape[3] >= 2 ** 24) throw new Error(`${op}: planes of ${fmt(x.shape)} are too large (arg-max indices are stored as f32)`);
    return geometry(op, x.shape, options);
  },
  forward: maxForward,
  backward: maxBackward,
};
export type PoolGeometry = Geometry;

type AvgGeometry = Geometry & { adaptive: boolean };

/** Average pooling's forward (no autograd): y in x's dtype; with `prologue` (not adaptive), of relu(x * scale + shift). */
function avgForward(x: Tensor, g: AvgGeometry, prologue: PoolPrologue | null = null): Tensor {
  const [N, C] = x.shape;
  const out = empty([N, C, g.OH, g.OW], 'tensor', x.dtype);
  if (!out.size) return out;
  if (prologue && (g.adaptive || prologue.scale.storage !== prologue.shift.storage)) {
    throw new Error('avgPool2d prologue: needs a plain (not adaptive) pooling, and scale and shift as views of one buffer');
  }
  const p = poolParams(x, x.shape, g);
  p[22] = prologue?.scale.offset ?? 0;
  p[23] = prologue?.shift.offset ?? 0;
  run(poolShader(avgBody, x.dtype, out.dtype), g.adaptive ? 'adaptive_avg_fwd' : 'avg_pool_fwd', p, [x, out, prologue?.scale ?? null], N, C, g.adaptive ? {} : { PROLOGUE: prologue ? 1 : 0 });
  return out;
}

/** Average pooling's backward (no autograd): dx of x's shape in `dtype`. */
function avgBackward(dy: Tensor, xShape: readonly number[], g: AvgGeometry, dtype: DType): Tensor {
  const dx = empty(xShape, 'tensor', dtype);
  if (dx.size) runCells(poolShader(avgBody, dy.dtype, dx.dtype), g.adaptive ? 'adaptive_avg_bwd' : 'avg_pool_bwd', poolParams(dy, xShape, g), [dy, dx, null], xShape, g);
  return dx;
}

const avgPoolOp = defineOp<AvgGeometry>({
  name: 'avgPool2d',
  forward: ([x], g) => avgForward(x, g),
  backward: ({ inputs: [x], attrs: g }, dy) => [avgBackward(dy, x.shape, g, x.dtype)],
});

/** The raw launchers of average pooling (the dense block runs a transition's pooling inside its op). */
export const avgPoolRaw = {
  /** The checked geometry of pooling x, or an input of this [N, C, H, W] shape. */
  geometry: (op: string, x: Tensor | readonly number[], options: Pool2dOptions): AvgGeometry => {
    if (x instanceof Tensor) checkInput(op, x);
    return { ...geometry(op, x instanceof Tensor ? x.shape : x, options), adaptive: false };
  },
  forward: avgForward,
  backward: avgBackward,
};
export type AvgPoolGeometry = AvgGeometry;

/**
 * Max pooling like torch.nn.functional.max_pool2d (floor mode, padding counts as -inf). Backward sends
 * each output's gradient to the first maximum of its window (rows, then columns).
 */
export function maxPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  return maxPoolOp([x], maxPoolRaw.geometry('maxPool2d', x, options));
}

/** Average pooling like torch.nn.functional.avg_pool2d (floor mode, count_include_pad = true). */
export function avgPool2d(x: Tensor, options: Pool2dOptions): Tensor {
  return avgPoolOp([x], avgPoolRaw.geometry('avgPool2d', x, options));
}

/**
 * Adaptive average pooling like torch.nn.functional.adaptive_avg_pool2d: output cell i averages input
 * rows [floor(i*H/OH), ceil((i+1)*H/OH)) (and the same for columns).
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number, number]): Tensor {
  checkInput('adaptiveAvgPool2d', x);
  const [OH, OW] = pair(outputSize);
  if (![OH, OW].every((v) => Number.isInteger(v) && v > 0)) {
    throw new Error(`adaptiveAvgPool2d: output size must be positive integers, got [${OH}, ${OW}] for x of shape ${fmt(x.shape)}`);
  }
  if (x.shape[2] === 0 || x.shape[3] === 0) throw new Error(`adaptiveAvgPool2d: empty spatial input ${fmt(x.shape)}`);
  return avgPoolOp([x], { kh: 0, kw: 0, sh: 1, sw: 1, ph: 0, pw: 0, OH, OW, adaptive: true });
}
