// Kernels, pipelines and the command stream.
//
// A kernel is a WGSL file from shaders/ (with shaders/common.wgsl in front of it), or a body composed
// with snippets by `compose()` (how a shared operand reaches the lanes, its `enable` directives), an
// entry point and a set of `override` constants. Its bind group layout is read from the source: binding
// 0 is the uniform parameter block (a dynamic offset into one shared uniform buffer), bindings 1.. are
// storage buffers, read-only or read-write as declared. Modules are cached by their full source text and
// pipelines by (module, entry, constants), so two compositions never share a pipeline by name.
//
// `dispatch()` only encodes: every dispatch goes into one open compute pass of one command encoder, and
// the parameter blocks go into a CPU arena. `flush()` writes the arena to the uniform buffer and submits
// everything at once. Reading a tensor back (`readBuffer`) is the only place the CPU waits for the GPU.
// Uploads flush first (queue.writeBuffer runs before commands still waiting in the encoder).
// The profiler (engine/profiler.ts) times dispatches through the timestamp log below.

import { checkDeviceErrors, gpu } from './gpu.js';
import { BufferUsage, pool, type PooledBuffer } from './pool.js';
import commonSource from '../shaders/common.wgsl';

export interface KernelSource {
  /** File name shown in compile errors, e.g. 'unary.wgsl'. */
  file: string;
  source: string;
  /** Set by compose(): the `enable` directives (else `subgroups` whenever the device has it), */
  enables?: string[];
  /** the snippets appended after the body (for error positions), */
  snippets?: KernelSource[];
  /** and the variant's name, shown in profiles as file[variant]:entry. */
  variant?: string;
}

/** Describes one pipeline: a shader file, an entry point and its override constants. */
export interface Kernel {
  shader: KernelSource;
  entry: string;
  constants?: Record<string, number>;
}

/**
 * A module made of a body and snippets (WGSL declarations may come in any order, so the snippets go
 * after the body and the body's line numbers stay those of its file).
 */
export function compose(body: KernelSource, snippets: KernelSource[], o: { enables?: string[]; variant?: string }): KernelSource {
  return {
    file: body.file,
    source: [body.source, ...snippets.map((s) => s.source)].join('\n'),
    enables: o.enables ?? [],
    snippets,
    variant: o.variant,
  };
}

/** The name of a kernel in profiles and error messages: file[variant]:entry without '.wgsl'. */
export function kernelName(k: Kernel): string {
  return `${k.shader.file.replace(/\.wgsl$/, '')}${k.shader.variant ? `[${k.shader.variant}]` : ''}:${k.entry}`;
}

/** Words (u32) in one parameter block; the uniform slot is 256 bytes. */
export const PARAM_WORDS = 64;

const bitsF32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bitsF32.buffer);
/** The bit pattern of `v` as a float32, for a parameter word that a kernel reads with pf(). */
export function f32bits(v: number): number {
  bitsF32[0] = v;
  return bitsU32[0];
}
const SLOT_BYTES = 256;
const ARENA_SLOTS = 2048;

interface BindingInfo {
  binding: number;
  kind: 'uniform' | 'read' | 'write';
  /** The array's elements are float16 (directly or through an `alias`, see engine/storage.ts). */
  half: boolean;
}

interface BuiltPipeline {
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindings: BindingInfo[];
}

interface BuiltModule {
  id: number;
  code: string;
  module: GPUShaderModule;
  bindings: BindingInfo[];
}
const modules = new Map<string, BuiltModule>();
const pipelines = new Map<string, BuiltPipeline>();
let pipelineIds = 1;

const commonLines = commonSource.split('\n').length;

function parseBindings(src: string): BindingInfo[] {
  const out: BindingInfo[] = [];
  const halfAliases = new Set([...src.matchAll(/\balias\s+(\w+)\s*=\s*f16\s*;/g)].map((m) => m[1]));
  const re = /@group\(0\)\s*@binding\((\d+)\)\s*var<\s*(uniform|storage)\s*(?:,\s*(read_write|read))?\s*>\s*\w+\s*:([^;]*);/g;
  for (const m of src.matchAll(re)) {
    const kind = m[2] === 'uniform' ? 'uniform' : m[3] === 'read_write' ? 'write' : 'read';
    const half = (m[4].match(/\w+/g) ?? []).some((w) => w === 'f16' || halfAliases.has(w));
    out.push({ binding: Number(m[1]), kind, half });
  }
  return out.sort((a, b) => a.binding - b.binding);
}

/** The file and line of a line of the module: common.wgsl, then the body, then each snippet. */
function locate(shader: KernelSource, line: number): string {
  if (line <= commonLines) return `common.wgsl:${line}`;
  let at = line - commonLines;
  for (const part of [{ file: shader.file, source: shader.source.split('\n').slice(0, bodyLines(shader)).join('\n') }, ...(shader.snippets ?? [])]) {
    const n = part.source.split('\n').length;
    if (at <= n) return `${part.file}:${at}`;
    at -= n;
  }
  return `${shader.file}:${line - commonLines}`;
}

function bodyLines(shader: KernelSource): number {
  const all = shader.source.split('\n').length;
  return all - (shader.snippets ?? []).reduce((s, p) => s + p.source.split('\n').length, 0);
}

/** Formats WGSL compilation messages with the right file, line and column. */
function formatCompileMessages(shader: KernelSource, messages: readonly GPUCompilationMessage[]): string {
  return messages.map((m) => `${locate(shader, m.lineNum)}:${m.linePos}: ${m.type}: ${m.message}`).join('\n');
}

const moduleOf = new WeakMap<KernelSource, BuiltModule>();

function getModule(shader: KernelSource): BuiltModule {
  const known = moduleOf.get(shader);
  if (known && modules.get(known.code) === known) return known;
  const { device, features } = gpu();
  const enables = shader.enables ?? (features.subgroups ? ['subgroups'] : []);
  // `enable` must come first; it sits on the same line as the common header so line numbers stay put.
  const code = `${enables.map((e) => `enable ${e};`).join(' ')}${enables.length ? ' ' : ''}${commonSource}\n${shader.source}`;
  let entry = modules.get(code);
  if (!entry) {
    const module = device.createShaderModule({ code, label: shader.variant ? `${shader.file}[${shader.variant}]` : shader.file });
    entry = { id: modules.size + 1, code, module, bindings: parseBindings(shader.source) };
    modules.set(code, entry);
  }
  moduleOf.set(shader, entry);
  return entry;
}

/** Compiles a shader file and throws its WGSL errors as `file:line:col` (tests call this on every file). */
export async function checkShader(shader: KernelSource): Promise<void> {
  const entry = getModule(shader);
  const info = await entry.module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) throw new Error(`WGSL compile error in ${shader.file}:\n${formatCompileMessages(shader, errors)}`);
}

function getPipeline(k: Kernel): BuiltPipeline {
  const mod = getModule(k.shader);
  let key = `${mod.id}|${k.entry}|`;
  for (const n in k.constants) key += `${n}=${k.constants[n]},`;
  let p = pipelines.get(key);
  if (p) return p;
  const { device, limits } = gpu();
  // Every kernel sizes its workgroup with the override WG: a size the adapter cannot run is a clear error
  // here instead of a failed pipeline later (256 is WebGPU's guaranteed minimum; ops pick at most that).
  const wg = k.constants?.WG;
  if (wg !== undefined && (wg > limits.maxComputeInvocationsPerWorkgroup || wg > limits.maxComputeWorkgroupSizeX)) {
    throw new Error(`${kernelName(k)}: workgroup size ${wg} exceeds this adapter's limit of ${Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX)} invocations`);
  }
  const entries: GPUBindGroupLayoutEntry[] = [
    { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform', hasDynamicOffset: true } },
  ];
  for (const b of mod.bindings) {
    entries.push({ binding: b.binding, visibility: 4, buffer: { type: b.kind === 'read' ? 'read-only-storage' : 'storage' } });
  }
  const layout = device.createBindGroupLayout({ entries, label: kernelName(k) });
  device.pushErrorScope('validation');
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module: mod.module, entryPoint: k.entry, constants: k.constants },
    label: kernelName(k),
  });
  const scope = device.popErrorScope();
  // A failed pipeline makes the next submit fail too; report the WGSL messages with it.
  void scope.then(async (err) => {
    if (!err) return;
    const info = await mod.module.getCompilationInfo();
    compileFailures.push(`${kernelName(k)}: ${err.message}\n${formatCompileMessages(k.shader, info.messages)}`);
  });
  p = { id: pipelineIds++, pipeline, layout, bindings: mod.bindings };
  pipelines.set(key, p);
  return p;
}
const compileFailures: string[] = [];

// ---- the command stream --------------------------------------------------------------------------

let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
const arena = new ArrayBuffer(ARENA_SLOTS * SLOT_BYTES);
const arenaU32 = new Uint32Array(arena);
let arenaSlots = 0;
let uniformBuffer: PooledBuffer | null = null;
let bindGroups = new Map<string, GPUBindGroup>();
let dispatchCount = 0;
let readbackCount = 0;
let bindGroupCount = 0;

function getUniformBuffer(): PooledBuffer {
  if (!uniformBuffer) uniformBuffer = pool.acquire(ARENA_SLOTS * SLOT_BYTES, 'uniforms', BufferUsage.UNIFORM | BufferUsage.COPY_DST);
  return uniformBuffer;
}

function getEncoder(): GPUCommandEncoder {
  encoder ??= gpu().device.createCommandEncoder();
  return encoder;
}

function getPass(): GPUComputePassEncoder {
  pass ??= getEncoder().beginComputePass();
  return pass;
}

/** A buffer region given to a kernel: the whole pooled buffer is bound. */
export type Binding = PooledBuffer;

export interface DispatchArgs {
  /** Parameter words (u32 bit patterns), at most PARAM_WORDS. */
  params: Uint32Array | number[];
  /** Storage buffers for bindings 1, 2, ... in order. */
  buffers: Binding[];
  /** Workgroup counts; x beyond the device limit must be split by the caller (see grid1d()). */
  workgroups: [number, number?, number?];
}

/** Encodes one dispatch into the pending command stream. */
export function dispatch(k: Kernel, args: DispatchArgs): void {
  const [x, y = 1, z = 1] = args.workgroups;
  if (x === 0 || y === 0 || z === 0) return;
  const max = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max || z > max) {
    throw new Error(`dispatch ${k.shader.file}:${k.entry}: workgroup grid ${x}x${y}x${z} exceeds the device limit ${max} per dimension`);
  }
  const p = getPipeline(k);
  if (p.bindings.length !== args.buffers.length) {
    throw new Error(`dispatch ${k.shader.file}:${k.entry}: the kernel has ${p.bindings.length} storage bindings, got ${args.buffers.length} buffers`);
  }
  // Tensors are checked alive where ops take their buffers; this catches a released buffer that reached
  // a dispatch some other way (before a kernel could read or write memory another tensor now owns).
  // A buffer's element type must be the one the kernel reads: float16 bits read as float32 (or the other
  // way) would be silent garbage. Ops with float16 variants compose the right one (engine/storage.ts).
  args.buffers.forEach((b, i) => {
    if (!b.live) throw new Error(`dispatch ${k.shader.file}:${k.entry}: storage binding ${i + 1} is a released pool buffer (${b.tag}, id ${b.id})`);
    if (b.half !== p.bindings[i].half) {
      const [has, wants] = b.half ? ['float16', 'float32'] : ['float32', 'float16'];
      throw new Error(
        `${kernelName(k)}: storage binding ${i + 1} holds ${has} data where the kernel reads ${wants}` +
          (b.half ? ' (this op has no float16 variant: cast the tensor with .float() first)' : ''),
      );
    }
  });
  if (args.params.length > PARAM_WORDS) throw new Error(`dispatch ${k.entry}: ${args.params.length} parameter words, at most ${PARAM_WORDS}`);
  if (arenaSlots === ARENA_SLOTS) flush();
  const slot = arenaSlots++;
  arenaU32.set(args.params, slot * (SLOT_BYTES / 4));

  const ub = getUniformBuffer();
  let key = `${p.id}`;
  for (const b of args.buffers) key += `,${b.id}`;
  let bg = bindGroups.get(key);
  if (!bg) {
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: ub.buffer, offset: 0, size: SLOT_BYTES } }];
    p.bindings.forEach((b, i) => entries.push({ binding: b.binding, resource: { buffer: args.buffers[i].buffer } }));
    bg = gpu().device.createBindGroup({ layout: p.layout, entries });
    bindGroupCount++;
    if (bindGroups.size > 8192) bindGroups.clear();
    bindGroups.set(key, bg);
  }
  const ps = timestamps ? timedPass(timestamps, kernelName(k)) : getPass();
  ps.setPipeline(p.pipeline);
  ps.setBindGroup(0, bg, [slot * SLOT_BYTES]);
  ps.dispatchWorkgroups(x, y, z);
  if (timestamps && !timestamps.merge) {
    ps.end();
    pass = null;
  }
  dispatchCount++;
}

// ---- timestamps ----------------------------------------------------------------------------------
// While a timestamp log is set (engine/profiler.ts does it), every dispatch gets its own compute pass
// with timestamp writes at its start and end, and each flush resolves the log's queries into a buffer
// that the log keeps for reading back. With `merge`, back-to-back dispatches of one kernel share one
// timed pass (a kernel timed by repetition): a pass's timestamp writes cost more than a small dispatch
// on some adapters (lavapipe: an empty dispatch measured 65 us alone in its pass, 16 us each in a pass
// of 8), which would be charged to every repetition.

/** A query set and what the command stream has written into it. */
export interface TimestampLog {
  querySet: GPUQuerySet;
  /** Queries in the set (two per dispatch). */
  capacity: number;
  /** Names (file:entry) of the passes timed since the last flush, in query order, */
  names: string[];
  /** and the dispatches in each (1 unless `merge`). */
  counts: number[];
  /** Back-to-back dispatches of one kernel share a timed pass. */
  merge: boolean;
  /** One batch per flush: the names, counts and a mappable buffer of their resolved begin/end timestamps. */
  done: Array<{ names: string[]; counts: number[]; resolve: PooledBuffer; readback: PooledBuffer }>;
}

/** The timed pass still open for more dispatches of the same kernel (merge), and its kernel's name. */
let mergeable: { pass: GPUComputePassEncoder; name: string } | null = null;

let timestamps: TimestampLog | null = null;

/** Starts (a log) or stops (null) timing every dispatch; flushes what was encoded before. */
export function setTimestampLog(log: TimestampLog | null): void {
  flush();
  timestamps = log;
}

function timedPass(log: TimestampLog, name: string): GPUComputePassEncoder {
  if (pass && mergeable?.pass === pass && mergeable.name === name) {
    log.counts[log.counts.length - 1]++;
    return pass;
  }
  if (log.names.length * 2 >= log.capacity) flush();
  if (pass) {
    pass.end();
    pass = null;
  }
  const i = log.names.length;
  log.names.push(name);
  log.counts.push(1);
  pass = getEncoder().beginComputePass({ timestampWrites: { querySet: log.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
  mergeable = log.merge ? { pass, name } : null;
  return pass;
}

function resolveTimestamps(enc: GPUCommandEncoder): void {
  const log = timestamps;
  if (!log || !log.names.length) return;
  const bytes = log.names.length * 16;
  const resolve = pool.acquire(bytes, 'profile', 0x200 /* QUERY_RESOLVE */ | BufferUsage.COPY_SRC);
  const readback = pool.acquire(bytes, 'profile', BufferUsage.MAP_READ | BufferUsage.COPY_DST);
  enc.resolveQuerySet(log.querySet, 0, log.names.length * 2, resolve.buffer, 0);
  enc.copyBufferToBuffer(resolve.buffer, 0, readback.buffer, 0, bytes);
  log.done.push({ names: log.names, counts: log.counts, resolve, readback });
  log.names = [];
  log.counts = [];
}

/** Encodes a buffer-to-buffer copy (ends the open compute pass). */
export function copyBuffer(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number): void {
  if (bytes === 0) return;
  if (!src.live || !dst.live) throw new Error(`copyBuffer: the ${src.live ? 'destination' : 'source'} is a released pool buffer (${(src.live ? dst : src).tag})`);
  if (pass) {
    pass.end();
    pass = null;
  }
  getEncoder().copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
}

/** Submits everything encoded so far. */
export function flush(): void {
  if (!encoder) return;
  if (pass) {
    pass.end();
    pass = null;
  }
  const { device } = gpu();
  resolveTimestamps(encoder);
  if (arenaSlots) device.queue.writeBuffer(getUniformBuffer().buffer, 0, arena, 0, arenaSlots * SLOT_BYTES);
  device.queue.submit([encoder.finish()]);
  encoder = null;
  arenaSlots = 0;
  if (compileFailures.length) throw new Error(`WGSL pipeline creation failed:\n${compileFailures.splice(0).join('\n')}`);
}

let spareBuffers: { device: GPUDevice; byName: Map<string, PooledBuffer> } | null = null;

/**
 * A small float32 buffer of its own per name (and device), bound where a kernel declares a binding that
 * a dispatch does not use: distinct names never alias, as WebGPU requires of a writable binding.
 */
export function spareBuffer(name: string): PooledBuffer {
  const { device } = gpu();
  if (!spareBuffers || spareBuffers.device !== device) spareBuffers = { device, byName: new Map() };
  let b = spareBuffers.byName.get(name);
  if (!b) spareBuffers.byName.set(name, (b = pool.acquire(16, 'spare')));
  return b;
}

/** Number of dispatches encoded since the process started (the benchmark reads it). */
export function dispatches(): number {
  return dispatchCount;
}

/**
 * Number of bind groups created since the process started: a dispatch whose pipeline and buffers an
 * earlier one had reuses its bind group, so a loop that repeats the same work creates none once warm.
 */
export function bindGroupsCreated(): number {
  return bindGroupCount;
}

/** Number of reads from the GPU to the host (readBuffer calls) since the process started. */
export function readbacks(): number {
  return readbackCount;
}

/** Writes host data into a buffer, after flushing what is pending (see the header). */
export function writeBuffer(dst: PooledBuffer, byteOffset: number, data: Float32Array | Uint32Array | Int32Array | Uint16Array): void {
  flush();
  gpu().device.queue.writeBuffer(dst.buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
}

pool.onDestroy = () => {
  flush();
  bindGroups = new Map();
};

/**
 * Waits for a Dawn promise without letting dawn.node spin the CPU that a software adapter needs:
 * yield once per turn (so Dawn can poll), then sleep briefly with Atomics.wait.
 */
export async function waitFor<T>(promise: Promise<T>): Promise<T> {
  const g = gpu();
  if (!g.node || typeof SharedArrayBuffer === 'undefined') return promise;
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const t0 = performance.now();
  for (;;) {
    await new Promise<void>((r) => setImmediate(r));
    if (done) break;
    const elapsed = performance.now() - t0;
    Atomics.wait(cell, 0, 0, Math.min(2, Math.max(0.05, elapsed * 0.03)));
  }
  return promise;
}

/** Waits until the GPU has finished all submitted work. */
export async function sync(): Promise<void> {
  flush();
  await waitFor(gpu().device.queue.onSubmittedWorkDone());
  checkDeviceErrors('sync');
}

/** Copies `bytes` bytes from a buffer to the host. This is the engine's only sync point with the GPU. */
export async function readBuffer(src: PooledBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
  checkDeviceErrors('readback');
  readbackCount++;
  const aligned = Math.floor(byteOffset / 4) * 4;
  const len = Math.ceil((byteOffset + bytes - aligned) / 4) * 4;
  const staging = pool.acquire(len, 'readback', BufferUsage.MAP_READ | BufferUsage.COPY_DST);
  try {
    copyBuffer(src, aligned, staging, 0, len);
    flush();
    await waitFor(staging.buffer.mapAsync(1 /* GPUMapMode.READ */, 0, len));
    const out = staging.buffer.getMappedRange(0, len).slice(byteOffset - aligned, byteOffset - aligned + bytes);
    staging.buffer.unmap();
    return out;
  } catch (e) {
    checkDeviceErrors('readback');
    throw e;
  } finally {
    pool.release(staging);
    checkDeviceErrors('readback');
  }
}

/**
 * Splits a 1-D count of workgroups over x and y when it exceeds the per-dimension limit.
 * Kernels recover the flat index with `flat_wg()` from common.wgsl.
 */
export function grid1d(workgroups: number): [number, number] {
  const max = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= max) return [workgroups, 1];
  const y = Math.ceil(workgroups / max);
  return [Math.ceil(workgroups / y), y];
}
