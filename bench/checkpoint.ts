// The training checkpoint of `densenet-bench train`: one safetensors file holding the model's state
// dict, the optimiser's momentum buffers (`optimizer.momentum_buffer.<i>`), and in the metadata what
// is needed to rebuild the model and continue (growth, arch, input size, batch, seed, epoch, step),
// plus the CRC32 of the data that nn/safetensors.ts writes and checks. Reading is host-only (no GPU),
// so a bad checkpoint is refused before any GPU work: an unknown format, a missing or malformed key
// (named), a corrupt data section (the file named), or non-finite parameters (the tensors named).

import { readFileSync, readdirSync, rmSync, existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type * as E from '../engine/index.js';
import { decodeSafetensors, encodeSafetensors, toHostTensors, writeFileAtomic, type HostTensor, type SGD } from '../nn/index.js';
import type { DenseNet } from '../models/index.js';
import { InputError } from './args.js';

export const CHECKPOINT_FORMAT = 'densenet-webgpu-train-1';
const MOMENTUM_PREFIX = 'optimizer.momentum_buffer.';

/** What a checkpoint records about the run besides the tensors. */
export interface CheckpointMeta {
  growth: number;
  arch: number[];
  size: number;
  batch: number;
  seed: number;
  /** Epochs completed. */
  epoch: number;
  /** Steps completed within the next epoch (0 at an epoch boundary). */
  step: number;
  lr: number;
}

export interface HostCheckpoint {
  path: string;
  meta: CheckpointMeta;
  model: Map<string, HostTensor>;
  momentum: Map<number, HostTensor>;
}

export function encodeMeta(m: CheckpointMeta): Record<string, string> {
  return {
    format: CHECKPOINT_FORMAT, model: 'd2l', growth: String(m.growth), arch: m.arch.join(','), size: String(m.size),
    epoch: String(m.epoch), step: String(m.step), seed: String(m.seed), lr: String(m.lr), batch: String(m.batch),
  };
}

function parseMeta(raw: Record<string, string>, path: string): CheckpointMeta {
  const bad = (key: string, want: string): never => {
    const v = raw[key];
    throw new InputError(`checkpoint ${path}: ${v === undefined ? `the metadata key '${key}' is missing` : `the metadata key '${key}' is ${JSON.stringify(v)}`}; expected ${want}`);
  };
  const int = (key: string, min: number): number => {
    const v = raw[key];
    const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
    return Number.isSafeInteger(n) && n >= min ? n : bad(key, `an integer >= ${min}`);
  };
  const arch = typeof raw.arch === 'string' && /^\d+(,\d+)*$/.test(raw.arch) ? raw.arch.split(',').map(Number) : [];
  if (!arch.length || arch.some((n) => n < 1)) bad('arch', 'comma-separated positive integers such as 4,4,4,4');
  const lr = Number(raw.lr);
  return {
    growth: int('growth', 1), arch, size: int('size', 1), batch: int('batch', 1), seed: int('seed', 0), epoch: int('epoch', 0), step: int('step', 0),
    lr: Number.isFinite(lr) && lr > 0 ? lr : bad('lr', 'a positive number'),
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
  if (metadata.format !== CHECKPOINT_FORMAT) throw new InputError(`${path} is not a checkpoint written by densenet-bench train (metadata format ${JSON.stringify(metadata.format)}, expected "${CHECKPOINT_FORMAT}")`);
  const meta = parseMeta(metadata, path);
  const bad = nonFinite(tensors);
  if (bad.length) throw new InputError(`checkpoint ${path} holds non-finite values in ${bad.length} tensor(s): ${listTensors(bad)}; refusing to start from it`);
  const model = new Map<string, HostTensor>();
  const momentum = new Map<number, HostTensor>();
  for (const [k, t] of tensors) {
    if (!k.startsWith(MOMENTUM_PREFIX)) model.set(k, t);
    else {
      const i = Number(k.slice(MOMENTUM_PREFIX.length));
      if (!Number.isInteger(i) || i < 0) throw new InputError(`checkpoint ${path}: '${k}' is not a momentum buffer index`);
      momentum.set(i, t);
    }
  }
  return { path, meta, model, momentum };
}

/**
 * Writes the model, the momentum buffers and the metadata atomically. Refuses (and writes nothing)
 * when a tensor holds NaN or infinity, naming the tensors, so a good checkpoint is never replaced by
 * a poisoned one.
 */
export async function saveCheckpoint(path: string, model: DenseNet, opt: SGD, meta: CheckpointMeta): Promise<void> {
  const host = await toHostTensors(model.stateDict());
  const optState = new Map<string, E.Tensor>();
  opt.state.forEach((b, i) => b && optState.set(`${MOMENTUM_PREFIX}${i}`, b));
  for (const [k, v] of await toHostTensors(optState)) host.set(k, v);
  const bad = nonFinite(host);
  if (bad.length) throw new Error(`refusing to write the checkpoint ${path}: non-finite values in ${bad.length} tensor(s): ${listTensors(bad)}`);
  await writeFileAtomic(path, encodeSafetensors(host, encodeMeta(meta)));
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
