// The kernel variants of every tunable family, in one table: for each family the candidates, what
// each needs from the adapter (features, subgroup sizes, limits) and the heuristic default; plus the
// adapter-dependent workgroup-size rules the ops share. Ops ask `selectVariant()` (engine/tuner.ts)
// which variant runs; tests, the benchmark and the demo page ask `supportedVariants()` which ones this
// adapter can run. No other file repeats these rules.
//
// A variant's needs are checked against `Caps` (the features and limits of an adapter), so the rules
// are pure functions that tests can call with made-up adapters.

import { envChoice } from './env.js';
import { gpu, isInitialised, type GpuFeatures } from './gpu.js';

/** What the rules look at: the adapter's features, and its limits and kind where a rule needs them. */
export interface Caps {
  features: GpuFeatures;
  limits?: Partial<Pick<GPUSupportedLimits, 'maxComputeInvocationsPerWorkgroup' | 'maxComputeWorkgroupStorageSize'>>;
  isFallbackAdapter?: boolean;
}

interface Variant {
  name: string;
  about: string;
  /** Why this adapter cannot run the variant (the missing feature or limit), or null if it can. */
  missing(c: Caps): string | null;
}

const subgroupDesc = (f: GpuFeatures) =>
  f.subgroups ? `subgroups of ${f.subgroupMinSize}${f.subgroupMaxSize !== f.subgroupMinSize ? `-${f.subgroupMaxSize}` : ''} lanes` : 'no subgroups feature';

const always = (): null => null;
/** Needs the `subgroups` feature with every subgroup size satisfying `ok`. */
const subgroups = (what: string, ok: (f: GpuFeatures) => boolean) => (c: Caps) =>
  c.features.subgroups && ok(c.features) ? null : `needs ${what} (this adapter: ${subgroupDesc(c.features)})`;
const sgExactly8 = subgroups('subgroups of exactly 8 lanes', (f) => f.subgroupMinSize === 8 && f.subgroupMaxSize === 8);
const sgAtLeast8 = subgroups('subgroups of at least 8 lanes', (f) => f.subgroupMinSize >= 8);
const sgQuads = subgroups('subgroups of a multiple of 4 lanes', (f) => f.subgroupMinSize >= 4 && f.subgroupMinSize % 4 === 0);
const sgAny = subgroups('the subgroups feature', () => true);

/** Needs `invocations` per workgroup and `storage` bytes of workgroup memory. */
const workgroup = (invocations: number, storage: number) => (c: Caps) => {
  const inv = c.limits?.maxComputeInvocationsPerWorkgroup ?? 256;
  const mem = c.limits?.maxComputeWorkgroupStorageSize ?? 16384;
  if (inv < invocations) return `needs ${invocations} invocations per workgroup (this adapter: ${inv})`;
  if (mem < storage) return `needs ${storage} bytes of workgroup memory (this adapter: ${mem})`;
  return null;
};

/**
 * A workgroup-memory GEMM tile: BM x BN outputs per workgroup, TM x TN per invocation, BK deep; with KS
 * (conv only; default 1) K slices of BM/TM * BN/TN invocations, which share the staged chunk (KS * BK
 * deep) and add their tiles at the end.
 */
export interface GemmTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
  KS?: number;
}
/** The workgroup-memory matmul tiles, by variant name (invocations = BM/TM * BN/TN). */
export const MATMUL_TILES: Record<string, GemmTile> = {
  wg32x32: { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4 }, // 64 invocations
  wg64x64: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 }, // 256 invocations
  wg128x64: { BM: 128, BN: 64, BK: 8, TM: 8, TN: 4 }, // 256 invocations
  wg64x64r8: { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 }, // 64 invocations
};
/**
 * The workgroup-memory conv tiles (shaders/conv2d_wgmem.wgsl), by variant name: BM GEMM rows (output
 * channels; input gradient: input channels) by BN columns (pixels; weight gradient: weights). Staging
 * needs NT = BM/TM * BN/TN invocations to be a multiple of BN, and KS * BK a multiple of 4. The k* rows
 * (KS > 1) split K inside the workgroup, for GEMMs of one or a few blocks (the 4x4 and 2x2 stages), so
 * that a GPU gets 2-4x the lanes per block. On lavapipe they do not pay (a workgroup runs on one thread:
 * slices add lanes, not cores): interleaved at the seed's 4x4 and 2x2 shapes, wg32x32k2 took 0.9-1.2x
 * wg32x32's time and wg32x32k4 1.1-1.5x, and wg32x32 itself 4-8x the subgroup kernels' time.
 */
export const CONV_TILES = {
  wg32x32: { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4 }, // 64 invocations
  wg64x64: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 }, // 256 invocations
  wg32x128: { BM: 32, BN: 128, BK: 8, TM: 4, TN: 8 }, // 128 invocations (DenseNet's growth-rate 32 convs fill BM)
  wg32x32k2: { BM: 32, BN: 32, BK: 8, TM: 4, TN: 4, KS: 2 }, // 128 invocations, chunks of 16 k as wg32x32's
  wg32x32k4: { BM: 32, BN: 32, BK: 4, TM: 4, TN: 4, KS: 4 }, // 256 invocations, chunks of 16 k
} as const satisfies Record<string, GemmTile>;

/** Invocations of a workgroup-memory tile. */
const tileInvocations = (t: GemmTile): number => (t.KS ?? 1) * (t.BM / t.TM) * (t.BN / t.TN);

/** Workgroup memory of a tile: the staged chunk, or (KS > 1) the other slices' tiles if more. */
const tileBytes = (t: GemmTile): number => {
  const ks = t.KS ?? 1;
  return 4 * Math.max(ks * t.BK * (t.BM + t.BN), (ks - 1) * t.BM * t.BN);
};

const tileVariant = <N extends string>(name: N, t: GemmTile) => {
  const inv = tileInvocations(t);
  const ks = t.KS ?? 1;
  const staged = ks * t.BK;
  return {
    name,
    about: `workgroup-memory tiles ${t.BM}x${staged} and ${staged}x${t.BN} staged with barriers, ${t.TM}x${t.TN} per invocation, ${inv} invocations` +
      (ks > 1 ? ` in ${ks} K slices of ${t.BK} (tiles added at the end)` : ''),
    missing: workgroup(inv, tileBytes(t)),
  };
};
const convTile = <N extends keyof typeof CONV_TILES>(name: N) => tileVariant(name, CONV_TILES[name]);

const table = {
  matmul: [
    { name: 'sg8', about: '32x32 tile per 8-lane subgroup, A rows shared with subgroupBroadcast', missing: sgExactly8 },
    { name: 'quad', about: '16x8 register tile, A rows shared with quadBroadcast', missing: sgQuads },
    { name: 'tiled', about: '16x8 register tile, every lane loads its own rows', missing: always },
    ...Object.keys(MATMUL_TILES).map((n) => tileVariant(n, MATMUL_TILES[n])),
    { name: 'naive', about: 'one output per invocation (the reference-grade kernel)', missing: always },
  ],
  conv: [
    { name: 'subgroup', about: '32x4 register tiles, the 32 rows shared with subgroupBroadcast among 8 lanes', missing: sgAtLeast8 },
    { name: 'quad', about: '32x4 register tiles, the rows shared with quadBroadcast among 4 lanes', missing: sgQuads },
    { name: 'tiled', about: '32x4 register tiles, every lane loads its own rows', missing: always },
    { name: 'subgroup-wide', about: '32x8 register tiles (32x4 on GEMMs too narrow to fill two workgroups), the rows shared with subgroupBroadcast among 8 lanes', missing: sgAtLeast8 },
    convTile('wg32x32'),
    convTile('wg64x64'),
    convTile('wg32x128'),
    convTile('wg32x32k2'),
    convTile('wg32x32k4'),
  ],
  bnStats: [
    { name: 'subgroup', about: 'lanes combined with subgroupAdd, one workgroup-memory step', missing: sgAny },
    { name: 'fallback', about: 'workgroup-memory tree with barriers', missing: always },
  ],
  bnBackward: [
    { name: 'fused', about: 'one dispatch: a workgroup per channel sums, then writes dx', missing: always },
    { name: 'split', about: 'two dispatches: the sums (a workgroup per channel), then dx (a workgroup per channel and image)', missing: always },
  ],
} as const satisfies Record<string, readonly Variant[]>;

export type Family = keyof typeof table;
export type VariantName<F extends Family> = (typeof table)[F][number]['name'];
export const FAMILIES = Object.keys(table) as Family[];

// ---- the rules' view of the adapter --------------------------------------------------------------

let hardwareRules: boolean | null = null; // null: $DENSENET_RULES on first use

/**
 * Whether the rules treat the adapter as a hardware GPU whatever it is: `assumeHardwareRules(true)`, or
 * DENSENET_RULES=hardware in Node. On a software adapter this runs the code paths a GPU takes (256
 * workgroups to fill, 64-lane plane kernels with one image each, the two-dispatch batch-norm backward,
 * the workgroup-memory matmul where subgroups are missing), so the CPU-reference tests check them
 * without a GPU. Speed is not the point: those sizes are slow on a CPU.
 */
export function rulesAssumeHardware(): boolean {
  hardwareRules ??= envChoice('DENSENET_RULES', ['adapter', 'hardware'] as const) === 'hardware';
  return hardwareRules;
}

/** Makes the rules treat the adapter as a hardware GPU (true) or as what it is (false); see rulesAssumeHardware(). */
export function assumeHardwareRules(on: boolean): void {
  hardwareRules = on;
}

/** The current adapter's caps as the rules see them (the engine must be initialised). */
export function currentCaps(): Caps {
  const g = gpu();
  return { features: g.features, limits: g.limits, isFallbackAdapter: g.adapter.isFallbackAdapter && !rulesAssumeHardware() };
}

function variant(family: Family, name: string): Variant {
  const v = (table[family] as readonly Variant[]).find((x) => x.name === name);
  if (!v) throw new Error(`${family}: unknown kernel variant '${name}' (known: ${allVariants(family).join(', ')})`);
  return v;
}

/** Every candidate of a family, whatever the adapter. */
export function allVariants<F extends Family>(family: F): VariantName<F>[] {
  return (table[family] as readonly Variant[]).map((v) => v.name) as VariantName<F>[];
}

/** One line on what a variant is. */
export function describeVariant(family: Family, name: string): string {
  return variant(family, name).about;
}

/** Why the adapter cannot run a variant (e.g. 'needs subgroups of exactly 8 lanes ...'), or null if it can. */
export function missingFor(family: Family, name: string, caps: Caps = currentCaps()): string | null {
  return variant(family, name).missing(caps);
}

/** The variants of a family this adapter can run, in table order. */
export function supportedVariants<F extends Family>(family: F, caps: Caps = currentCaps()): VariantName<F>[] {
  return allVariants(family).filter((n) => missingFor(family, n, caps) === null);
}

/**
 * The heuristic default, a pure function of the adapter: on 8-lane subgroups (lavapipe) the
 * subgroup-broadcast kernels, on other multiples of 4 the quad ones; matmul on a hardware GPU without
 * them the workgroup-memory tile; else the register tiles that need nothing. Conv on a CPU adapter with
 * subgroups of 8 or more: the wide (32x8) tiles, which measured 0.8-0.92x the 32x4 tiles' time on
 * lavapipe from the 8x8 stage up (a GPU's registers would not hold them). The conv
 * workgroup-memory tiles are never the default: their speed on GPUs is unmeasured, so only the tuner
 * (which times every supported candidate) picks them. Batch norm's backward is one dispatch on a CPU
 * adapter (few, fat workgroups) and two on a GPU (dx wants a workgroup per image).
 */
export function heuristicVariant<F extends Family>(family: F, caps: Caps = currentCaps()): VariantName<F> {
  const ok = (n: string) => missingFor(family, n, caps) === null;
  const first = (names: string[]) => names.find(ok) as VariantName<F>;
  if (family === 'matmul') return first(['sg8', 'quad', ...(caps.isFallbackAdapter === false ? ['wg64x64'] : []), 'tiled']);
  if (family === 'conv') return first(caps.isFallbackAdapter ? ['subgroup-wide', 'quad', 'tiled'] : ['subgroup', 'quad', 'tiled']);
  if (family === 'bnBackward') return first(caps.isFallbackAdapter ? ['fused', 'split'] : ['split', 'fused']);
  return first(['subgroup', 'fallback']);
}

const forced = new Map<Family, string>();

/**
 * Forces one variant of a family (tests check every variant this way); null restores the automatic
 * choice. A variant the adapter cannot run is an error naming it and what it needs.
 */
export function forceVariant<F extends Family>(family: F, name: VariantName<F> | null): void {
  if (name === null) {
    forced.delete(family);
    return;
  }
  variant(family, name);
  if (isInitialised()) checkRunnable(family, name);
  forced.set(family, name);
}

/** Throws an error naming the variant and what it needs when the adapter (`caps`) cannot run it. */
export function checkRunnable(family: Family, name: string, caps: Caps = currentCaps()): void {
  const why = missingFor(family, name, caps);
  if (why) throw new Error(`${family} kernel variant '${name}' cannot run on this adapter: it ${why}`);
}

/** The forced variant of a family, or null (checked against the adapter). */
export function forcedVariant<F extends Family>(family: F): VariantName<F> | null {
  const name = forced.get(family);
  if (name === undefined) return null;
  checkRunnable(family, name);
  return name as VariantName<F>;
}

// ---- workgroup-size rules ------------------------------------------------------------------------

/**
 * Workgroups one dispatch should have to occupy the device: a CPU adapter runs a few workgroups per
 * core at once, a GPU needs hundreds.
 */
export function targetWorkgroups(caps: Caps = currentCaps()): number {
  return caps.isFallbackAdapter ? 16 : 256;
}

/**
 * Workgroup size of the per-channel and per-plane kernels (batch norm, pooling). On CPU adapters one
 * 8-lane workgroup measured fastest (lavapipe runs a workgroup's vectors one after another and pays for
 * every barrier, so small workgroups balance best); GPUs want wider ones.
 */
export function planeWorkgroupSize(caps: Caps = currentCaps()): number {
  return caps.isFallbackAdapter ? 8 : 64;
}

/**
 * Images per workgroup of the per-channel plane kernels (pooling, batch norm's apply and split
 * backward): a CPU adapter pays for every workgroup and runs only a few at once, so one workgroup takes
 * as many images of its channel as still leaves targetWorkgroups() of them (small planes then fill the
 * lanes); a GPU wants one workgroup per (channel, image).
 */
export function planeImagesPerWorkgroup(N: number, C: number, caps: Caps = currentCaps()): number {
  if (!caps.isFallbackAdapter) return 1;
  return Math.max(1, Math.min(N, Math.floor((N * C) / targetWorkgroups(caps))));
}
