// `densenet-bench train` and `densenet-bench eval`: the seed's DenseNet on Fashion-MNIST as d2l.ai
// trains it (SGD, lr 0.1, batch 256, 10 epochs, images resized to 96x96; here --size 32 is the quick
// default for a CPU-only machine: the model's stem and three transitions need at least 32 pixels). Images become [0, 1] floats on the host and are resized on the GPU
// (bilinear, as torchvision's Resize on tensors). A checkpoint (safetensors: the model's state dict,
// the optimiser's momentum buffers, and the epoch/step in the metadata) is written atomically at the
// end of every epoch and on Ctrl-C; a NaN or infinite loss stops the run and keeps the last good one.

// `densenet-bench train` and `densenet-bench eval`: the seed's DenseNet on Fashion-MNIST as d2l.ai
// trains it (SGD, lr 0.1, batch 256, 10 epochs, images resized to 96x96; here --size 32 is the quick
// default for a CPU-only machine: the model's stem and three transitions need at least 32 pixels).
// Images become [0, 1] floats on the host and are resized on the GPU (bilinear, as torchvision's
// Resize on tensors). A checkpoint (bench/checkpoint.ts) is written atomically at the end of every
// epoch and on SIGINT or SIGTERM (then the process exits 130 or 143); a NaN or infinite loss stops the
// run and keeps the last good one. Everything that can be checked on the host (flags, the checkpoint
// to resume, the data files) is checked by planTrain()/planEval() before any GPU work.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import { SGD, crossEntropy, type HostTensor } from '../nn/index.js';
import { DenseNet } from '../models/index.js';
import { COMMON_FLAGS, InputError, UsageError, intFlag, oneOf, type FlagSpec, type Flags } from './args.js';
import { readCheckpoint, removeStaleTemps, saveCheckpoint, type CheckpointMeta, type HostCheckpoint } from './checkpoint.js';
import { CLASS_NAMES, DEFAULT_DATA_DIR, loadFashionMnist, nonEmpty, type ImageSet } from './idx.js';
import { lineChart } from './plot.js';
import { Reporter, fixed, formatTable } from './report.js';

export const TRAIN_FLAGS = {
  epochs: { kind: 'int', help: 'N: train until N epochs are complete, counting those of a resumed checkpoint (default 1)' },
  batch: { kind: 'int', help: 'N: images per step (default 128)' },
  lr: { kind: 'number', help: 'X: SGD learning rate, > 0 (default 0.1)' },
  momentum: { kind: 'number', help: 'X: SGD momentum, >= 0 (default 0)' },
  'weight-decay': { kind: 'number', help: 'X: SGD weight decay (L2), >= 0 (default 0)' },
  size: { kind: 'int', help: 'N: images are resized to NxN on the GPU (default 32; d2l uses 96)' },
  limit: { kind: 'int', help: 'N: train on N images of each shuffled epoch (default all)' },
  'test-limit': { kind: 'int', help: 'N: evaluate on the first N test images (default all)' },
  seed: { kind: 'int', help: 'N: seed of the initialisation and of the shuffling (default 0)' },
  growth: { kind: 'int', help: 'N: growth rate of the dense blocks (default 32)' },
  arch: { kind: 'string', help: 'LIST: layers of each dense block, comma-separated (default 4,4,4,4)' },
  'memory-efficient': { kind: 'string', help: 'on|off: recompute dense-block intermediates in the backward pass (default on)' },
  out: { kind: 'string', help: 'DIR: where train-log.json, curves.svg and the checkpoint go (default out)' },
  checkpoint: { kind: 'string', help: 'FILE: the checkpoint to write (default DIR/checkpoint.safetensors)' },
  resume: { kind: 'string', help: 'FILE: continue from this checkpoint; growth, arch, size, batch and seed come from it' },
  data: { kind: 'string', help: `DIR: the Fashion-MNIST IDX files (default ${DEFAULT_DATA_DIR})` },
  'log-every': { kind: 'int', help: 'N: a progress line, and the one read-back of losses and accuracy, every N steps (default 10)' },
  'inject-nan-at': { kind: 'int', help: 'N: for tests, make the loss NaN at global step N' },
  ...COMMON_FLAGS,
} as const satisfies FlagSpec;

export const EVAL_FLAGS = {
  checkpoint: { kind: 'string', help: 'FILE: a checkpoint written by train (required); the model and input size come from it' },
  data: { kind: 'string', help: `DIR: the Fashion-MNIST IDX files (default ${DEFAULT_DATA_DIR})` },
  'test-limit': { kind: 'int', help: 'N: evaluate on the first N test images (default all)' },
  batch: { kind: 'int', help: 'N: images per forward pass (default 256)' },
  ...COMMON_FLAGS,
} as const satisfies FlagSpec;

/** Exit codes after a checkpoint is written on a signal, as shells report a death by that signal. */
export const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

export interface TrainConfig {
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  size: number;
  limit: number;
  testLimit: number;
  seed: number;
  memoryEfficient: boolean;
  checkpoint: string;
  resume: string | null;
  out: string;
  data: string;
  growth: number;
  arch: number[];
  logEvery: number;
  injectNanAt: number;
}

export interface TrainPlan {
  config: TrainConfig;
  data: { train: ImageSet; test: ImageSet };
  resume: HostCheckpoint | null;
  /** Lines to print before training (what was taken from the checkpoint). */
  notes: string[];
}

function nonNegative(f: Flags, name: string, dflt: number): number {
  const v = (f[name] as number | undefined) ?? dflt;
  if (!(v >= 0)) throw new UsageError(`--${name} must be >= 0, got ${v}`);
  return v;
}

function parseArch(s: string): number[] {
  const arch = s.split(',').map((x) => (/^\d+$/.test(x.trim()) ? Number(x) : NaN));
  if (!arch.every((n) => Number.isInteger(n) && n >= 1)) throw new UsageError(`--arch needs comma-separated positive integers, got '${s}'`);
  return arch;
}

/**
 * Checks the flags, reads the checkpoint to resume and the data, all on the host. With --resume the
 * model's shape (growth, arch), the input size, the batch and the seed come from the checkpoint: a flag
 * that names another value is refused (naming both), since the step index and the trained weights only
 * mean something under the checkpoint's values.
 */
export function planTrain(f: Flags): TrainPlan {
  const lr = (f.lr as number | undefined) ?? 0.1;
  if (!(lr > 0)) throw new UsageError(`--lr must be positive, got ${lr}`);
  const momentum = nonNegative(f, 'momentum', 0);
  const weightDecay = nonNegative(f, 'weight-decay', 0);
  const memoryEfficient = oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'on', ['on', 'off'] as const) === 'on';
  const epochs = intFlag(f, 'epochs', 1);
  const limit = intFlag(f, 'limit', Number.MAX_SAFE_INTEGER);
  const testLimit = intFlag(f, 'test-limit', Number.MAX_SAFE_INTEGER);
  const logEvery = intFlag(f, 'log-every', 10);
  const explicit = {
    growth: f.growth === undefined ? undefined : intFlag(f, 'growth', 32),
    arch: f.arch === undefined ? undefined : parseArch(f.arch as string),
    size: f.size === undefined ? undefined : intFlag(f, 'size', 32),
    batch: f.batch === undefined ? undefined : intFlag(f, 'batch', 128),
    seed: f.seed as number | undefined,
  };
  const out = (f.out as string) ?? 'out';
  const resume = f.resume === undefined ? null : readCheckpoint(f.resume as string);
  const notes: string[] = [];
  const pick = <K extends keyof typeof explicit>(key: K, dflt: NonNullable<(typeof explicit)[K]>): NonNullable<(typeof explicit)[K]> => {
    const given = explicit[key];
    if (!resume) return (given ?? dflt) as NonNullable<(typeof explicit)[K]>;
    const theirs = resume.meta[key] as NonNullable<(typeof explicit)[K]>;
    const show = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));
    if (given !== undefined && show(given) !== show(theirs)) {
      throw new InputError(
        `--${key} ${show(given)} does not match the checkpoint ${resume.path}, which was trained with ${key} ${show(theirs)}: ` +
          `leave --${key} out to continue with ${show(theirs)}, or start a new run without --resume`,
      );
    }
    return theirs;
  };
  const growth = pick('growth', 32);
  const arch = pick('arch', [4, 4, 4, 4]);
  const size = pick('size', 32);
  const batch = pick('batch', 128);
  const seed = pick('seed', 0);
  if (resume) {
    const m = resume.meta;
    notes.push(`resuming ${resume.path} at epoch ${m.epoch + 1}, step ${m.step + 1}, with its growth ${growth}, arch ${arch.join(',')}, size ${size}, batch ${batch}, seed ${seed}`);
    if (m.epoch >= epochs) throw new InputError(`the checkpoint ${resume.path} has ${m.epoch} epoch(s) done, so --epochs ${epochs} leaves nothing to train (--epochs counts the epochs done)`);
  }
  // The stem divides the size by 4 and each transition by 2: the last block needs at least 1x1.
  const minSize = 4 * 2 ** (arch.length - 1);
  if (size < minSize) {
    throw new UsageError(`--size ${size} is too small for the seed's DenseNet with ${arch.length} dense blocks: it needs at least ${minSize} pixels (d2l resizes Fashion-MNIST to 96; ${minSize} is the quick setting)`);
  }
  const dataDir = (f.data as string) ?? DEFAULT_DATA_DIR;
  const data = loadFashionMnist(dataDir);
  nonEmpty(data.train, 'training set');
  nonEmpty(data.test, 'test set');
  const config: TrainConfig = {
    epochs, batch, lr, momentum, weightDecay, size, limit, testLimit, seed, memoryEfficient,
    checkpoint: (f.checkpoint as string) ?? join(out, 'checkpoint.safetensors'),
    resume: resume?.path ?? null, out, data: dataDir, growth, arch, logEvery,
    injectNanAt: (f['inject-nan-at'] as number) ?? -1,
  };
  return { config, data, resume, notes };
}

/** A batch of images as a [B, 1, size, size] tensor in [0, 1] (resized on the GPU) and its labels. */
export function makeBatch(set: ImageSet, idx: ArrayLike<number>, size: number): { x: E.Tensor; y: E.Tensor } {
  const n = idx.length;
  const hw = set.height * set.width;
  const host = new Float32Array(n * hw);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const j = idx[i];
    for (let k = 0; k < hw; k++) host[i * hw + k] = set.images[j * hw + k] / 255;
    labels[i] = set.labels[j];
  }
  const raw = E.tensor(host, [n, 1, set.height, set.width]);
  const x = size === set.height && size === set.width ? raw : E.resizeBilinear(raw, [size, size]);
  if (x !== raw) raw.dispose();
  return { x, y: E.tensor(labels, [n]) };
}

function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const n = logits.length / classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Test accuracy and the confusion matrix (rows: true class, columns: predicted), with progress lines. */
export async function evaluate(
  model: DenseNet, set: ImageSet, size: number, batch: number, limit = Infinity, progress?: (line: string) => void, logEvery = 10,
): Promise<{ accuracy: number; confusion: number[][]; images: number }> {
  const n = Math.min(set.count, limit);
  if (!(n > 0)) throw new InputError(`${set.source ?? 'the test set'}: no images to evaluate (${set.count} in the file, limit ${limit})`);
  if (!(batch >= 1)) throw new InputError(`evaluate: the batch must be at least 1, got ${batch}`);
  const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  const batches = Math.ceil(n / batch);
  const t0 = performance.now();
  let correct = 0;
  for (let b = 0; b < batches; b++) {
    const s = b * batch;
    const idx = Array.from({ length: Math.min(batch, n - s) }, (_, i) => s + i);
    const logits = E.scope(() => model.predict(makeBatch(set, idx, size).x));
    const pred = argmaxRows(await logits.data(), 10);
    logits.dispose();
    pred.forEach((p, i) => {
      const t = set.labels[idx[i]];
      confusion[t][p]++;
      if (p === t) correct++;
    });
    if (progress && ((b + 1) % logEvery === 0 || b + 1 === batches)) {
      const seen = s + idx.length;
      const ips = seen / ((performance.now() - t0) / 1000);
      progress(`eval batch ${b + 1}/${batches} acc ${(correct / seen).toFixed(3)} ${ips.toFixed(1)} img/s ETA ${formatSecs((n - seen) / ips)}`);
    }
  }
  return { accuracy: correct / n, confusion, images: n };
}

function toGpu(t: HostTensor): E.Tensor {
  return E.tensor(t.data, t.shape);
}

/** The model of a run or a checkpoint, its lazy layers materialised with one small batch. */
function buildModel(m: Pick<CheckpointMeta, 'growth' | 'arch' | 'size'>, memoryEfficient: boolean, sample: ImageSet): DenseNet {
  const model = new DenseNet({ growthRate: m.growth, arch: m.arch, memoryEfficient });
  E.scope(() => void model.predict(makeBatch(sample, [0], m.size).x));
  return model;
}

function loadInto(model: DenseNet, ck: HostCheckpoint): void {
  const state = new Map([...ck.model].map(([k, t]) => [k, toGpu(t)]));
  try {
    model.loadStateDict(state);
  } catch (e) {
    throw new InputError(`checkpoint ${ck.path}: ${(e as Error).message}`);
  } finally {
    for (const t of state.values()) t.dispose();
  }
}

export interface EpochLog {
  epoch: number;
  loss: number;
  trainAcc: number;
  testAcc: number;
  seconds: number;
  imagesPerSec: number;
}

/**
 * Trains as planned. Returns the signal that interrupted the run (after writing a checkpoint), or
 * null when every epoch ran.
 */
export async function runTrain(plan: TrainPlan, rep: Reporter): Promise<{ signal: 'SIGINT' | 'SIGTERM' | null }> {
  const { config: c, data, resume } = plan;
  for (const line of plan.notes) rep.progress(line);
  mkdirSync(c.out, { recursive: true });
  for (const name of removeStaleTemps(c.checkpoint)) rep.progress(`removed ${name}, left by an interrupted write`);
  E.manualSeed(c.seed);
  const model = buildModel(c, c.memoryEfficient, data.train);
  const nTrain = Math.min(c.limit, data.train.count);
  const perEpoch = Math.ceil(nTrain / c.batch);
  const startEpoch = resume?.meta.epoch ?? 0;
  const startStep = resume?.meta.step ?? 0;
  if (resume) loadInto(model, resume);
  const opt = new SGD(model.parameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay });
  if (resume) for (const [i, b] of resume.momentum) opt.state[i] = E.keep(toGpu(b));
  const meta = (epoch: number, step: number): CheckpointMeta => ({ growth: c.growth, arch: c.arch, size: c.size, batch: c.batch, seed: c.seed, lr: c.lr, epoch, step });

  let signal: 'SIGINT' | 'SIGTERM' | null = null;
  const onSignal = (s: 'SIGINT' | 'SIGTERM') => {
    if (signal) {
      rep.progress(`\n${s} again: exiting without writing a checkpoint`);
      process.exit(SIGNAL_EXIT[s]);
    }
    signal = s;
    rep.progress(`\n${s}: writing a checkpoint after this step...`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const logs: EpochLog[] = [];
  const curve: Array<{ epoch: number; loss: number; acc: number }> = [];
  const t0 = performance.now();
  let imagesSeen = 0;
  let lastLoss = NaN;
  let lastTrainAcc = NaN;
  let globalStep = startEpoch * perEpoch + startStep;
  let lastGood = c.resume ?? null;
  const stop = async (epoch: number, step: number) => {
    await saveCheckpoint(c.checkpoint, model, opt, meta(epoch, step));
    rep.progress(`checkpoint written to ${c.checkpoint} (epoch ${epoch + 1}, step ${step}); resume with --resume ${c.checkpoint}`);
  };
  try {
    for (let epoch = startEpoch; epoch < c.epochs; epoch++) {
      const perm = new E.Generator(c.seed * 1000 + epoch).permutation(data.train.count).subarray(0, nTrain);
      const te = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      // Steps run without reading anything back; every --log-every steps (and before a checkpoint) the
      // window's losses and logits come back in one read, are checked for NaN step by step, and counted.
      let window: Array<{ loss: E.Tensor; logits: E.Tensor; idx: Uint32Array; step: number; global: number }> = [];
      const readWindow = async () => {
        const w = window;
        window = [];
        if (!w.length) return;
        const both = E.scope(() => E.cat([E.cat(w.map((p) => E.reshape(p.loss, [1]))), E.reshape(E.cat(w.map((p) => p.logits)), [-1])]));
        for (const p of w) {
          p.loss.dispose();
          p.logits.dispose();
        }
        const host = await both.data();
        both.dispose();
        let at = w.length;
        for (let i = 0; i < w.length; i++) {
          const { idx, step, global } = w[i];
          const lv = host[i];
          if (!Number.isFinite(lv)) {
            throw new Error(
              `the loss is ${lv} at epoch ${epoch + 1}, step ${step + 1} (global step ${global}); stopping. ` +
                (lastGood ? `The last good checkpoint is ${lastGood}.` : 'No checkpoint was written yet.'),
            );
          }
          lossSum += lv * idx.length;
          argmaxRows(host.subarray(at, at + idx.length * 10), 10).forEach((p, j) => p === data.train.labels[idx[j]] && correct++);
          at += idx.length * 10;
          seen += idx.length;
        }
      };
      for (let step = epoch === startEpoch ? startStep : 0; step < perEpoch; step++) {
        const idx = perm.subarray(step * c.batch, Math.min(nTrain, (step + 1) * c.batch));
        const { loss, logits } = E.scope(() => {
          const { x, y } = makeBatch(data.train, idx, c.size);
          opt.zeroGrad();
          const out = model(x);
          let l = crossEntropy(out, y);
          if (globalStep === c.injectNanAt) l = E.mul(l, E.tensor(Number.NaN)); // tests force a NaN here
          l.backward();
          return { loss: l, logits: out };
        });
        opt.step();
        window.push({ loss, logits, idx, step, global: globalStep });
        globalStep++;
        imagesSeen += idx.length;
        if ((step + 1) % c.logEvery === 0 || step + 1 === perEpoch || signal) {
          await readWindow();
          const secs = (performance.now() - te) / 1000;
          const ips = seen / secs;
          const eta = (perEpoch - step - 1) * (c.batch / ips) + (c.epochs - epoch - 1) * (nTrain / ips);
          rep.progress(
            `epoch ${epoch + 1}/${c.epochs} batch ${step + 1}/${perEpoch} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(3)} ` +
              `${ips.toFixed(1)} img/s ETA ${formatSecs(eta)}`,
          );
          curve.push({ epoch: epoch + (step + 1) / perEpoch, loss: lossSum / seen, acc: correct / seen });
        }
        if (signal && step + 1 < perEpoch) {
          await stop(epoch, step + 1);
          return { signal };
        }
      }
      const secs = (performance.now() - te) / 1000;
      rep.progress(`epoch ${epoch + 1}: evaluating on the test set...`);
      const { accuracy } = await evaluate(model, data.test, c.size, 256, c.testLimit, (l) => rep.progress(l));
      lastLoss = lossSum / Math.max(seen, 1);
      lastTrainAcc = correct / Math.max(seen, 1);
      const log: EpochLog = { epoch: epoch + 1, loss: lastLoss, trainAcc: lastTrainAcc, testAcc: accuracy, seconds: secs, imagesPerSec: seen / secs };
      logs.push(log);
      rep.record('epoch', { ...log });
      curve.push({ epoch: epoch + 1, loss: lastLoss, acc: lastTrainAcc });
      rep.progress(`epoch ${epoch + 1}: loss ${lastLoss.toFixed(4)}, train acc ${lastTrainAcc.toFixed(3)}, test acc ${accuracy.toFixed(3)}, ${(seen / secs).toFixed(1)} img/s`);
      await saveCheckpoint(c.checkpoint, model, opt, meta(epoch + 1, 0));
      lastGood = c.checkpoint;
      if (signal) {
        rep.progress(`checkpoint written to ${c.checkpoint} (end of epoch ${epoch + 1}); resume with --resume ${c.checkpoint}`);
        return { signal };
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    opt.dispose();
    model.dispose();
  }
  const total = (performance.now() - t0) / 1000;
  const last = logs[logs.length - 1];
  const summary = {
    epochs: c.epochs,
    size: c.size,
    batch: c.batch,
    loss: last?.loss ?? lastLoss,
    trainAcc: last?.trainAcc ?? lastTrainAcc,
    testAcc: last?.testAcc ?? null,
    seconds: total,
    imagesPerSec: imagesSeen / total,
    peakBytes: E.memory().peakBytes,
    checkpoint: c.checkpoint,
  };
  writeFileSync(join(c.out, 'train-log.json'), JSON.stringify({ config: c, epochs: logs, curve, summary }, null, 2));
  writeFileSync(join(c.out, 'curves.svg'), curvesSvg(curve, logs));
  rep.table([summary], [
    ['epochs', 'epochs'], ['size', 'size'], ['batch', 'batch'], ['loss', 'loss', fixed(4)], ['trainAcc', 'train acc', fixed(3)],
    ['testAcc', 'test acc', fixed(3)], ['seconds', 'seconds', fixed(1)], ['imagesPerSec', 'img/s', fixed(1)],
    ['peakBytes', 'peak MiB', (v) => ((v as number) / 2 ** 20).toFixed(1)],
  ], 'summary');
  rep.text(`log: ${join(c.out, 'train-log.json')}, curves: ${join(c.out, 'curves.svg')}, checkpoint: ${c.checkpoint}`);
  return { signal: null };
}

export interface EvalPlan {
  checkpoint: HostCheckpoint;
  test: ImageSet;
  batch: number;
  limit: number;
}

/** Checks eval's flags, reads the checkpoint and the test set, all on the host. */
export function planEval(f: Flags): EvalPlan {
  const path = f.checkpoint as string | undefined;
  if (!path) throw new UsageError('eval needs --checkpoint FILE');
  const batch = intFlag(f, 'batch', 256);
  const limit = intFlag(f, 'test-limit', Number.MAX_SAFE_INTEGER);
  const checkpoint = readCheckpoint(path);
  const test = nonEmpty(loadFashionMnist((f.data as string) ?? DEFAULT_DATA_DIR).test, 'test set');
  return { checkpoint, test, batch, limit };
}

export async function runEval(plan: EvalPlan, rep: Reporter): Promise<void> {
  const { checkpoint: ck, test } = plan;
  const size = ck.meta.size;
  const model = buildModel(ck.meta, true, test);
  try {
    loadInto(model, ck);
    const { accuracy, confusion, images } = await evaluate(model, test, size, plan.batch, plan.limit, (l) => rep.progress(l));
    rep.text(`test accuracy: ${accuracy.toFixed(4)} on ${images} images (${ck.path}, epoch ${ck.meta.epoch}, input ${size}x${size})\n`);
    rep.text(confusionTable(confusion));
    confusion.forEach((row, i) => {
      rep.record('row', { true: CLASS_NAMES[i], predicted: Object.fromEntries(CLASS_NAMES.map((n, j) => [n, row[j]])) });
    });
    rep.record('summary', { accuracy, images, checkpoint: ck.path, epoch: ck.meta.epoch, size });
  } finally {
    model.dispose();
  }
}

/** The confusion matrix as text: rows are the true class, columns the predicted one, names in full. */
export function confusionTable(confusion: number[][]): string {
  const rows = confusion.map((row, i) => Object.fromEntries([['true', CLASS_NAMES[i]], ...row.map((v, j) => [`p${j}`, v])]));
  return formatTable(rows, [['true', 'true \\ predicted'], ...CLASS_NAMES.map((n, j) => [`p${j}`, n] as [string, string])]);
}

function formatSecs(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${Math.round(s % 60)}s` : `${s.toFixed(0)}s`;
}

/** Loss and accuracy against epochs, in the manner of d2l's training plot. */
export function curvesSvg(curve: Array<{ epoch: number; loss: number; acc: number }>, logs: EpochLog[]): string {
  return lineChart({
    xLabel: 'epoch',
    yLabel: 'loss / accuracy',
    series: [
      { name: 'train loss', color: '#1f77b4', points: curve.map((p) => [p.epoch, p.loss]) },
      { name: 'train acc', color: '#9467bd', dash: '6 3', points: curve.map((p) => [p.epoch, p.acc]) },
      { name: 'test acc', color: '#2ca02c', dash: '2 3', markers: true, points: logs.map((l) => [l.epoch, l.testAcc]) },
    ],
  });
}
