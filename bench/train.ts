// `densenet-bench train` and `densenet-bench eval`: the seed's DenseNet on Fashion-MNIST as d2l.ai
// trains it (SGD, lr 0.1, batch 256, 10 epochs, images resized to 96x96; here --size 32 is the quick
// default for a CPU-only machine: the model's stem and three transitions need at least 32 pixels). Images become [0, 1] floats on the host and are resized on the GPU
// (bilinear, as torchvision's Resize on tensors). A checkpoint (safetensors: the model's state dict,
// the optimiser's momentum buffers, and the epoch/step in the metadata) is written atomically at the
// end of every epoch and on Ctrl-C; a NaN or infinite loss stops the run and keeps the last good one.

import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import { SGD, crossEntropy, decodeSafetensors, encodeSafetensors, toHostTensors, writeFileAtomic, type HostTensor } from '../nn/index.js';
import { DenseNet } from '../models/index.js';
import { UsageError, oneOf } from './args.js';
import { CLASS_NAMES, DEFAULT_DATA_DIR, loadFashionMnist, type ImageSet } from './idx.js';
import { Reporter, fixed } from './report.js';

export const TRAIN_FLAGS = {
  epochs: 'int', batch: 'int', lr: 'number', momentum: 'number', 'weight-decay': 'number', size: 'int', limit: 'int',
  'test-limit': 'int', seed: 'int', 'memory-efficient': 'string', checkpoint: 'string', resume: 'string', out: 'string',
  data: 'string', growth: 'int', arch: 'string', 'log-every': 'int', 'inject-nan-at': 'int', json: 'bool',
} as const;
export const EVAL_FLAGS = { checkpoint: 'string', data: 'string', 'test-limit': 'int', batch: 'int', json: 'bool' } as const;

type Flags = Partial<Record<string, string | number | boolean>>;

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

export function trainConfig(f: Flags): TrainConfig {
  const int = (k: string, d: number, min = 1) => {
    const v = (f[k] as number | undefined) ?? d;
    if (v < min) throw new UsageError(`--${k} must be at least ${min}`);
    return v;
  };
  const arch = ((f.arch as string) ?? '4,4,4,4').split(',').map(Number);
  if (!arch.every((n) => Number.isInteger(n) && n >= 1)) throw new UsageError(`--arch needs comma-separated positive integers, got '${f.arch}'`);
  const lr = (f.lr as number) ?? 0.1;
  if (!(lr > 0)) throw new UsageError('--lr must be positive');
  const out = (f.out as string) ?? 'out';
  // The stem divides the size by 4 and each transition by 2: the last block needs at least 1x1.
  const minSize = 4 * 2 ** (arch.length - 1);
  const size = (f.size as number | undefined) ?? 32;
  if (size < minSize) {
    throw new UsageError(`--size ${size} is too small for the seed's DenseNet with ${arch.length} dense blocks: it needs at least ${minSize} pixels (d2l resizes Fashion-MNIST to 96; ${minSize} is the quick setting)`);
  }
  return {
    epochs: int('epochs', 1),
    batch: int('batch', 128),
    lr,
    momentum: (f.momentum as number) ?? 0,
    weightDecay: (f['weight-decay'] as number) ?? 0,
    size: int('size', 32, 8),
    limit: int('limit', Number.MAX_SAFE_INTEGER),
    testLimit: int('test-limit', Number.MAX_SAFE_INTEGER),
    seed: (f.seed as number) ?? 0,
    memoryEfficient: oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'on', ['on', 'off'] as const) === 'on',
    checkpoint: (f.checkpoint as string) ?? join(out, 'checkpoint.safetensors'),
    resume: (f.resume as string) ?? null,
    out,
    data: (f.data as string) ?? DEFAULT_DATA_DIR,
    growth: int('growth', 32),
    arch,
    logEvery: int('log-every', 10),
    injectNanAt: (f['inject-nan-at'] as number) ?? -1,
  };
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

/** Test accuracy and the confusion matrix (rows: true class, columns: predicted). */
export async function evaluate(model: DenseNet, set: ImageSet, size: number, batch: number, limit = Infinity): Promise<{ accuracy: number; confusion: number[][] }> {
  const n = Math.min(set.count, limit);
  const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  let correct = 0;
  for (let s = 0; s < n; s += batch) {
    const idx = Array.from({ length: Math.min(batch, n - s) }, (_, i) => s + i);
    const logits = E.scope(() => {
      const { x } = makeBatch(set, idx, size);
      return model.predict(x);
    });
    const pred = argmaxRows(await logits.data(), 10);
    logits.dispose();
    pred.forEach((p, i) => {
      const t = set.labels[idx[i]];
      confusion[t][p]++;
      if (p === t) correct++;
    });
  }
  return { accuracy: correct / n, confusion };
}

interface Checkpoint {
  model: Map<string, E.Tensor>;
  momentum: Map<number, E.Tensor>;
  meta: Record<string, string>;
}

async function saveCheckpoint(path: string, model: DenseNet, opt: SGD, meta: Record<string, string>): Promise<void> {
  const host = await toHostTensors(model.stateDict());
  const optState = new Map<string, E.Tensor>();
  opt.state.forEach((b, i) => b && optState.set(`optimizer.momentum_buffer.${i}`, b));
  for (const [k, v] of await toHostTensors(optState)) host.set(k, v as HostTensor);
  await writeFileAtomic(path, encodeSafetensors(host, meta));
}

function readCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new UsageError(`checkpoint ${path} does not exist`);
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(path)));
  const model = new Map<string, E.Tensor>();
  const momentum = new Map<number, E.Tensor>();
  for (const [k, t] of tensors) {
    const tt = E.tensor(t.data, t.shape);
    if (k.startsWith('optimizer.momentum_buffer.')) momentum.set(Number(k.split('.').pop()), tt);
    else model.set(k, tt);
  }
  if (!metadata.format || metadata.format !== 'densenet-webgpu-train-1') throw new UsageError(`${path} is not a checkpoint written by densenet-bench train`);
  return { model, momentum, meta: metadata };
}

function buildFromMeta(meta: Record<string, string>, memoryEfficient: boolean): DenseNet {
  return new DenseNet({ growthRate: Number(meta.growth), arch: meta.arch.split(',').map(Number), memoryEfficient });
}

export interface EpochLog {
  epoch: number;
  loss: number;
  trainAcc: number;
  testAcc: number;
  seconds: number;
  imagesPerSec: number;
}

export async function runTrain(f: Flags, rep: Reporter): Promise<void> {
  const c = trainConfig(f);
  rep.progress(`reading Fashion-MNIST from ${c.data}...`);
  const data = loadFashionMnist(c.data);
  mkdirSync(c.out, { recursive: true });
  E.manualSeed(c.seed);
  let model = new DenseNet({ growthRate: c.growth, arch: c.arch, memoryEfficient: c.memoryEfficient });
  const nTrain = Math.min(c.limit, data.train.count);
  const perEpoch = Math.ceil(nTrain / c.batch);
  let startEpoch = 0;
  let startStep = 0;
  let resumed: Checkpoint | null = null;
  const meta = (epoch: number, step: number): Record<string, string> => ({
    format: 'densenet-webgpu-train-1', model: 'd2l', growth: String(c.growth), arch: c.arch.join(','), size: String(c.size),
    epoch: String(epoch), step: String(step), seed: String(c.seed), lr: String(c.lr), batch: String(c.batch),
  });
  if (c.resume) {
    resumed = readCheckpoint(c.resume);
    if (resumed.meta.growth !== String(c.growth) || resumed.meta.arch !== c.arch.join(',')) {
      model.dispose();
      model = buildFromMeta(resumed.meta, c.memoryEfficient);
    }
    startEpoch = Number(resumed.meta.epoch);
    startStep = Number(resumed.meta.step);
  }
  // Materialise the lazy layers with one small batch, then load or initialise.
  E.scope(() => void model.predict(makeBatch(data.train, [0], c.size).x));
  if (resumed) {
    model.loadStateDict(resumed.model);
    for (const t of resumed.model.values()) t.dispose();
  }
  const opt = new SGD(model.parameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay });
  if (resumed) for (const [i, b] of resumed.momentum) opt.state[i] = E.keep(b);

  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    rep.progress('\ninterrupted: writing a checkpoint after this step...');
  };
  process.on('SIGINT', onSigint);

  const logs: EpochLog[] = [];
  const curve: Array<{ epoch: number; loss: number; acc: number }> = [];
  const t0 = performance.now();
  let imagesSeen = 0;
  let lastLoss = NaN;
  let lastTrainAcc = NaN;
  let globalStep = startEpoch * perEpoch + startStep;
  let lastGood = c.resume ?? null;
  try {
    for (let epoch = startEpoch; epoch < c.epochs; epoch++) {
      const perm = new E.Generator(c.seed * 1000 + epoch).permutation(data.train.count).subarray(0, nTrain);
      const te = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
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
        const lv = await loss.item();
        const pred = argmaxRows(await logits.data(), 10);
        loss.dispose();
        logits.dispose();
        if (!Number.isFinite(lv)) {
          opt.zeroGrad();
          throw new Error(
            `the loss is ${lv} at epoch ${epoch + 1}, step ${step + 1} (global step ${globalStep}); stopping. ` +
              (lastGood ? `The last good checkpoint is ${lastGood}.` : 'No checkpoint was written yet.'),
          );
        }
        opt.step();
        globalStep++;
        lossSum += lv * idx.length;
        pred.forEach((p, i) => p === data.train.labels[idx[i]] && correct++);
        seen += idx.length;
        imagesSeen += idx.length;
        if ((step + 1) % c.logEvery === 0 || step + 1 === perEpoch) {
          const secs = (performance.now() - te) / 1000;
          const ips = seen / secs;
          const eta = (perEpoch - step - 1) * (c.batch / ips) + (c.epochs - epoch - 1) * (nTrain / ips);
          rep.progress(
            `epoch ${epoch + 1}/${c.epochs} batch ${step + 1}/${perEpoch} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(3)} ` +
              `${ips.toFixed(1)} img/s ETA ${formatSecs(eta)}`,
          );
          curve.push({ epoch: epoch + (step + 1) / perEpoch, loss: lossSum / seen, acc: correct / seen });
        }
        if (interrupted) {
          await saveCheckpoint(c.checkpoint, model, opt, meta(epoch, step + 1));
          rep.progress(`checkpoint written to ${c.checkpoint} (epoch ${epoch + 1}, step ${step + 1}); resume with --resume ${c.checkpoint}`);
          return;
        }
      }
      const secs = (performance.now() - te) / 1000;
      rep.progress(`epoch ${epoch + 1}: evaluating on the test set...`);
      const { accuracy } = await evaluate(model, data.test, c.size, 256, c.testLimit);
      lastLoss = lossSum / Math.max(seen, 1);
      lastTrainAcc = correct / Math.max(seen, 1);
      logs.push({ epoch: epoch + 1, loss: lastLoss, trainAcc: lastTrainAcc, testAcc: accuracy, seconds: secs, imagesPerSec: seen / secs });
      curve.push({ epoch: epoch + 1, loss: lastLoss, acc: lastTrainAcc });
      rep.progress(`epoch ${epoch + 1}: loss ${lastLoss.toFixed(4)}, train acc ${lastTrainAcc.toFixed(3)}, test acc ${accuracy.toFixed(3)}, ${(seen / secs).toFixed(1)} img/s`);
      await saveCheckpoint(c.checkpoint, model, opt, meta(epoch + 1, 0));
      lastGood = c.checkpoint;
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  const total = (performance.now() - t0) / 1000;
  const last = logs[logs.length - 1];
  const summary = {
    summary: true,
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
  ]);
  rep.text(`log: ${join(c.out, 'train-log.json')}, curves: ${join(c.out, 'curves.svg')}, checkpoint: ${c.checkpoint}`);
  opt.dispose();
  model.dispose();
}

export async function runEval(f: Flags, rep: Reporter): Promise<void> {
  const path = f.checkpoint as string | undefined;
  if (!path) throw new UsageError('eval needs --checkpoint FILE');
  const ck = readCheckpoint(path);
  const data = loadFashionMnist((f.data as string) ?? DEFAULT_DATA_DIR);
  const size = Number(ck.meta.size);
  const model = buildFromMeta(ck.meta, true);
  E.scope(() => void model.predict(makeBatch(data.test, [0], size).x));
  model.loadStateDict(ck.model);
  const { accuracy, confusion } = await evaluate(model, data.test, size, (f.batch as number) ?? 256, (f['test-limit'] as number) ?? Infinity);
  rep.text(`test accuracy: ${accuracy.toFixed(4)} (${path}, epoch ${ck.meta.epoch}, input ${size}x${size})\n`);
  rep.table(
    confusion.map((row, i) => {
      const r: Record<string, string | number> = { true: CLASS_NAMES[i] };
      row.forEach((v, j) => (r[`p${j}`] = v));
      return r;
    }),
    [['true', 'true \\ predicted'], ...CLASS_NAMES.map((n, j) => [`p${j}`, n.split('/')[0].slice(0, 8)] as [string, string])],
  );
  if (rep.json) console.log(JSON.stringify({ accuracy, confusion, classes: CLASS_NAMES }));
  model.dispose();
}

function formatSecs(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${Math.round(s % 60)}s` : `${s.toFixed(0)}s`;
}

/** Loss and accuracy against epochs, in the manner of d2l's training plot. */
export function curvesSvg(curve: Array<{ epoch: number; loss: number; acc: number }>, logs: EpochLog[]): string {
  const W = 560;
  const H = 360;
  const m = { l: 50, r: 20, t: 20, b: 40 };
  const xmax = Math.max(1, ...curve.map((p) => p.epoch));
  const ymax = Math.max(1, ...curve.map((p) => p.loss)) * 1.05;
  const px = (x: number) => m.l + ((W - m.l - m.r) * x) / xmax;
  const py = (y: number) => H - m.b - ((H - m.t - m.b) * y) / ymax;
  const line = (pts: Array<[number, number]>, color: string, dash = '') =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ''} points="${pts.map(([x, y]) => `${px(x)},${py(y)}`).join(' ')}"/>`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">epoch</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (ymax * i) / 4;
    parts.push(`<text x="${m.l - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(2)}</text><line x1="${m.l}" y1="${py(y)}" x2="${W - m.r}" y2="${py(y)}" stroke="#eee"/>`);
  }
  for (let e = 0; e <= xmax; e++) parts.push(`<text x="${px(e)}" y="${H - m.b + 16}" text-anchor="middle">${e}</text>`);
  parts.push(line(curve.map((p) => [p.epoch, p.loss]), '#1f77b4'));
  parts.push(line(curve.map((p) => [p.epoch, p.acc]), '#9467bd', '6 3'));
  if (logs.length) parts.push(line(logs.map((l) => [l.epoch, l.testAcc]), '#2ca02c', '2 3'));
  logs.forEach((l) => parts.push(`<circle cx="${px(l.epoch)}" cy="${py(l.testAcc)}" r="3" fill="#2ca02c"/>`));
  [['train loss', '#1f77b4'], ['train acc', '#9467bd'], ['test acc', '#2ca02c']].forEach(([n, col], i) =>
    parts.push(`<rect x="${W - m.r - 110}" y="${m.t + 8 + i * 16}" width="14" height="3" fill="${col}"/><text x="${W - m.r - 90}" y="${m.t + 13 + i * 16}">${n}</text>`),
  );
  parts.push('</svg>');
  return parts.join('\n');
}
