// The training checkpoint of `densenet-bench train`: one safetensors file holding the model's state
// dict and the optimiser's state in the library's layout (nn/optim_state.ts: tensors
// `optimizer.state.<index>.<name>`, metadata `optimizer.param_groups` and `optimizer.steps`), the
// learning-rate scheduler's stateDict() as JSON in the metadata key `scheduler`, and in the metadata
// what is needed to rebuild the model and continue (growth, arch, input size, batch, seed, epoch, step,
// the recipe, optimiser, schedule, augmentation and precision; under mixed precision the GradScaler's
// stateDict() as JSON in the metadata key `scaler`), plus the CRC32 of the data that nn/safetensors.ts
// writes and checks. Checkpoints of the first format (`densenet-webgpu-train-1`: SGD momentum buffers
// as `optimizer.momentum_buffer.<i>`, no recipe) are still read: they are d2l-recipe SGD runs.
// Reading is host-only (no GPU), so a bad checkpoint is refused before any GPU work: an unknown format,
// a missing or malformed key (named), a corrupt data section (the file named), or non-finite values
// (the tensors named).

import { readFileSync, readdirSync, rmSync, existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  GradScaler, decodeSafetensors, encodeSafetensors, optimizerStateToTensors, toHostTensors, writeFileAtomic,
  type GradScalerState, type HostTensor, type LRScheduler, type Optimizer, type SchedulerState,
} from '../nn/index.js';
import type { DenseNet } from '../models/index.js';
import { InputError } from './args.js';

export const CHECKPOINT_FORMAT = 'densenet-webgpu-train-2';
/** The first format: SGD momentum buffers under MOMENTUM_PREFIX, no optimiser or schedule settings. */
export const CHECKPOINT_FORMAT_1 = 'densenet-webgpu-train-1';
const MOMENTUM_PREFIX = 'optimizer.momentum_buffer.';

export const RECIPES = ['d2l', 'densenet'] as const;
export const OPTIMIZERS = ['sgd', 'adam', 'adamw'] as const;
export const SCHEDULES = ['none', 'step', 'multistep', 'cosine'] as const;
export const PRECISIONS = ['fp32', 'mixed'] as const;
export type Recipe = (typeof RECIPES)[number];
export type OptimizerName = (typeof OPTIMIZERS)[number];
export type Schedule = (typeof SCHEDULES)[number];
export type PrecisionName = (typeof PRECISIONS)[number];

/** How a run trains: everything a resumed run must keep. */
export interface TrainingSettings {
  recipe: Recipe;
  optimizer: OptimizerName;
  /** The base learning rate (a schedule changes the current one). */
  lr: number;
  /** SGD only (0 for Adam and AdamW). */
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Whether weight decay also applies to parameters of ndim <= 1 (biases, batch-norm weights). */
  decayAll: boolean;
  schedule: Schedule;
  warmupEpochs: number;
  /** The epochs the schedule spans. */
  scheduleEpochs: number;
  augment: boolean;
  /** 'mixed': float16 activations and a GradScaler. */
  precision: PrecisionName;
}

/** What a checkpoint records about the run besides the tensors. */
export interface CheckpointMeta extends TrainingSettings {
  growth: number;
  arch: number[];
  size: number;
  batch: number;
  seed: number;
  /** Epochs completed. */
  epoch: number;
  /** Steps completed within the next epoch (0 at an epoch boundary). */
  step: number;
}

export interface HostCheckpoint {
  path: string;
  meta: CheckpointMeta;
  /** The format-1 file's settings that it did not record (momentum, weight decay): taken from the flags. */
  legacy: boolean;
  model: Map<string, HostTensor>;
  /** The optimiser's state tensors (`optimizer.state.*`) and its metadata, for optimizerStateFromTensors(). */
  optimizer: { tensors: Map<string, HostTensor>; metadata: Record<string, string> };
  scheduler: SchedulerState | null;
  /** The GradScaler's state (mixed precision only). */
  scaler: GradScalerState | null;
  /** Format 1 only: SGD momentum buffers by parameter index. */
  momentum: Map<number, HostTensor>;
}

export function encodeMeta(m: CheckpointMeta): Record<string, string> {
  return {
    format: CHECKPOINT_FORMAT, model: 'd2l', growth: String(m.growth), arch: m.arch.join(','), size: String(m.size),
    epoch: String(m.epoch), step: String(m.step), seed: String(m.seed), batch: String(m.batch),
    recipe: m.recipe, optimizer: m.optimizer, lr: String(m.lr), momentum: String(m.momentum), nesterov: String(m.nesterov),
    'weight-decay': String(m.weightDecay), 'decay-all': String(m.decayAll), schedule: m.schedule,
    'warmup-epochs': String(m.warmupEpochs), 'schedule-epochs': String(m.scheduleEpochs), augment: String(m.augment),
    precision: m.precision,
  };
}

function parseMeta(raw: Record<string, string>, path: string, legacy: boolean): CheckpointMeta {
  const bad = (key: string, want: string): never => {
    const v = raw[key];
    throw new InputError(`checkpoint ${path}: ${v === undefined ? `the metadata key '${key}' is missing` : `the metadata key '${key}' is ${JSON.stringify(v)}`}; expected ${want}`);
  };
  const int = (key: string, min: number): number => {
    const v = raw[key];
    const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
    return Number.isSafeInteger(n) && n >= min ? n : bad(key, `an integer >= ${min}`);
  };
  const num = (key: string, positive: boolean): number => {
    const n = typeof raw[key] === 'string' && raw[key].trim() !== '' ? Number(raw[key]) : NaN;
    return Number.isFinite(n) && (positive ? n > 0 : n >= 0) ? n : bad(key, positive ? 'a positive number' : 'a number >= 0');
  };
  const bool = (key: string): boolean => (raw[key] === 'true' ? true : raw[key] === 'false' ? false : bad(key, 'true or false'));
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T => ((allowed as readonly string[]).includes(raw[key]) ? (raw[key] as T) : bad(key, `one of ${allowed.join(', ')}`));
  const arch = typeof raw.arch === 'string' && /^\d+(,\d+)*$/.test(raw.arch) ? raw.arch.split(',').map(Number) : [];
  if (!arch.length || arch.some((n) => n < 1)) bad('arch', 'comma-separated positive integers such as 4,4,4,4');
  const run = {
    growth: int('growth', 1), arch, size: int('size', 1), batch: int('batch', 1), seed: int('seed', 0), epoch: int('epoch', 0), step: int('step', 0),
  };
  if (legacy) {
    // Format 1 was always plain SGD without a schedule; its momentum and weight decay were not recorded.
    return { ...run, recipe: 'd2l', optimizer: 'sgd', lr: num('lr', true), momentum: NaN, nesterov: false, weightDecay: NaN, decayAll: true, schedule: 'none', warmupEpochs: 0, scheduleEpochs: 0, augment: false, precision: 'fp32' };
  }
  return {
    ...run, recipe: oneOf('recipe', RECIPES), optimizer: oneOf('optimizer', OPTIMIZERS), lr: num('lr', true), momentum: num('momentum', false),
    nesterov: bool('nesterov'), weightDecay: num('weight-decay', false), decayAll: bool('decay-all'), schedule: oneOf('schedule', SCHEDULES),
    warmupEpochs: int('warmup-epochs', 0), scheduleEpochs: int('schedule-epochs', 1), augment: bool('augment'),
    // Checkpoints written before mixed precision existed were float32 runs.
    precision: raw.precision === undefined ? 'fp32' : oneOf('precision', PRECISIONS),
  };
}

/** Names the tensors that hold NaN or infinite values (empty when all are finite). */
export function nonFinite(tensors: Iterable<[string, HostTensor]>): string[] {
  const out: string[] = [];
  for (const [k, t] of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        out.push(`${k} (${d[i]} at index ${i})`);
        break;
      }
    }
  }
  return out;
}

const listTensors = (names: string[]) => `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;

/** Reads and checks a checkpoint written by `densenet-bench train` (host only). */
export function readCheckpoint(path: string): HostCheckpoint {
  if (!existsSync(path)) throw new InputError(`checkpoint ${path} does not exist`);
  if (statSync(path).isDirectory()) throw new InputError(`checkpoint ${path} is a directory, expected a .safetensors file`);
  let decoded;
  try {
    decoded = decodeSafetensors(new Uint8Array(readFileSync(path)), path);
  } catch (e) {
    throw new InputError((e as Error).message);
  }
  const { tensors, metadata } = decoded;
  const legacy = metadata.format === CHECKPOINT_FORMAT_1;
  if (metadata.format !== CHECKPOINT_FORMAT && !legacy) {
    throw new InputError(`${path} is not a checkpoint written by densenet-bench train (metadata format ${JSON.stringify(metadata.format)}, expected "${CHECKPOINT_FORMAT}" or "${CHECKPOINT_FORMAT_1}")`);
  }
  const meta = parseMeta(metadata, path, legacy);
  const bad = nonFinite(tensors);
  if (bad.length) throw new InputError(`checkpoint ${path} holds non-finite values in ${bad.length} tensor(s): ${listTensors(bad)}; refusing to start from it`);
  const model = new Map<string, HostTensor>();
  const optTensors = new Map<string, HostTensor>();
  const momentum = new Map<number, HostTensor>();
  for (const [k, t] of tensors) {
    if (legacy && k.startsWith(MOMENTUM_PREFIX)) {
      const i = Number(k.slice(MOMENTUM_PREFIX.length));
      if (!Number.isInteger(i) || i < 0) throw new InputError(`checkpoint ${path}: '${k}' is not a momentum buffer index`);
      momentum.set(i, t);
    } else if (!legacy && k.startsWith('optimizer.')) optTensors.set(k, t);
    else model.set(k, t);
  }
  const optMeta = Object.fromEntries(Object.entries(metadata).filter(([k]) => k.startsWith('optimizer.')));
  if (!legacy) for (const key of ['optimizer.param_groups', 'optimizer.steps']) if (optMeta[key] === undefined) throw new InputError(`checkpoint ${path}: the metadata key '${key}' is missing`);
  let scheduler: SchedulerState | null = null;
  if (!legacy && (meta.schedule !== 'none' || meta.warmupEpochs > 0)) {
    try {
      scheduler = JSON.parse(metadata.scheduler ?? '') as SchedulerState;
    } catch {
      throw new InputError(`checkpoint ${path}: the metadata key 'scheduler' is ${metadata.scheduler === undefined ? 'missing' : 'not valid JSON'}; expected the scheduler's state`);
    }
  }
  let scaler: GradScalerState | null = null;
  if (meta.precision === 'mixed') {
    try {
      scaler = JSON.parse(metadata.scaler ?? '') as GradScalerState;
    } catch {
      throw new InputError(`checkpoint ${path}: the metadata key 'scaler' is ${metadata.scaler === undefined ? 'missing' : 'not valid JSON'}; expected the GradScaler's state of this mixed-precision run`);
    }
    try {
      new GradScaler().loadStateDict(scaler); // checks every field on the host (a scaler not yet used holds no GPU state)
    } catch (e) {
      throw new InputError(
        `checkpoint ${path}: the metadata key 'scaler' holds ${metadata.scaler}; expected a positive finite scale, a growth tracker >= 0 and the rest of the GradScaler's state (${(e as Error).message})`,
      );
    }
  }
  return { path, meta, legacy, model, optimizer: { tensors: optTensors, metadata: optMeta }, scheduler, scaler, momentum };
}

/**
 * Writes the model, the optimiser's state, the scheduler's and the scaler's state and the metadata atomically. Refuses
 * (and writes nothing) when a tensor holds NaN or infinity, naming the tensors, so a good checkpoint is
 * never replaced by a poisoned one.
 */
export async function saveCheckpoint(
  path: string, model: DenseNet, opt: Optimizer<any>, scheduler: LRScheduler | null, meta: CheckpointMeta, scaler: GradScaler | null = null,
): Promise<void> {
  const host = await toHostTensors(model.stateDict());
  // Steps a GradScaler may have skipped are counted on the GPU: fold them into the optimiser's counts.
  if (scaler) await opt.syncSteps();
  const flat = optimizerStateToTensors(opt.stateDict());
  for (const [k, v] of await toHostTensors(flat.tensors)) host.set(k, v);
  const bad = nonFinite(host);
  if (bad.length) throw new Error(`refusing to write the checkpoint ${path}: non-finite values in ${bad.length} tensor(s): ${listTensors(bad)}`);
  const metadata = {
    ...encodeMeta(meta), ...flat.metadata, ...(scheduler ? { scheduler: JSON.stringify(scheduler.stateDict()) } : {}),
    ...(scaler ? { scaler: JSON.stringify(await scaler.stateDict()) } : {}),
  };
  await writeFileAtomic(path, encodeSafetensors(host, metadata));
}

/**
 * Removes `<checkpoint>.tmp-<pid>-<time>` files left by writes that were killed, when the process
 * that wrote them is gone. Returns the names removed.
 */
export function removeStaleTemps(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
