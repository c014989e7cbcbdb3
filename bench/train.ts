// `densenet-bench train` and `densenet-bench eval`: the seed's DenseNet on Fashion-MNIST as d2l.ai
// trains it (SGD, lr 0.1, batch 256, 10 epochs, images resized to 96x96; here --size 32 is the quick
// default for a CPU-only machine: the model's stem and three transitions need at least 29 pixels).
// `--recipe densenet` is the DenseNet paper's: SGD with Nesterov momentum 0.9, weight decay 1e-4 (none
// on biases and batch-norm weights), the rate divided by 10 at 50% and 75% of the epochs; --optimizer,
// --schedule, --warmup-epochs and --augment change one part of a recipe. Batches come from the
// library's DataLoader (data/): [0, 1] floats uploaded from the host, resized on the GPU (bilinear, as
// torchvision's Resize on tensors), with --augment randomly cropped and flipped on the GPU; the
// predictions are argmax on the GPU. A checkpoint (bench/checkpoint.ts: model, optimiser and schedule
// in one safetensors file) is written atomically at the end of every epoch and on SIGINT or SIGTERM
// (then the process exits 130 or 143); a NaN or infinite loss stops the run and keeps the last good one. Everything that can be checked on the host (flags, the checkpoint
// to resume, the data files) is checked by planTrain()/planEval() before any GPU work.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import {
  SGD, Adam, AdamW, GradScaler, CosineAnnealingLR, LinearLR, MultiStepLR, SequentialLR, StepLR, crossEntropy, optimizerStateFromTensors,
  type HostTensor, type LRScheduler, type Optimizer,
} from '../nn/index.js';
import { DataLoader, IdxDataset, randomCrop, randomHorizontalFlip, resize, type FashionMNIST, type Transform } from '../data/index.js';
import { DenseNet } from '../models/index.js';
import { COMMON_FLAGS, InputError, UsageError, intFlag, oneOf, type FlagSpec, type Flags } from './args.js';
import {
  OPTIMIZERS, PRECISIONS, RECIPES, SCHEDULES, readCheckpoint, removeStaleTemps, saveCheckpoint,
  type CheckpointMeta, type HostCheckpoint, type Recipe, type TrainingSettings,
} from './checkpoint.js';
import { CLASS_NAMES, DEFAULT_DATA_DIR, loadFashionMnist, nonEmpty } from './data.js';
import { lineChart } from './plot.js';
import { Reporter, fixed, formatTable } from './report.js';

export const TRAIN_FLAGS = {
  epochs: { kind: 'int', help: 'N: train until N epochs are complete, counting those of a resumed checkpoint (default 1)' },
  batch: { kind: 'int', help: 'N: images per step (default 128)' },
  recipe: { kind: 'string', help: "d2l|densenet: d2l is SGD at lr 0.1 (the default); densenet is SGD with Nesterov momentum 0.9, weight decay 1e-4 (none on biases and batch-norm weights) and --schedule multistep" },
  optimizer: { kind: 'string', help: "sgd|adam|adamw: the optimiser (default sgd)" },
  lr: { kind: 'number', help: 'X: base learning rate, > 0 (default 0.1 for sgd, 0.001 for adam and adamw)' },
  momentum: { kind: 'number', help: "X: SGD momentum, >= 0 (default: the recipe's, 0 or 0.9)" },
  'weight-decay': { kind: 'number', help: "X: weight decay, >= 0; L2 for sgd and adam, decoupled for adamw (default: the recipe's, 0 or 1e-4)" },
  schedule: { kind: 'string', help: "none|step|multistep|cosine: the learning rate per epoch: x0.1 every third of the epochs, x0.1 at 50% and 75% of them, or cosine to 0 (default: the recipe's)" },
  'warmup-epochs': { kind: 'int', help: 'N: a linear warm-up from 0.1x to the base rate over the first N epochs, then the schedule (default 0)' },
  'schedule-epochs': { kind: 'int', help: 'N: the epochs the schedule spans, so a run can stop before them and resume (default --epochs)' },
  augment: { kind: 'bool', help: 'random crop (zero padding of size/8) and horizontal flip of each training image, on the GPU' },
  size: { kind: 'int', help: 'N: images are resized to NxN on the GPU (default 32; d2l uses 96)' },
  limit: { kind: 'int', help: 'N: train on N images of each shuffled epoch (default all)' },
  'test-limit': { kind: 'int', help: 'N: evaluate on the first N test images (default all)' },
  seed: { kind: 'int', help: 'N: seed of the initialisation and of the shuffling (default 0)' },
  growth: { kind: 'int', help: 'N: growth rate of the dense blocks (default 32)' },
  arch: { kind: 'string', help: 'LIST: layers of each dense block, comma-separated (default 4,4,4,4)' },
  'memory-efficient': { kind: 'string', help: 'on|off: recompute dense-block intermediates in the backward pass (default on)' },
  precision: { kind: 'string', help: 'fp32|mixed: float32 activations, or float16 activations with dynamic loss scaling (GradScaler; needs shader-f16) (default fp32)' },
  out: { kind: 'string', help: 'DIR: where train-log.json, curves.svg and the checkpoint go (default out)' },
  checkpoint: { kind: 'string', help: 'FILE: the checkpoint to write (default DIR/checkpoint.safetensors)' },
  resume: { kind: 'string', help: 'FILE: continue from this checkpoint; the model, size, batch, seed, recipe, optimiser, schedule and augmentation come from it' },
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

export interface TrainConfig extends TrainingSettings {
  epochs: number;
  batch: number;
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
  data: { train: FashionMNIST; test: FashionMNIST };
  resume: HostCheckpoint | null;
  /** Lines to print before training (what was taken from the checkpoint). */
  notes: string[];
}

/** What each recipe sets; flags given explicitly override it. */
export const RECIPE_DEFAULTS: Record<Recipe, Omit<TrainingSettings, 'recipe' | 'warmupEpochs' | 'scheduleEpochs' | 'precision'>> = {
  d2l: { optimizer: 'sgd', lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0, decayAll: true, schedule: 'none', augment: false },
  densenet: { optimizer: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4, decayAll: false, schedule: 'multistep', augment: false },
};

/** The flags that set a TrainingSettings field, which a resumed run takes from its checkpoint. */
const SETTING_FLAGS = [
  ['recipe', 'recipe'], ['optimizer', 'optimizer'], ['lr', 'lr'], ['momentum', 'momentum'], ['weight-decay', 'weightDecay'],
  ['schedule', 'schedule'], ['warmup-epochs', 'warmupEpochs'], ['schedule-epochs', 'scheduleEpochs'], ['augment', 'augment'], ['precision', 'precision'],
] as const satisfies ReadonlyArray<readonly [string, keyof TrainingSettings]>;

function parseArch(s: string): number[] {
  const arch = s.split(',').map((x) => (/^\d+$/.test(x.trim()) ? Number(x) : NaN));
  if (!arch.every((n) => Number.isInteger(n) && n >= 1)) throw new UsageError(`--arch needs comma-separated positive integers, got '${s}'`);
  return arch;
}

/** The training settings the flags ask for, the recipe filling in what they leave out (host only). */
export function trainingSettings(f: Flags, epochs: number): TrainingSettings {
  const recipe = oneOf('--recipe', (f.recipe as string) ?? 'd2l', RECIPES);
  const r = RECIPE_DEFAULTS[recipe];
  const optimizer = oneOf('--optimizer', (f.optimizer as string) ?? r.optimizer, OPTIMIZERS);
  const sgd = optimizer === 'sgd';
  if (!sgd && f.momentum !== undefined) throw new UsageError(`--momentum is for --optimizer sgd, not ${optimizer} (Adam's moments are set by its betas)`);
  const momentum = sgd ? ((f.momentum as number | undefined) ?? r.momentum) : 0;
  const schedule = oneOf('--schedule', (f.schedule as string) ?? r.schedule, SCHEDULES);
  const warmupEpochs = intFlag(f, 'warmup-epochs', 0, 0);
  const scheduleEpochs = intFlag(f, 'schedule-epochs', epochs);
  if (schedule !== 'none' && warmupEpochs >= scheduleEpochs) {
    throw new UsageError(`--warmup-epochs ${warmupEpochs} leaves no epoch of the ${schedule} schedule in ${scheduleEpochs} (--schedule-epochs, default --epochs); use fewer warm-up epochs or --schedule none`);
  }
  return {
    recipe, optimizer, lr: (f.lr as number | undefined) ?? (sgd ? r.lr : 1e-3), momentum, nesterov: sgd && r.nesterov && momentum > 0,
    weightDecay: (f['weight-decay'] as number | undefined) ?? r.weightDecay, decayAll: r.decayAll, schedule, warmupEpochs, scheduleEpochs,
    augment: (f.augment as boolean | undefined) ?? r.augment,
    precision: oneOf('--precision', (f.precision as string) ?? 'fp32', PRECISIONS),
  };
}

const show = (v: unknown) => (Array.isArray(v) ? v.join(',') : String(v));

/** Refuses a flag that names another value than the checkpoint's (naming both). */
function sameAsCheckpoint(flag: string, given: unknown, theirs: unknown, ck: HostCheckpoint): void {
  if (given === undefined || show(given) === show(theirs)) return;
  throw new InputError(
    `--${flag} ${show(given)} does not match the checkpoint ${ck.path}, which was trained with ${flag} ${show(theirs)}: ` +
      `leave --${flag} out to continue with ${show(theirs)}, or start a new run without --resume`,
  );
}

/**
 * Checks the flags, reads the checkpoint to resume and the data, all on the host. With --resume the
 * model's shape (growth, arch), the input size, the batch, the seed and the training settings (recipe,
 * optimiser, rates, schedule, augmentation) come from the checkpoint: a flag that names another value
 * is refused (naming both), since the step index, the trained weights and the optimiser's state only
 * mean something under the checkpoint's values.
 */
export function planTrain(f: Flags): TrainPlan {
  const lr = f.lr as number | undefined;
  if (lr !== undefined && !(lr > 0)) throw new UsageError(`--lr must be positive, got ${lr}`);
  for (const name of ['momentum', 'weight-decay']) if (f[name] !== undefined && !((f[name] as number) >= 0)) throw new UsageError(`--${name} must be >= 0, got ${f[name]}`);
  const memoryEfficient = oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'on', ['on', 'off'] as const) === 'on';
  const epochs = intFlag(f, 'epochs', 1);
  const limit = intFlag(f, 'limit', Number.MAX_SAFE_INTEGER);
  const testLimit = intFlag(f, 'test-limit', Number.MAX_SAFE_INTEGER);
  const logEvery = intFlag(f, 'log-every', 10);
  const fromFlags = trainingSettings(f, epochs);
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
    sameAsCheckpoint(key, given, resume.meta[key], resume);
    return resume.meta[key] as NonNullable<(typeof explicit)[K]>;
  };
  const growth = pick('growth', 32);
  const arch = pick('arch', [4, 4, 4, 4]);
  const size = pick('size', 32);
  const batch = pick('batch', 128);
  const seed = pick('seed', 0);
  let settings = fromFlags;
  if (resume) {
    const m = resume.meta;
    // A format-1 checkpoint did not record its momentum and weight decay: they come from the flags, as they did.
    settings = resume.legacy ? { ...m, momentum: fromFlags.momentum, weightDecay: fromFlags.weightDecay, scheduleEpochs: epochs } : { ...m };
    for (const [flag, key] of SETTING_FLAGS) if (!(resume.legacy && (key === 'momentum' || key === 'weightDecay'))) sameAsCheckpoint(flag, f[flag], settings[key], resume);
    const s = settings;
    notes.push(
      `resuming ${resume.path} at epoch ${m.epoch + 1}, step ${m.step + 1}, with its growth ${growth}, arch ${arch.join(',')}, size ${size}, batch ${batch}, seed ${seed}, ` +
        `recipe ${s.recipe}, optimizer ${s.optimizer}, lr ${s.lr}, schedule ${s.schedule}${s.augment ? ', augment' : ''}`,
    );
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
    ...settings, epochs, batch, size, limit, testLimit, seed, memoryEfficient,
    checkpoint: (f.checkpoint as string) ?? join(out, 'checkpoint.safetensors'),
    resume: resume?.path ?? null, out, data: dataDir, growth, arch, logEvery,
    injectNanAt: (f['inject-nan-at'] as number) ?? -1,
  };
  return { config, data, resume, notes };
}

/** The GPU transforms of a run's batches: resize to size x size, and with augment a random crop and flip. */
export function batchTransforms(height: number, width: number, size: number, augment: boolean): Transform[] {
  const t: Transform[] = size === height && size === width ? [] : [resize(size)];
  if (augment) t.push(randomCrop(size, { padding: Math.floor(size / 8) }), randomHorizontalFlip());
  return t;
}

/** Test accuracy and the confusion matrix (rows: true class, columns: predicted), with progress lines. */
export async function evaluate(
  model: DenseNet, set: FashionMNIST, size: number, batch: number, limit = Infinity, progress?: (line: string) => void, logEvery = 10,
): Promise<{ accuracy: number; confusion: number[][]; images: number }> {
  const n = Math.min(set.length, limit);
  if (!(n > 0)) throw new InputError(`${set.set.source ?? 'the test set'}: no images to evaluate (${set.length} in the file, limit ${limit})`);
  if (!(batch >= 1)) throw new InputError(`evaluate: the batch must be at least 1, got ${batch}`);
  const { images, labels, height, width } = set.set;
  const first = new IdxDataset({ images: images.subarray(0, n * height * width), labels: labels.subarray(0, n), count: n, height, width });
  const loader = new DataLoader(first, { batchSize: batch, transforms: batchTransforms(height, width, size, false), expectShape: [1, size, size] });
  const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  const batches = loader.length;
  const t0 = performance.now();
  let correct = 0;
  let seen = 0;
  let b = 0;
  for (const [x] of loader) {
    const pred = E.scope(() => E.argmax(model.predict(x), 1));
    const host = await pred.data();
    pred.dispose();
    host.forEach((p, i) => {
      const t = labels[seen + i];
      confusion[t][p]++;
      if (p === t) correct++;
    });
    seen += host.length;
    b++;
    if (progress && (b % logEvery === 0 || b === batches)) {
      const ips = seen / ((performance.now() - t0) / 1000);
      progress(`eval batch ${b}/${batches} acc ${(correct / seen).toFixed(3)} ${ips.toFixed(1)} img/s ETA ${formatSecs((n - seen) / ips)}`);
    }
  }
  return { accuracy: correct / n, confusion, images: n };
}

function toGpu(t: HostTensor): E.Tensor {
  return E.tensor(t.data, t.shape);
}

/** The model of a run or a checkpoint, its lazy layers materialised with one small batch. */
function buildModel(m: Pick<CheckpointMeta, 'growth' | 'arch' | 'size'>, memoryEfficient: boolean, precision: E.Precision = 'fp32'): DenseNet {
  const model = new DenseNet({ growthRate: m.growth, arch: m.arch, memoryEfficient, precision });
  E.scope(() => void model.predict(E.zeros([1, 1, m.size, m.size])));
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

/** The optimiser of the settings; without decayAll, parameters of ndim <= 1 form a second group without weight decay. */
export function makeOptimizer(params: E.Tensor[], s: TrainingSettings): Optimizer<any> {
  const groups = s.decayAll ? [{ params }] : [{ params: params.filter((p) => p.ndim > 1) }, { params: params.filter((p) => p.ndim <= 1), weightDecay: 0 }];
  const { lr, weightDecay } = s;
  if (s.optimizer === 'sgd') return new SGD(groups, { lr, momentum: s.momentum, nesterov: s.nesterov, weightDecay });
  return s.optimizer === 'adam' ? new Adam(groups, { lr, weightDecay }) : new AdamW(groups, { lr, weightDecay });
}

/**
 * The per-epoch schedule of the settings over scheduleEpochs (after the warm-up): step multiplies the
 * rate by 0.1 every third of them, multistep at 50% and 75% (milestones at epoch 0 are left out),
 * cosine anneals it to 0; warm-up epochs go first (LinearLR from 0.1x, then SequentialLR).
 */
export function makeScheduler(opt: Optimizer<any>, s: TrainingSettings): LRScheduler | null {
  const span = s.scheduleEpochs - s.warmupEpochs;
  const warm = s.warmupEpochs ? new LinearLR(opt, 0.1, 1, s.warmupEpochs) : null;
  const main =
    s.schedule === 'step' ? new StepLR(opt, Math.max(1, Math.floor(span / 3)), 0.1)
    : s.schedule === 'multistep' ? new MultiStepLR(opt, [0.5, 0.75].map((q) => Math.floor(q * span)).filter((m) => m >= 1), 0.1)
    : s.schedule === 'cosine' ? new CosineAnnealingLR(opt, span)
    : null;
  return warm && main ? new SequentialLR(opt, [warm, main], [s.warmupEpochs]) : (warm ?? main);
}

/** Loads the checkpoint's optimiser and scheduler state (a format-1 file: its SGD momentum buffers). */
function loadTrainingState(ck: HostCheckpoint, opt: Optimizer<any>, scheduler: LRScheduler | null): void {
  try {
    if (ck.legacy) {
      if (!(opt instanceof SGD)) throw new Error('a format-1 checkpoint holds SGD state only');
      for (const [i, b] of ck.momentum) {
        if (i >= opt.state.length) throw new Error(`momentum buffer ${i} for ${opt.state.length} parameters`);
        opt.state[i] = E.keep(toGpu(b));
      }
      return;
    }
    const tensors = new Map([...ck.optimizer.tensors].map(([k, t]) => [k, toGpu(t)]));
    try {
      opt.loadStateDict(optimizerStateFromTensors(tensors, ck.optimizer.metadata));
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    if (scheduler && ck.scheduler) scheduler.loadStateDict(ck.scheduler);
  } catch (e) {
    throw new InputError(`checkpoint ${ck.path}: ${(e as Error).message}`);
  }
}

export interface EpochLog {
  epoch: number;
  loss: number;
  trainAcc: number;
  testAcc: number;
  /** The learning rate of the epoch (of the first parameter group). */
  lr: number;
  seconds: number;
  imagesPerSec: number;
  /** Mixed precision: training steps the GradScaler has skipped so far (an inf or NaN gradient). */
  skippedSteps?: number;
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
  try {
    E.checkPrecision('--precision', c.precision);
  } catch (e) {
    throw new InputError((e as Error).message);
  }
  const model = buildModel(c, c.memoryEfficient, c.precision);
  const nTrain = Math.min(c.limit, data.train.length);
  const perEpoch = Math.ceil(nTrain / c.batch);
  const startEpoch = resume?.meta.epoch ?? 0;
  const startStep = resume?.meta.step ?? 0;
  if (resume) loadInto(model, resume);
  const opt = makeOptimizer(model.parameters(), c);
  const scheduler = makeScheduler(opt, c);
  if (resume) loadTrainingState(resume, opt, scheduler);
  // Mixed precision: dynamic loss scaling, its state resumed with the run's.
  const scaler = c.precision === 'mixed' ? new GradScaler() : null;
  if (scaler && resume?.scaler) scaler.loadStateDict(resume.scaler);
  const { height, width } = data.train.set;
  // The loader's generator draws the augmentation; it is reseeded from (seed, epoch, step) before each
  // batch, so a resumed run draws what an uninterrupted one would.
  const draws = new E.Generator(c.seed);
  const loader = new DataLoader(data.train, { batchSize: c.batch, generator: draws, transforms: batchTransforms(height, width, c.size, c.augment), expectShape: [1, c.size, c.size] });
  const meta = (epoch: number, step: number): CheckpointMeta => ({
    growth: c.growth, arch: c.arch, size: c.size, batch: c.batch, seed: c.seed, epoch, step,
    recipe: c.recipe, optimizer: c.optimizer, lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay, decayAll: c.decayAll,
    schedule: c.schedule, warmupEpochs: c.warmupEpochs, scheduleEpochs: c.scheduleEpochs, augment: c.augment, precision: c.precision,
  });
  const save = (epoch: number, step: number) => saveCheckpoint(c.checkpoint, model, opt, scheduler, meta(epoch, step), scaler);

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
    await save(epoch, step);
    rep.progress(`checkpoint written to ${c.checkpoint} (epoch ${epoch + 1}, step ${step}); resume with --resume ${c.checkpoint}`);
  };
  try {
    for (let epoch = startEpoch; epoch < c.epochs; epoch++) {
      const perm = new E.Generator(c.seed * 1000 + epoch).permutation(data.train.length).subarray(0, nTrain);
      const indices = (step: number) => perm.subarray(step * c.batch, Math.min(nTrain, (step + 1) * c.batch));
      const batchAt = (step: number) => {
        draws.seed((Math.imul(c.seed + 1, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35)) >>> 0);
        return loader.loadBatch(indices(step));
      };
      const te = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      // Steps run without reading anything back; every --log-every steps (and before a checkpoint) the
      // window's losses and predictions (argmax on the GPU) come back in one read, are checked for NaN
      // step by step, and counted.
      let window: Array<{ loss: E.Tensor; pred: E.Tensor; idx: Uint32Array; step: number; global: number }> = [];
      const readWindow = async () => {
        const w = window;
        window = [];
        if (!w.length) return;
        const both = E.scope(() => E.cat([E.cat(w.map((p) => E.reshape(p.loss, [1]))), E.cat(w.map((p) => p.pred))]));
        for (const p of w) {
          p.loss.dispose();
          p.pred.dispose();
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
          for (let j = 0; j < idx.length; j++) if (host[at + j] === data.train.label(idx[j])) correct++;
          at += idx.length;
          seen += idx.length;
        }
      };
      const first = epoch === startEpoch ? startStep : 0;
      // The next batch is gathered and uploaded while the GPU runs the current step (as DataLoader's iterator does).
      let next: E.Tensor[] | null = first < perEpoch ? batchAt(first) : null;
      try {
        for (let step = first; step < perEpoch; step++) {
          const idx = indices(step);
          const [x, y] = next!;
          const { loss, pred } = E.scope(() => {
            opt.zeroGrad();
            const out = model(x);
            let l = crossEntropy(out, y);
            if (globalStep === c.injectNanAt) l = E.mul(l, E.tensor(Number.NaN)); // tests force a NaN here
            (scaler ? scaler.scale(l) : l).backward();
            return { loss: l, pred: E.argmax(out, 1) };
          });
          if (scaler) {
            scaler.step(opt); // skipped on the GPU when a gradient overflowed
            scaler.update();
          } else opt.step();
          E.flush();
          x.dispose();
          y.dispose();
          next = step + 1 < perEpoch ? batchAt(step + 1) : null;
          window.push({ loss, pred, idx, step, global: globalStep });
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
      } finally {
        for (const t of next ?? []) t.dispose();
      }
      const secs = (performance.now() - te) / 1000;
      const lr = opt.paramGroups[0].lr;
      scheduler?.step();
      rep.progress(`epoch ${epoch + 1}: evaluating on the test set...`);
      const { accuracy } = await evaluate(model, data.test, c.size, 256, c.testLimit, (l) => rep.progress(l));
      lastLoss = lossSum / Math.max(seen, 1);
      lastTrainAcc = correct / Math.max(seen, 1);
      const log: EpochLog = { epoch: epoch + 1, loss: lastLoss, trainAcc: lastTrainAcc, testAcc: accuracy, lr, seconds: secs, imagesPerSec: seen / secs };
      if (scaler) log.skippedSteps = await scaler.skippedSteps();
      logs.push(log);
      rep.record('epoch', { ...log });
      curve.push({ epoch: epoch + 1, loss: lastLoss, acc: lastTrainAcc });
      rep.progress(`epoch ${epoch + 1}: loss ${lastLoss.toFixed(4)}, train acc ${lastTrainAcc.toFixed(3)}, test acc ${accuracy.toFixed(3)}, lr ${lr.toPrecision(3)}, ${(seen / secs).toFixed(1)} img/s` +
          (scaler ? `, loss scale ${await scaler.getScale()}, ${log.skippedSteps} step(s) skipped so far` : ''));
      await save(epoch + 1, 0);
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
    scaler?.dispose();
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
  test: FashionMNIST;
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
  // The precision the run trained (and evaluated each epoch) in, where this adapter can run it.
  const precision = ck.meta.precision === 'mixed' && !E.mixedSupported() ? 'fp32' : ck.meta.precision;
  if (precision !== ck.meta.precision) rep.progress(`this adapter has no 'shader-f16': evaluating the mixed-precision checkpoint in fp32`);
  const model = buildModel(ck.meta, true, precision);
  try {
    loadInto(model, ck);
    const { accuracy, confusion, images } = await evaluate(model, test, size, plan.batch, plan.limit, (l) => rep.progress(l));
    rep.text(`test accuracy: ${accuracy.toFixed(4)} on ${images} images (${ck.path}, epoch ${ck.meta.epoch}, input ${size}x${size}, precision ${precision})\n`);
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
