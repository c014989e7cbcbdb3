// The WebGPU device: one adapter and one device per process.
//
// `init()` finds an adapter (Node: Dawn through the npm package `webgpu`; browser: `navigator.gpu`),
// asks for the adapter's largest buffer limits and for the optional features it has (`subgroups`,
// `timestamp-query`, `shader-f16`), and records them in `gpu().features` so kernels can pick variants.
// Errors that WebGPU reports asynchronously (validation, out-of-memory, a lost device) are stored
// here and thrown as JS errors at the next sync point by `checkDeviceErrors()`.
// `memoryBudget` is the buffer pool's default cap: WebGPU tells nothing about device memory, so it is
// derived only where the device memory is the host's (a CPU adapter under Node: 3/4 of the RAM, and at
// most 3/5 of the address space left under `ulimit -v`); elsewhere 0 (no cap: Dawn's out-of-memory
// errors are caught instead). `init({ memoryBudget })` or `pool.budgetBytes` sets it.

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
}

export interface GpuFeatures {
  subgroups: boolean;
  /** Smallest and largest subgroup size the adapter reports (0 when unknown). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  timestampQuery: boolean;
  shaderF16: boolean;
}

export interface Gpu {
  device: GPUDevice;
  adapter: AdapterSummary;
  features: GpuFeatures;
  limits: GPUSupportedLimits;
  /** true when running under Node through Dawn. */
  node: boolean;
  /** The buffer pool's default budget in bytes (0 = none); see the header. */
  memoryBudget: number;
}

export interface InitOptions {
  /** Do not request optional features even if the adapter has them (to test fallback kernels). */
  disableFeatures?: Array<'subgroups' | 'timestamp-query' | 'shader-f16'>;
  /** Extra Dawn toggles for Node, as `create()` strings, e.g. 'disable-dawn-features=timestamp_quantization'. */
  dawnFlags?: string[];
  /** The buffer pool's budget in bytes (0 = none), instead of the default derived from the adapter. */
  memoryBudget?: number;
}

// The browser bundle (scripts/build-browser.mjs) defines __DENSENET_BROWSER__ as true, which removes the
// Node-only Dawn loader below from it; elsewhere the identifier is undeclared and the check is false.
declare const __DENSENET_BROWSER__: boolean | undefined;
const BROWSER_BUILD = typeof __DENSENET_BROWSER__ !== 'undefined' && __DENSENET_BROWSER__ === true;

/** What a browser without WebGPU should do (the demo page shows it too). */
export const NO_WEBGPU_HINT =
  'This browser has no WebGPU (navigator.gpu is missing). Use a browser with WebGPU: Chrome or Edge 113+, ' +
  'Safari 26+, or Firefox 141+ on Windows; on Linux start Chrome/Chromium with --enable-unsafe-webgpu ' +
  '(and --enable-features=Vulkan where a GPU driver is present). WebGPU needs a secure context: open the ' +
  'page from http://127.0.0.1 or https, not from a file: URL or another host over plain http.';

let current: Gpu | null = null;
// dawn.node tears its instance down when the GPU object is garbage-collected, even while a device
// made from it is in use (the process then dies in a futex error): hold it for the process's life.
let navigatorGpu: GPU | null = null;
let heldAdapter: GPUAdapter | null = null;
let pending: Promise<Gpu> | null = null;
let lostMessage: string | null = null;
const asyncErrors: string[] = [];

const SETUP_HINT =
  'No WebGPU adapter was found. On Debian 12 without a GPU run `bash node_modules/densenet-webgpu/scripts/setup-webgpu.sh` ' +
  '(in this repository: `npm run setup`) as root ' +
  '(it installs libvulkan1 and mesa-vulkan-drivers from bookworm-backports); elsewhere install a Vulkan, ' +
  'Metal or D3D12 driver for your GPU, or in a browser enable WebGPU.';

/** The initialised device. Throws if `init()` has not completed or the device was lost. */
export function gpu(): Gpu {
  if (lostMessage) throw new Error(lostMessage);
  if (!current) throw new Error('densenet-webgpu: the engine is not initialised; call `await init()` first');
  return current;
}

export function isInitialised(): boolean {
  return current !== null;
}

/** Initialise the engine once per process; later calls return the same device. */
export function init(options: InitOptions = {}): Promise<Gpu> {
  if (current) return Promise.resolve(current);
  pending ??= createGpu(options).then(
    (g) => (current = g),
    (e) => {
      pending = null;
      throw e;
    },
  );
  return pending;
}

async function getNavigatorGpu(options: InitOptions): Promise<{ gpu: GPU; node: boolean }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, node: false };
  if (BROWSER_BUILD) throw new Error(`densenet-webgpu: ${NO_WEBGPU_HINT}`);
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) throw new Error(`densenet-webgpu: ${NO_WEBGPU_HINT}`);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: { create: (flags: string[]) => GPU };
  try {
    // A variable specifier keeps bundlers from pulling Node-only code into browser builds.
    const name = 'webgpu';
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (e) {
    // `webgpu` is an optional peer dependency: browser-only users do not download Dawn.
    throw new Error(
      `densenet-webgpu: under Node, WebGPU comes from the npm package 'webgpu' (Dawn), which cannot be loaded ` +
      `(${(e as Error).message}). Install it next to densenet-webgpu: npm install webgpu@0.6.2`,
    );
  }
  return { gpu: mod.create(options.dawnFlags ?? []), node: true };
}

async function createGpu(options: InitOptions): Promise<Gpu> {
  const { gpu: navGpu, node } = await getNavigatorGpu(options);
  navigatorGpu = navGpu;
  void navigatorGpu;
  const adapter = await navGpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(`densenet-webgpu: ${SETUP_HINT}`);
  heldAdapter = adapter;
  void heldAdapter;

  const disabled = new Set(options.disableFeatures ?? []);
  const wanted = (['subgroups', 'timestamp-query', 'shader-f16'] as const).filter(
    (f) => adapter.features.has(f) && !disabled.has(f),
  );
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: a.maxBufferSize,
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
  };
  const device = await adapter.requestDevice({ requiredFeatures: wanted as GPUFeatureName[], requiredLimits });

  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    const kind = err.constructor?.name ?? 'GPUError';
    if (asyncErrors.length < 20) asyncErrors.push(`${kind}: ${err.message}`);
  });
  void device.lost.then((info) => {
    if (info.reason === 'destroyed' && current === null) return;
    lostMessage =
      `densenet-webgpu: the WebGPU device was lost (${info.reason}): ${info.message}. ` +
      'Every tensor on it is gone; restart the process (or reload the page) to get a new device.';
  });

  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const infoAny = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; isFallbackAdapter?: boolean };
  const subgroups = device.features.has('subgroups');
  const isFallbackAdapter = !!(infoAny.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  if (options.memoryBudget !== undefined && !(Number.isFinite(options.memoryBudget) && options.memoryBudget >= 0)) {
    throw new Error(`init: memoryBudget must be a number of bytes >= 0, got ${options.memoryBudget}`);
  }
  return {
    device,
    node,
    limits: device.limits,
    memoryBudget: options.memoryBudget ?? (node && isFallbackAdapter ? await hostMemoryBudget() : 0),
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description: info.description || info.device || '',
      isFallbackAdapter,
    },
    features: {
      subgroups,
      subgroupMinSize: subgroups ? infoAny.subgroupMinSize ?? 0 : 0,
      subgroupMaxSize: subgroups ? infoAny.subgroupMaxSize ?? 0 : 0,
      timestampQuery: device.features.has('timestamp-query'),
      shaderF16: device.features.has('shader-f16'),
    },
  };
}

/**
 * For a CPU adapter under Node, whose buffers live in host memory: 3/4 of the RAM, and at most 3/5 of
 * the address space this process has left under a `ulimit -v` (Linux; read from /proc/self).
 */
async function hostMemoryBudget(): Promise<number> {
  if (BROWSER_BUILD) return 0;
  const os = (await import(/* @vite-ignore */ 'node:' + 'os')) as typeof import('node:os');
  let budget = 0.75 * os.totalmem();
  try {
    const fs = (await import(/* @vite-ignore */ 'node:' + 'fs')) as typeof import('node:fs');
    const limit = /Max address space\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    const used = /VmSize:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (limit && used) budget = Math.min(budget, 0.6 * Math.max(0, Number(limit[1]) - Number(used[1]) * 1024));
  } catch {
    // Not Linux: the RAM alone.
  }
  return Math.floor(budget / 4096) * 4096;
}

/** Records an error noticed asynchronously (first in line), to be thrown at the next sync point. */
export function reportDeviceError(message: string): void {
  asyncErrors.unshift(message);
}

/** Throws the first asynchronous WebGPU error reported since the last check, or the lost-device message. */
export function checkDeviceErrors(context: string): void {
  if (lostMessage) throw new Error(lostMessage);
  if (asyncErrors.length) {
    const errs = asyncErrors.splice(0);
    throw new Error(`densenet-webgpu: WebGPU reported an error (noticed at ${context}): ${errs.join(' | ')}`);
  }
}
