// 2-D convolution (NCHW, groups 1) with PyTorch's semantics, as implicit GEMMs.
//
// Three GEMM kernels, written once in shaders/conv2d.wgsl and composed per variant with the snippet that
// brings the tile's shared rows to the lanes (each lane loading its own, 8-lane subgroup or quad
// broadcasts: shaders/conv2d_lanes_*.wgsl), or, for the workgroup-memory variants (wg*), with
// shaders/conv2d_wgmem.wgsl, whose entry points (conv2d_fwd_wg, ...) stage both operands' tiles in
// workgroup memory and reuse the body's BN-ReLU and stores: the forward conv, the input gradient (a
// transposed conv) and the weight gradient (split over the batch when its output is too small to occupy
// the device, then summed by conv2d_wgrad_reduce). The bias gradient, a sum of dy over (N, H, W), is one
// more column of the weight-gradient GEMM (x' = 1 there). Input gradients with few input channels (the
// stem, strided) take conv2d_dgrad_phase instead: a gather over input pixels grouped by stride phase that
// visits only the taps that hit.
//
// Every tensor a kernel touches may be a view: x, y, dy and dx need only their rows and columns
// contiguous (any offset, batch stride and channel stride), so the memory-efficient dense block can read
// a channel prefix of one buffer and write its conv output into a channel slice of the same buffer.
// The raw launchers (no autograd) also take a fused prologue: the conv reads relu(x * scale[c] + shift[c])
// (a BN-ReLU that is never stored; the zero padding stays zero), the weight gradient reads the same, and
// the input gradient can be masked by (x * scale[c] + shift[c] > 0) and added into its output.
//
// Storage types: x, y, dy, dx and the mask's x may each be float32 or float16 (every kernel computes and
// accumulates in float32; each activation binding's element type is one more parameter of the composed
// module, engine/storage.ts, taken from the buffer bound there). Weights, bias, the prologue's scale and
// shift, split-K partial sums, dw and db are float32. A new output takes x's dtype (forward) or dy's
// (input gradient) unless the `dtype` option says otherwise; a given `out` keeps its own.

import { defineOp } from '../autograd.js';
import { checkDtype, type DType } from '../dtype.js';
import { gpu, type GpuFeatures } from '../gpu.js';
import type { PooledBuffer } from '../pool.js';
import { dispatch, grid1d, PARAM_WORDS, spareBuffer, type KernelSource } from '../runtime.js';
import { storageTypes, typed } from '../storage.js';
import { selectVariant } from '../tuner.js';
import { CONV_TILES, forceVariant, forcedVariant, heuristicVariant, targetWorkgroups, type GemmTile, type VariantName } from '../variants.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { checkContiguous, checkInt, checkRank, checkShapeIs, checkVector } from './check.js';
import { unaryMap } from './map.js';
import { sum } from './reduce.js';
import { clone } from './views.js';
import bodySrc from '../../shaders/conv2d.wgsl';
import ownSrc from '../../shaders/conv2d_lanes_own.wgsl';
import quadSrc from '../../shaders/conv2d_lanes_quad.wgsl';
import sg8Src from '../../shaders/conv2d_lanes_sg8.wgsl';
import wgmemSrc from '../../shaders/conv2d_wgmem.wgsl';

/** The conv kernel variants (engine/variants.ts): subgroup (8-lane broadcast), quad, tiled, wg* (workgroup memory). */
export type ConvKernel = VariantName<'conv'>;

/** The heuristic kernels for adapter features (see engine/variants.ts). */
export function chooseConvKernel(f: GpuFeatures): ConvKernel {
  return heuristicVariant('conv', { features: f });
}

/** Forces one conv kernel family (tests use it to check each); null restores the automatic choice. */
export function forceConvKernel(k: ConvKernel | null): void {
  forceVariant('conv', k);
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
}

/** The fused BN-ReLU on the conv's input: x' = relu(x * scale[c] + shift[c]), scale and shift of length C. */
export interface ConvPrologue {
  scale: Tensor;
  shift: Tensor;
}

export interface Conv2dForwardOptions extends Conv2dOptions {
  bias?: Tensor | null;
  prologue?: ConvPrologue | null;
  /** Write y here (a view of shape [N, Cout, OH, OW] with rows and columns contiguous), in its dtype. */
  out?: Tensor | null;
  /** The dtype of a new y (default: x's); with `out`, it must be out's. */
  dtype?: DType;
}

export interface Conv2dInputGradOptions extends Conv2dOptions {
  /** Multiply dx by (x * scale[c] + shift[c] > 0): the gradient at the input of a fused BN-ReLU prologue's ReLU. */
  mask?: ({ x: Tensor } & ConvPrologue) | null;
  /** Write (or add, with accumulate) dx here, in its dtype: a view of x's shape with rows and columns contiguous. */
  out?: Tensor | null;
  accumulate?: boolean;
  /** The dtype of a new dx (default: dy's); with `out`, it must be out's. */
  dtype?: DType;
}

export interface Conv2dWeightGradOptions extends Conv2dOptions {
  prologue?: ConvPrologue | null;
  /** Write (or add, with accumulate) dw here: a contiguous float32 tensor of w's shape. */
  out?: Tensor | null;
  /**
   * Also write (or add, with accumulate) the bias gradient (dy summed over batch, rows and columns) here:
   * a contiguous float32 [Cout] tensor. The same kernel computes it, as one more GEMM column that reads ones.
   */
  biasOut?: Tensor | null;
  accumulate?: boolean;
}

interface Geometry {
  N: number; Cin: number; H: number; W: number; Cout: number; OH: number; OW: number; KH: number; KW: number;
  stride: number; padding: number;
}

// ---- checks -------------------------------------------------------------------------------------

/** Output size and checks of a conv of x [N, Cin, H, W] by w [Cout, Cin, KH, KW]. */
/** What both gradient launchers check first: x and the weight 4-D, dy 4-D and of the output's shape. */
function gradGeometry(op: string, dy: Tensor, xShape: readonly number[], wShape: readonly number[], o: Conv2dOptions): Geometry {
  checkRank(op, 'dy', dy, 4);
  for (const [what, shape] of [['x', xShape], ['the weight', wShape]] as const) {
    if (shape.length !== 4) throw new Error(`${op}: ${what} must have 4 dimensions, got shape ${fmt(shape)}`);
  }
  const g = geometry(op, xShape, wShape, o);
  checkShapeIs(op, 'dy', dy, [g.N, g.Cout, g.OH, g.OW]);
  return g;
}

function geometry(op: string, xShape: readonly number[], wShape: readonly number[], o: Conv2dOptions): Geometry {
  const stride = checkInt(op, 'stride', o.stride ?? 1, 1);
  const padding = checkInt(op, 'padding', o.padding ?? 0, 0);
  const [N, Cin, H, W] = xShape;
  const [Cout, wCin, KH, KW] = wShape;
  if (wCin !== Cin) {
    throw new Error(`${op}: x ${fmt(xShape)} has ${Cin} channels but the weight ${fmt(wShape)} expects ${wCin} (weight is [Cout, Cin, KH, KW])`);
  }
  if (KH > H + 2 * padding || KW > W + 2 * padding) {
    throw new Error(`${op}: kernel ${KH}x${KW} of weight ${fmt(wShape)} is larger than the padded input ${H + 2 * padding}x${W + 2 * padding} (x ${fmt(xShape)}, padding ${padding})`);
  }
  const OH = Math.floor((H + 2 * padding - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * padding - KW) / stride) + 1;
  return { N, Cin, H, W, Cout, OH, OW, KH, KW, stride, padding };
}

/** Rows and columns contiguous (the kernels' requirement on every activation-shaped view). */
function planeContiguous(t: Tensor): boolean {
  return t.strides[3] === 1 && (t.strides[2] === t.shape[3] || t.shape[2] === 1);
}

function checkPlane(op: string, what: string, t: Tensor): void {
  if (!planeContiguous(t)) {
    throw new Error(`${op}: ${what} ${fmt(t.shape)} (strides [${t.strides.join(', ')}]) needs contiguous rows and columns; only its batch and channel strides may be arbitrary`);
  }
}

// ---- dispatch -----------------------------------------------------------------------------------

/** Small buffers bound where a binding is unused (one each, so that a read and a writable one never alias). */
const dummies = () => ({ read: spareBuffer('conv-read'), write: spareBuffer('conv-write'), db: spareBuffer('conv-db') });

interface Launch {
  entry: 'conv2d_fwd' | 'conv2d_dgrad' | 'conv2d_wgrad';
  params: Uint32Array;
  /** X, Wt, G, O, Bias, Scale, Shift, DB */
  buffers: PooledBuffer[];
  constants: Record<string, number>;
  columns: number;
  rows: number;
  /** Workgroups along z (wgrad: splits); fwd and dgrad use z for row tiles. */
  splits?: number;
}

/**
 * 64 invocations per workgroup, or the smallest size (8, or the subgroup size) when 64 would leave too
 * few workgroups to occupy the device, or would idle more than a fifth of its invocations (a 7x7 stem's
 * weight gradient has 13 lanes of columns; the 3x3 stage's 72 pixels are 18 lanes). Two sizes only:
 * every pipeline variant is a separate compile.
 */
function pickWG(lanes: number, otherTiles: number, subgroup: boolean): number {
  const small = smallWG(subgroup);
  const groups = Math.ceil(lanes / 64);
  return groups * otherTiles >= targetWorkgroups() && groups * 64 <= 1.25 * lanes ? 64 : small;
}

/** The smallest workgroup pickWG() uses: 8 invocations, or the subgroup size for the subgroup kernels. */
function smallWG(subgroup: boolean): number {
  return Math.min(64, subgroup ? Math.max(8, gpu().features.subgroupMaxSize || 8) : 8);
}

/**
 * Columns per lane of a register-tile variant for a GEMM of `columns` columns: 4, or 8 for
 * subgroup-wide where that still leaves two of the smallest workgroups of lanes. Below that (the seed
 * DenseNet's 2x2 stage: 32 pixels) the wide tile leaves lanes idle on one core: measured on lavapipe,
 * the 2x2 forward and input gradient took 1.4-1.6x the 32x4 tile's time, while from the 4x4 stage up
 * (128 pixels and more) the wide tile took 0.8-1.0x.
 */
function colsPerLane(fam: { subgroup: boolean; cols: number }, columns: number): number {
  return fam.cols === 8 && Math.ceil(columns / 8) >= 2 * smallWG(fam.subgroup) ? 8 : 4;
}

const body: KernelSource = { file: 'conv2d.wgsl', source: bodySrc };
const snippet = (file: string, source: string): KernelSource => ({ file, source });
const own = snippet('conv2d_lanes_own.wgsl', ownSrc);
const sg8 = snippet('conv2d_lanes_sg8.wgsl', sg8Src);
interface Parts { snippets: KernelSource[]; enables?: string[]; variant?: string }
/** A workgroup-memory variant's parts: the own-lanes snippet (the body's entry points need one), its tile constants and conv2d_wgmem.wgsl. */
const wgmem = (v: keyof typeof CONV_TILES): Parts => {
  const t: GemmTile = CONV_TILES[v];
  const consts = snippet(
    `conv2d[${v}] constants`,
    `const BM: u32 = ${t.BM}u; const BN: u32 = ${t.BN}u; const BK: u32 = ${t.BK}u; const TM: u32 = ${t.TM}u; const TN: u32 = ${t.TN}u; const KS: u32 = ${t.KS ?? 1}u;`,
  );
  return { snippets: [own, consts, snippet('conv2d_wgmem.wgsl', wgmemSrc)], variant: v };
};
/**
 * What each variant composes with the body: its lanes snippet, named for profiles (conv2d[quad]:conv2d_fwd).
 * 'plain' holds the entry points outside the GEMMs (conv2d_dgrad_phase, conv2d_wgrad_reduce), on every
 * adapter: the tiled module (one module: the runtime caches by source), named without a variant.
 */
const variantParts: Record<ConvKernel | 'plain', Parts> = {
  subgroup: { snippets: [sg8], enables: ['subgroups'], variant: 'subgroup' },
  quad: { snippets: [snippet('conv2d_lanes_quad.wgsl', quadSrc)], enables: ['subgroups'], variant: 'quad' },
  // The wide variant is this module run with WIDE (32 x 8 tiles).
  'subgroup-wide': { snippets: [sg8], enables: ['subgroups'], variant: 'subgroup-wide' },
  tiled: { snippets: [own], variant: 'tiled' },
  wg32x32: wgmem('wg32x32'),
  wg64x64: wgmem('wg64x64'),
  wg32x128: wgmem('wg32x128'),
  wg32x32k2: wgmem('wg32x32k2'),
  wg32x32k4: wgmem('wg32x32k4'),
  plain: { snippets: [own] },
};

/** The storage types of the activation bindings X, G and O (bindings 1, 3 and 4; the rest are float32). */
interface Roles { X: DType; G: DType; O: DType }
const dtypeOf = (b: PooledBuffer): DType => (b.half ? 'float16' : 'float32');
/** The roles of a call: the element type of the buffer bound at each. */
function rolesOf(buffers: PooledBuffer[]): Roles {
  return { X: dtypeOf(buffers[0]), G: dtypeOf(buffers[2]), O: dtypeOf(buffers[3]) };
}

/** Composed modules by variant, then by the roles' float16 bits (X 1, G 2, O 4): built once each. */
const modules = new Map<ConvKernel | 'plain', KernelSource[]>();
function convShader(v: ConvKernel | 'plain', r: Roles): KernelSource {
  let byRoles = modules.get(v);
  if (!byRoles) modules.set(v, (byRoles = []));
  const i = (r.X === 'float16' ? 1 : 0) | (r.G === 'float16' ? 2 : 0) | (r.O === 'float16' ? 4 : 0);
  return (byRoles[i] ??= typed(body, { ...r }, variantParts[v]));
}

/** The composed module of a variant with every activation binding stored as `dtype` (tests compile every one). */
export function convSource(v: ConvKernel, dtype: DType = 'float32'): KernelSource {
  return convShader(v, { X: dtype, G: dtype, O: dtype });
}

/**
 * Whether a variant's register tiles share rows through subgroups, their columns per lane (4, or 8 for
 * subgroup-wide), and its workgroup-memory tile (wg*).
 */
function kernelFamily(k: ConvKernel): { subgroup: boolean; cols: number; tile: GemmTile | null } {
  const tile = k in CONV_TILES ? CONV_TILES[k as keyof typeof CONV_TILES] : null;
  const wide = k === 'subgroup-wide';
  return { subgroup: wide || k === 'subgroup' || k === 'quad', cols: wide ? 8 : 4, tile };
}

/** Rows (GEMM M) per invocation tile in the register-tile conv kernels (32 x 4 or 32 x 8 tiles, see conv2d.wgsl). */
const ROWS = 32;
/**
 * Input gradients with at most this many input channels (the stem) take conv2d_dgrad_phase, which visits
 * only the taps that hit (stride phases) and has no 32-row tile to fill.
 */
const PHASE_MAX_CIN = 4;
/** Phase rows per invocation of conv2d_dgrad_phase (its PR). */
const PHASE_ROWS = 4;

/** Dispatches with the variant the tuner selects for this entry, shape and flags (engine/tuner.ts). */
function launch(l: Launch): void {
  // float16 storage is tuned apart from float32 (its key and label name the storage types).
  // The key and the tuner's launcher are built only when the tuner asks (not with tuning off).
  const types = () => {
    const roles = rolesOf(l.buffers);
    return Object.values(roles).includes('float16') ? storageTypes({ ...roles }).key : '';
  };
  const key = () => {
    const t = types();
    return `${l.entry}|${Array.from(l.params.subarray(0, 11)).join(',')}|${Object.entries(l.constants).join(';')}|${l.splits ?? 1}${t && `|${t}`}`;
  };
  const run = (v: ConvKernel, buffers: PooledBuffer[]) => launchVariant(v, { ...l, buffers });
  const launcher = () => {
    const [N, Cin, H, W, Cout, OH, OW, KH, KW, stride] = l.params;
    const t = types();
    const label = `${l.entry} x[${N},${Cin},${H},${W}] w[${Cout},${Cin},${KH},${KW}] s${stride}${t && ` ${t}`}`;
    return { buffers: l.buffers, run, flops: 2 * N * Cout * OH * OW * Cin * KH * KW, label };
  };
  run(selectVariant('conv', key, launcher), l.buffers);
}

function launchVariant(variant: ConvKernel, l: Launch): void {
  const fam = kernelFamily(variant);
  const shader = convShader(variant, rolesOf(l.buffers));
  const constants = { ...l.constants };
  const t = fam.tile;
  if (t) {
    // One workgroup per BM x BN block (conv2d_wgmem.wgsl); the workgroup size is the tile's.
    const colBlocks = Math.ceil(l.columns / t.BN);
    const rowBlocks = Math.ceil(l.rows / t.BM);
    const kernel = { shader, entry: `${l.entry}_wg` };
    const workgroups: [number, number, number] =
      l.entry === 'conv2d_wgrad' ? [colBlocks, rowBlocks, l.splits ?? 1] : [...grid1d(colBlocks), rowBlocks] as [number, number, number];
    // The weights as vec4s where every row of them starts on one (binding 9, flag VECW); PROLOGUE and
    // XALIAS as the flags PRO and XAL (one pipeline per entry point: fewer compiles when tuning).
    const [, Cin, , , , , , KH, KW] = l.params;
    const vecW = l.entry === 'conv2d_fwd' && (Cin * KH * KW) % 4 === 0 && l.params[14] % 4 === 0;
    const params = l.params.slice();
    params[27] |= (vecW ? F.VECW : 0) | (constants.PROLOGUE ? F.PRO : 0) | (constants.XALIAS ? F.XAL : 0);
    dispatch(kernel, { params, buffers: [...l.buffers, l.buffers[1]], workgroups });
    return;
  }
  const cols = colsPerLane(fam, l.columns);
  const lanes = Math.ceil(l.columns / cols);
  const rowTiles = Math.ceil(l.rows / ROWS);
  if (cols === 8) constants.WIDE = 1;
  if (l.entry === 'conv2d_wgrad') {
    const wg = pickWG(lanes, rowTiles * (l.splits ?? 1), fam.subgroup);
    constants.WG = wg;
    dispatch({ shader, entry: l.entry, constants }, { params: l.params, buffers: l.buffers, workgroups: [Math.ceil(lanes / wg), rowTiles, l.splits ?? 1] });
  } else {
    const wg = pickWG(lanes, rowTiles, fam.subgroup);
    constants.WG = wg;
    const [x, y] = grid1d(Math.ceil(lanes / wg));
    dispatch({ shader, entry: l.entry, constants }, { params: l.params, buffers: l.buffers, workgroups: [x, y, rowTiles] });
  }
}

function baseParams(g: Geometry): Uint32Array {
  const p = new Uint32Array(PARAM_WORDS);
  p.set([g.N, g.Cin, g.H, g.W, g.Cout, g.OH, g.OW, g.KH, g.KW, g.stride, g.padding]);
  return p;
}

const flag = (b: boolean) => (b ? 1 : 0);
/** Bits of parameter word 27. */
const F = { BIAS: 1, MASK: 2, ACC: 4, GALIAS: 8, PARTIAL: 16, VECW: 32, PRO: 64, XAL: 128 } as const;

/** The storage of `t` must not be one of `outs` (the kernels cannot read a buffer they write through another binding). */
function checkNoAlias(op: string, what: string, t: Tensor | null | undefined, outs: Tensor[]): void {
  if (t && outs.some((o) => o.storage === t.storage)) {
    throw new Error(`${op}: ${what} ${fmt(t.shape)} shares its buffer with the output; pass a copy`);
  }
}

/** A per-channel scale and shift over n channels (a prologue or a mask). */
function checkScaleShift(op: string, what: string, t: { scale: Tensor; shift: Tensor }, n: number): void {
  checkVector(op, `${what} scale`, t.scale, n);
  checkVector(op, `${what} shift`, t.shift, n);
}

/** Tensors that stay float32 under mixed precision (weights, per-channel vectors, weight gradients). */
function checkFloat32(op: string, what: string, t: Tensor | null | undefined): void {
  if (t && t.dtype !== 'float32') {
    throw new Error(`${op}: ${what} ${fmt(t.shape)} is ${t.dtype}, expected float32 (only activations and their gradients may be float16; cast it with .float())`);
  }
}

/**
 * Where a raw launcher writes an [N, C, H, W] result: the given `out` view (checked) or a new tensor of
 * `o.dtype`, else of `dtype` (x's or dy's).
 */
function activationOut(op: string, o: { out?: Tensor | null; accumulate?: boolean; dtype?: DType }, shape: readonly number[], dtype: DType): Tensor {
  if (o.dtype !== undefined) checkDtype(op, o.dtype);
  if (!o.out) {
    if (o.accumulate) throw new Error(`${op}: accumulate needs an out tensor to add into`);
    return empty(shape, 'tensor', o.dtype ?? dtype);
  }
  checkRank(op, 'out', o.out, 4);
  checkShapeIs(op, 'out', o.out, shape);
  checkPlane(op, 'out', o.out);
  if (o.dtype !== undefined && o.dtype !== o.out.dtype) throw new Error(`${op}: dtype ${o.dtype} asked for, but out is ${o.out.dtype} (a given out keeps its dtype)`);
  return o.out;
}

// ---- raw launchers ------------------------------------------------------------------------------

/**
 * y = conv2d(x', w) + bias, where x' = x, or relu(x * scale[c] + shift[c]) with a prologue. No autograd.
 * x: [N, Cin, H, W] (a view: any batch and channel strides); w: [Cout, Cin, KH, KW] contiguous.
 * With `out` the result is written into that view (which may share x's buffer) and `out` is returned.
 */
export function conv2dForwardRaw(x: Tensor, w: Tensor, o: Conv2dForwardOptions = {}): Tensor {
  const op = 'conv2d';
  checkRank(op, 'x', x, 4);
  checkRank(op, 'weight', w, 4);
  const g = geometry(op, x.shape, w.shape, o);
  checkPlane(op, 'x', x);
  checkContiguous(op, 'weight', w);
  if (o.bias) checkVector(op, 'bias', o.bias, g.Cout);
  if (o.prologue) checkScaleShift(op, 'prologue', o.prologue, g.Cin);
  for (const [what, t] of [['weight', w], ['bias', o.bias], ['prologue scale', o.prologue?.scale], ['prologue shift', o.prologue?.shift]] as const) {
    checkFloat32(op, what, t);
  }
  const y = activationOut(op, o, [g.N, g.Cout, g.OH, g.OW], x.dtype);
  if (y.size === 0 || x.size === 0) return y;
  for (const [what, t] of [['weight', w], ['bias', o.bias], ['prologue scale', o.prologue?.scale], ['prologue shift', o.prologue?.shift]] as const) {
    checkNoAlias(op, what, t, [y]);
  }
  const xAlias = x.storage === y.storage;
  const p = baseParams(g);
  p.set([x.offset, x.strides[0], x.strides[1], w.offset, y.offset, y.strides[0], y.strides[1]], 11);
  p[21] = o.bias?.offset ?? 0;
  p[22] = o.prologue?.scale.offset ?? 0;
  p[23] = o.prologue?.shift.offset ?? 0;
  p[24] = g.N * g.OH * g.OW;
  p[27] = o.bias ? F.BIAS : 0;
  const wb = w.buffer;
  launch({
    entry: 'conv2d_fwd',
    params: p,
    buffers: [xAlias ? wb : x.buffer, wb, y.buffer, dummies().write, o.bias?.buffer ?? wb, o.prologue?.scale.buffer ?? wb, o.prologue?.shift.buffer ?? wb, dummies().db],
    constants: { PROLOGUE: flag(!!o.prologue), XALIAS: flag(xAlias) },
    columns: g.N * g.OH * g.OW,
    rows: g.Cout,
  });
  return y;
}

/**
 * dx = the gradient of conv2d(x, w) with respect to x, for x of shape `xShape`, from dy [N, Cout, OH, OW]
 * (a view). No autograd. With `mask`, dx is multiplied by (mask.x * scale[c] + shift[c] > 0); with `out`
 * it is written (or, with `accumulate`, added) into that view, which may share dy's buffer.
 */
export function conv2dInputGradRaw(dy: Tensor, w: Tensor, xShape: readonly number[], o: Conv2dInputGradOptions = {}): Tensor {
  const op = 'conv2d input gradient';
  checkRank(op, 'weight', w, 4);
  const g = gradGeometry(op, dy, xShape, w.shape, o);
  checkPlane(op, 'dy', dy);
  checkContiguous(op, 'weight', w);
  const m = o.mask;
  if (m) {
    checkRank(op, 'mask x', m.x, 4);
    checkShapeIs(op, 'mask x', m.x, xShape);
    checkPlane(op, 'mask x', m.x);
    checkScaleShift(op, 'mask', m, g.Cin);
  }
  for (const [what, t] of [['weight', w], ['mask scale', m?.scale], ['mask shift', m?.shift]] as const) checkFloat32(op, what, t);
  const dx = activationOut(op, o, xShape, dy.dtype);
  if (dx.size === 0) return dx;
  for (const [what, t] of [['weight', w], ['mask x', m?.x], ['mask scale', m?.scale], ['mask shift', m?.shift]] as const) {
    checkNoAlias(op, what, t, [dx, dy]);
  }
  const gAlias = dy.storage === dx.storage;
  const p = baseParams(g);
  p.set([m?.x.offset ?? 0, m?.x.strides[0] ?? 0, m?.x.strides[1] ?? 0, w.offset, dy.offset, dy.strides[0], dy.strides[1],
    dx.offset, dx.strides[0], dx.strides[1]], 11);
  p[22] = m?.scale.offset ?? 0;
  p[23] = m?.shift.offset ?? 0;
  p[24] = g.N * g.H * g.W;
  p[27] = (m ? F.MASK : 0) | (o.accumulate ? F.ACC : 0) | (gAlias ? F.GALIAS : 0);
  const wb = w.buffer;
  const buffers = [m?.x.buffer ?? wb, wb, dy.buffer, gAlias ? dummies().write : dx.buffer, wb, m?.scale.buffer ?? wb, m?.shift.buffer ?? wb, dummies().db];
  if (g.Cin <= PHASE_MAX_CIN) {
    // Few input channels: the gather over input pixels by stride phase (see conv2d_dgrad_phase).
    const groups = Math.ceil(Math.ceil(g.H / g.stride) / PHASE_ROWS);
    const runs = Math.ceil(Math.ceil(g.W / g.stride) / 16);
    p[28] = groups;
    p[29] = runs;
    const lanes = g.N * groups * runs;
    const WG = Math.ceil(lanes / 64) * g.stride * g.stride >= targetWorkgroups() ? 64 : 8;
    const [gx, gy] = grid1d(Math.ceil(lanes / WG));
    dispatch({ shader: convShader('plain', rolesOf(buffers)), entry: 'conv2d_dgrad_phase', constants: { WG } }, { params: p, buffers, workgroups: [gx, gy, g.stride * g.stride] });
    return dx;
  }
  launch({
    entry: 'conv2d_dgrad',
    params: p,
    buffers,
    constants: {},
    columns: g.N * g.H * g.W,
    rows: g.Cin,
  });
  return dx;
}

/**
 * dw = the gradient of conv2d(x', w) with respect to w (shape wShape = [Cout, Cin, KH, KW]), from x
 * (a view; x' = relu(x * scale[c] + shift[c]) with a prologue) and dy [N, Cout, OH, OW] (a view).
 * No autograd. With `out` it is written (or, with `accumulate`, added) there.
 */
export function conv2dWeightGradRaw(x: Tensor, dy: Tensor, wShape: readonly number[], o: Conv2dWeightGradOptions = {}): Tensor {
  const op = 'conv2d weight gradient';
  checkRank(op, 'x', x, 4);
  const g = gradGeometry(op, dy, x.shape, wShape, o);
  checkPlane(op, 'x', x);
  checkPlane(op, 'dy', dy);
  if (o.prologue) checkScaleShift(op, 'prologue', o.prologue, g.Cin);
  for (const [what, t] of [['prologue scale', o.prologue?.scale], ['prologue shift', o.prologue?.shift], ['out', o.out], ['biasOut', o.biasOut]] as const) {
    checkFloat32(op, what, t);
  }
  let dw: Tensor;
  if (o.out) {
    checkShapeIs(op, 'out', o.out, wShape);
    checkContiguous(op, 'out', o.out);
    dw = o.out;
  } else {
    if (o.accumulate) throw new Error(`${op}: accumulate needs an out tensor to add into`);
    dw = empty(wShape);
  }
  const db = o.biasOut ?? null;
  if (db) {
    checkVector(op, 'biasOut', db, g.Cout);
    if (db.storage === dw.storage) throw new Error(`${op}: biasOut shares its buffer with the weight gradient`);
  }
  if (dw.size === 0) return dw;
  const CK = g.Cin * g.KH * g.KW;
  // The GEMM's columns: dw's, and the bias gradient's as column CK.
  const LD = CK + (db ? 1 : 0);
  if (g.N * g.OH * g.OW === 0) {
    if (!o.accumulate) {
      // An empty sum: dw = 0 (and db = 0), through the reduce kernel with no splits.
      reduceInto(dw, db, null, 0, g.Cout, CK, LD, false);
    }
    return dw;
  }
  checkNoAlias(op, 'x', x, [dw]);
  checkNoAlias(op, 'dy', dy, [dw]);
  checkNoAlias(op, 'x', x, db ? [db] : []);
  checkNoAlias(op, 'dy', dy, db ? [db] : []);
  checkNoAlias(op, 'prologue scale', o.prologue?.scale, [dw, dy]);
  checkNoAlias(op, 'prologue shift', o.prologue?.shift, [dw, dy]);
  const xAlias = x.storage === dy.storage;
  // Split the k = (n, oh, ow) sum over enough workgroups to occupy the device, counting the workgroups of
  // the smallest size launch() may pick (a wg* variant: its BM x BN blocks; a register tile: 4 columns
  // per lane, also for subgroup-wide: counting its half as many lanes adds splits and reduction
  // passes that measured no faster on lavapipe at the seed's 16x16 to 4x4 shapes): most layers then
  // need no split (and no reduction pass).
  const rowsK = g.N * g.OH;
  // (The variant is chosen per launch, by the tuner when it is on; the forced or heuristic one sizes the split.)
  const fam = kernelFamily(forcedVariant('conv') ?? heuristicVariant('conv'));
  const tiles = fam.tile
    ? Math.ceil(LD / fam.tile.BN) * Math.ceil(g.Cout / fam.tile.BM)
    : Math.ceil(Math.ceil(LD / 4) / smallWG(fam.subgroup)) * Math.ceil(g.Cout / ROWS);
  let splits = Math.max(1, Math.min(rowsK, Math.ceil(targetWorkgroups() / tiles)));
  const perSplit = Math.ceil(rowsK / splits);
  splits = Math.ceil(rowsK / perSplit);
  const partial = splits > 1 ? empty([splits, g.Cout * LD], 'conv-partials') : null;
  const p = baseParams(g);
  p.set([x.offset, x.strides[0], x.strides[1], 0, dy.offset, dy.strides[0], dy.strides[1]], 11);
  p[18] = partial ? 0 : dw.offset;
  p[19] = g.Cout * LD;
  p[21] = partial ? 0 : db?.offset ?? 0;
  p[22] = o.prologue?.scale.offset ?? 0;
  p[23] = o.prologue?.shift.offset ?? 0;
  p.set([CK, perSplit, rowsK, partial ? F.PARTIAL : o.accumulate ? F.ACC : 0, LD], 24);
  // Bindings the weight gradient does not read get the float32 dummy (x may be float16).
  const d = dummies().read;
  launch({
    entry: 'conv2d_wgrad',
    params: p,
    buffers: [xAlias ? d : x.buffer, d, dy.buffer, partial ? partial.buffer : dw.buffer, d, o.prologue?.scale.buffer ?? d, o.prologue?.shift.buffer ?? d,
      !partial && db ? db.buffer : dummies().db],
    constants: { PROLOGUE: flag(!!o.prologue), XALIAS: flag(xAlias) },
    columns: LD,
    rows: g.Cout,
    splits,
  });
  if (partial) {
    reduceInto(dw, db, partial.buffer, splits, g.Cout, CK, LD, !!o.accumulate);
    partial.dispose();
  }
  return dw;
}

/**
 * dw (+)= the sum of `splits` slices of Cout x LD partials, and db (+)= their column CK when LD = CK + 1
 * (conv2d_wgrad_reduce); with no partials, writes zeros.
 */
function reduceInto(dw: Tensor, db: Tensor | null, partials: PooledBuffer | null, splits: number, Cout: number, CK: number, LD: number, accumulate: boolean): void {
  const p = new Uint32Array(PARAM_WORDS);
  p[4] = Cout;
  p[18] = dw.offset;
  p[21] = db?.offset ?? 0;
  p[24] = CK;
  p[25] = splits;
  p[27] = accumulate ? F.ACC : 0;
  p[28] = LD;
  const WG = 256;
  const d = dummies();
  const src = partials ?? d.read;
  dispatch(
    { shader: convShader('plain', { X: 'float32', G: 'float32', O: 'float32' }), entry: 'conv2d_wgrad_reduce', constants: { WG } },
    { params: p, buffers: [src, d.read, d.write, dw.buffer, d.read, d.read, d.read, db?.buffer ?? d.db], workgroups: grid1d(Math.ceil((Cout * LD) / WG)) },
  );
}

/** The bias gradient (float32): dy summed over batch, rows and columns (a float16 dy through a float32 copy). */
export function conv2dBiasGradRaw(dy: Tensor): Tensor {
  if (dy.dtype === 'float32') return sum(dy, [0, 2, 3]);
  const d = unaryMap('copy', dy, 0, empty(dy.shape, 'conv-bias-grad'));
  const db = sum(d, [0, 2, 3]);
  d.dispose();
  return db;
}

// ---- the op -------------------------------------------------------------------------------------

interface ConvAttrs {
  stride: number;
  padding: number;
  dtype: DType;
}

const conv2dOp = defineOp<ConvAttrs>({
  name: 'conv2d',
  forward: ([x, w, b], a) => conv2dForwardRaw(x, w, { ...a, bias: b ?? null }),
  backward: ({ inputs: [x, w, b], attrs }, gy) => {
    const g = planeContiguous(gy) ? gy : clone(gy);
    // The bias gradient comes from the weight-gradient kernel when there is one (no dispatch of its own).
    const db = b?.requiresGrad ? (w.requiresGrad ? empty([w.shape[0]]) : conv2dBiasGradRaw(g)) : null;
    return [
      x.requiresGrad ? conv2dInputGradRaw(g, w, x.shape, { ...attrs, dtype: x.dtype }) : null,
      w.requiresGrad ? conv2dWeightGradRaw(x, g, w.shape, { ...attrs, biasOut: b?.requiresGrad ? db : null }) : null,
      db,
    ];
  },
});

/**
 * 2-D convolution like torch.nn.functional.conv2d (groups 1): x [N, Cin, H, W], w [Cout, Cin, KH, KW],
 * optional bias [Cout]; output [N, Cout, floor((H + 2p - KH) / s) + 1, floor((W + 2p - KW) / s) + 1].
 * x may be float32 or float16 (x's gradient takes its dtype; y too, unless `dtype` names y's storage type,
 * as a mixed-precision stem does: a float32 image in, float16 activations out); w and the bias are
 * float32, and so are their gradients.
 */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, { stride = 1, padding = 0, dtype }: Conv2dOptions & { dtype?: DType } = {}): Tensor {
  checkRank('conv2d', 'x', x, 4);
  checkRank('conv2d', 'weight', w, 4);
  checkFloat32('conv2d', 'weight', w);
  const g = geometry('conv2d', x.shape, w.shape, { stride, padding });
  if (b != null) checkRank('conv2d', 'bias', b, 1);
  if (b != null) checkFloat32('conv2d', 'bias', b);
  if (b != null && b.shape[0] !== g.Cout) throw new Error(`conv2d: bias has shape ${fmt(b.shape)}, expected [${g.Cout}] for weight ${fmt(w.shape)}`);
  // Views the kernels cannot read directly are copied (the copy's gradient flows back through clone).
  const xs = planeContiguous(x) ? x : clone(x);
  const ws = w.isContiguous ? w : clone(w);
  const bs = b == null || b.strides[0] === 1 ? b : clone(b);
  return conv2dOp(bs ? [xs, ws, bs] : [xs, ws], { stride, padding, dtype: checkDtype('conv2d', dtype ?? x.dtype) });
}
