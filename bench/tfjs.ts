// `densenet-bench compare-tfjs`: the seed's DenseNet (models/d2l.ts) written in TensorFlow.js ops and run on
// tfjs's WebGPU backend over the same Dawn (npm `webgpu`) adapter, then our speed benchmark (naive and
// memory-efficient blocks) at the same batch and input in the same process, in one table.
//
// TensorFlow.js is an OPTIONAL dependency, kept out of package.json; install it without saving with
//   npm install --no-save @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu
// It is loaded with dynamic imports of variable specifiers, so neither the type-check nor the esbuild bundle
// needs it. tfjs runs first (its own device, made from its own dawn.node GPU object, which this module holds
// for the process's life: dawn.node tears its instance down when that object is garbage-collected); its
// tensors, variables and backend are disposed before ours runs.
//
// The tfjs model, NHWC (tfjs's conv2d layout): stem 7x7/2 conv 64 (pad 3) + BN + ReLU + 3x3/2 max pool (pad 1);
// 4 dense blocks of 4 x (BN, ReLU, 3x3 conv pad 1 to 32 channels) with channel concatenation; transitions
// BN, ReLU, 1x1 conv to half the channels, 2x2/2 average pool; BN, ReLU, global average pool, dense to 10.
// Convolutions and the dense layer have biases; weights Xavier-uniform (d2l's init_cnn). Training-mode BN
// uses batch statistics (tf.moments) and updates running mean/variance (momentum 0.1, unbiased variance, as
// PyTorch and our engine do); forward mode is inference with the running statistics, as our `predict`.
// A training step: forward, softmax cross-entropy (mean over the batch), gradients and SGD(0.1) through
// optimizer.minimize, then a read of the loss so the step's GPU work is inside the timing.

import { createRequire } from 'node:module';
import { Reporter, fixed, mib, type Row } from './report.js';
import { runSpeed } from './speed.js';
import { InputError } from './args.js';
import { median } from './timing.js';

export const TFJS_INSTALL = 'npm install --no-save @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu';

/** TensorFlow.js is not installed (the CLI exits with code 2). */
export class MissingTfjsError extends Error {}

export interface CompareOptions {
  batch: number;
  size: [number, number];
  warmup: number;
  iters: number;
}

// tfjs is optional and untyped here on purpose: the project type-checks and builds without it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tf = any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TfTensor = any;

// The dawn.node GPU object tfjs's backend requests its adapter from; held for the process's life.
let tfjsGpu: unknown = null;

function resolvable(name: string): boolean {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Throws MissingTfjsError unless both optional packages resolve (checked before any GPU work). */
export function checkTfjsInstalled(): void {
  const missing = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu'].filter((n) => !resolvable(n));
  if (missing.length) throw new MissingTfjsError(`compare-tfjs needs ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed; run: ${TFJS_INSTALL}`);
}

/** Checks that the input survives the seed's DenseNet: stem /4, then three 2x2 average pools. */
export function checkD2lInput(size: [number, number]): void {
  for (const s of size) {
    const stem = Math.floor((s + 6 - 7) / 2) + 1;
    const pooled = Math.floor((stem + 2 - 3) / 2) + 1;
    if (pooled < 8) throw new InputError(`input 1x${size.join('x')} is too small for d2l (the shortest side must be at least 29)`);
  }
}

async function importLoose(name: string): Promise<Tf> {
  const m = await import(/* @vite-ignore */ name);
  return m.default && typeof m.default === 'object' && Object.keys(m.default).length > Object.keys(m).length ? m.default : m;
}

/**
 * Loads @tensorflow/tfjs (tfjs-core alone registers no gradients), defines navigator.gpu from the `webgpu`
 * package, then loads and selects the WebGPU backend.
 */
export async function loadTfjs(): Promise<{ tf: Tf; version: string }> {
  checkTfjsInstalled();
  const tf = await importLoose('@tensorflow/tfjs');
  const dawn = (await importLoose('webgpu')) as { create(flags: string[]): unknown; globals: Record<string, unknown> };
  // tfjs reads GPUBufferUsage, GPUMapMode, ... as globals, and navigator.gpu when its backend module loads.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  tfjsGpu = dawn.create([]);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: { gpu: tfjsGpu }, configurable: true, writable: true });
  else Object.defineProperty(g.navigator, 'gpu', { value: tfjsGpu, configurable: true, writable: true });
  await importLoose('@tensorflow/tfjs-backend-webgpu');
  const ok = await tf.setBackend('webgpu');
  if (!ok || tf.getBackend() !== 'webgpu') throw new Error('compare-tfjs: TensorFlow.js could not start its WebGPU backend on this adapter');
  await tf.ready();
  return { tf, version: String(tf.version?.tfjs ?? tf.version_core ?? '?') };
}

interface Bn {
  gamma: TfTensor;
  beta: TfTensor;
  mean: TfTensor;
  variance: TfTensor;
}
interface Conv {
  w: TfTensor;
  b: TfTensor;
}

/** The seed's DenseNet in tfjs variables; returns the forward function and everything to dispose. */
export function buildTfjsDenseNet(tf: Tf, numClasses = 10) {
  const vars: TfTensor[] = [];
  let seed = 1;
  // A variable from an initial value, which is then disposed (the variable holds its own reference).
  const variable = (init: TfTensor, trainable = true) => {
    const v = tf.variable(init, trainable);
    init.dispose();
    vars.push(v);
    return v;
  };
  const conv = (k: number, cin: number, cout: number): Conv => {
    const a = Math.sqrt(6 / ((cin + cout) * k * k));
    return { w: variable(tf.randomUniform([k, k, cin, cout], -a, a, 'float32', seed++)), b: variable(tf.zeros([cout])) };
  };
  const bn = (c: number): Bn => ({
    gamma: variable(tf.ones([c])),
    beta: variable(tf.zeros([c])),
    mean: variable(tf.zeros([c]), false),
    variance: variable(tf.ones([c]), false),
  });

  const stem = { conv: conv(7, 1, 64), bn: bn(64) };
  let c = 64;
  const blocks: Array<{ layers: Array<{ bn: Bn; conv: Conv }>; trans: { bn: Bn; conv: Conv } | null }> = [];
  for (let i = 0; i < 4; i++) {
    const layers = [];
    for (let j = 0; j < 4; j++) {
      layers.push({ bn: bn(c), conv: conv(3, c, 32) });
      c += 32;
    }
    let trans = null;
    if (i !== 3) {
      trans = { bn: bn(c), conv: conv(1, c, Math.floor(c / 2)) };
      c = Math.floor(c / 2);
    }
    blocks.push({ layers, trans });
  }
  const last = bn(c);
  const a = Math.sqrt(6 / (c + numClasses));
  const fc = { w: variable(tf.randomUniform([c, numClasses], -a, a, 'float32', seed++)), b: variable(tf.zeros([numClasses])) };

  const eps = 1e-5;
  const momentum = 0.1;
  const forward = (x: TfTensor, training: boolean): TfTensor => {
    const norm = (h: TfTensor, p: Bn) => {
      if (!training) return tf.batchNorm(h, p.mean, p.variance, p.beta, p.gamma, eps);
      const { mean, variance } = tf.moments(h, [0, 1, 2]);
      const n = h.shape[0] * h.shape[1] * h.shape[2];
      p.mean.assign(tf.add(tf.mul(p.mean, 1 - momentum), tf.mul(mean, momentum)));
      p.variance.assign(tf.add(tf.mul(p.variance, 1 - momentum), tf.mul(variance, (momentum * n) / Math.max(1, n - 1))));
      return tf.batchNorm(h, mean, variance, p.beta, p.gamma, eps);
    };
    const convAdd = (h: TfTensor, p: Conv, stride: number, pad: number) => tf.add(tf.conv2d(h, p.w, stride, pad), p.b);
    let h = convAdd(x, stem.conv, 2, 3);
    h = tf.maxPool(tf.relu(norm(h, stem.bn)), 3, 2, 1);
    for (const blk of blocks) {
      for (const l of blk.layers) h = tf.concat([h, convAdd(tf.relu(norm(h, l.bn)), l.conv, 1, 1)], 3);
      if (blk.trans) h = tf.avgPool(convAdd(tf.relu(norm(h, blk.trans.bn)), blk.trans.conv, 1, 0), 2, 2, 'valid');
    }
    h = tf.mean(tf.relu(norm(h, last)), [1, 2]);
    return tf.add(tf.matMul(h, fc.w), fc.b);
  };
  return { forward, vars, trainable: vars.filter((v) => v.trainable) };
}

/** Times tfjs forward and train steps; peak = the largest numBytesInGPU (tf.memory()) within one step. */
async function runTfjs(o: CompareOptions, rep: Reporter): Promise<{ rows: Row[]; version: string; adapter: string }> {
  rep.progress('[tfjs] loading TensorFlow.js and starting its WebGPU backend...');
  const { tf, version } = await loadTfjs();
  const backend = tf.backend();
  const info = backend.adapterInfo ?? {};
  const adapter = [info.vendor, info.architecture].filter(Boolean).join(' / ') || 'unknown';

  // numBytesInGPU is the backend's bufferManager.numBytesUsed; sample it at every buffer acquisition so the
  // peak inside a step is exact (tf.memory() alone only shows it between steps).
  let peak = 0;
  const gpuBytes = () => Number(tf.memory().numBytesInGPU ?? 0);
  const bm = backend.bufferManager;
  let exactPeak = false;
  if (bm && typeof bm.acquireBuffer === 'function' && typeof bm.numBytesUsed === 'number') {
    const acquire = bm.acquireBuffer.bind(bm);
    bm.acquireBuffer = (...args: unknown[]) => {
      const r = acquire(...args);
      peak = Math.max(peak, bm.numBytesUsed);
      return r;
    };
    exactPeak = true;
  }

  const [H, W] = o.size;
  const net = buildTfjsDenseNet(tf);
  const x = tf.randomNormal([o.batch, H, W, 1], 0, 1, 'float32', 7);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: o.batch }, (_, i) => (i * 7) % 10), 'int32'), 10));
  const opt = tf.train.sgd(0.1);
  const steps = {
    forward: async () => {
      const y = tf.tidy(() => net.forward(x, false));
      await y.data();
      y.dispose();
    },
    train: async () => {
      const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, net.forward(x, true)), true, net.trainable);
      await cost.data();
      cost.dispose();
    },
  };

  const rows: Row[] = [];
  try {
    for (const mode of ['forward', 'train'] as const) {
      const step = steps[mode];
      rep.progress(`[tfjs] ${mode}: warm-up (${o.warmup}, compiles tfjs's shaders)...`);
      for (let i = 0; i < Math.max(1, o.warmup); i++) await step();
      peak = gpuBytes();
      await step();
      peak = Math.max(peak, gpuBytes());
      const peakBytes = peak;
      const poolBytes = Number(tf.memory().numBytesAllocatedInGPU ?? 0);
      rep.progress(`[tfjs] ${mode}: timing ${o.iters} iterations...`);
      const samples: number[] = [];
      for (let i = 0; i < o.iters; i++) {
        const t0 = performance.now();
        await step();
        samples.push(performance.now() - t0);
      }
      const ms = median(samples);
      rows.push({
        engine: 'tfjs-webgpu',
        impl: 'tfjs',
        mode,
        batch: o.batch,
        size: `1x${H}x${W}`,
        ms,
        msMin: Math.min(...samples),
        msMax: Math.max(...samples),
        imgPerSec: (o.batch * 1000) / ms,
        peakBytes,
        poolBytes,
        peakMethod: exactPeak ? 'numBytesInGPU at every buffer acquisition' : 'tf.memory() before and after the step',
      });
    }
  } finally {
    x.dispose();
    labels.dispose();
    opt.dispose();
    for (const v of net.vars) v.dispose();
    tf.disposeVariables();
    const left = tf.memory().numTensors;
    if (left) rep.progress(`[tfjs] ${left} tensors still alive after disposal`);
    tf.removeBackend('webgpu'); // destroys its pooled GPU buffers before our engine runs
  }
  return { rows, version, adapter };
}

/** tfjs-webgpu first, then ours (naive and memory-efficient) at the same batch and input; one table. */
export async function runCompareTfjs(o: CompareOptions, rep: Reporter): Promise<Row[]> {
  checkD2lInput(o.size);
  const tfjs = await runTfjs(o, rep);
  rep.text(`tfjs     @tensorflow/tfjs ${tfjs.version} + tfjs-backend-webgpu, adapter ${tfjs.adapter} (its own device)`);

  // Our speed benchmark with its table suppressed: its rows go into the shared table below.
  const quiet = new (class extends Reporter {
    override table(): void {}
  })(rep.json);
  const ours = await runSpeed(
    { model: 'd2l', batch: o.batch, size: o.size, channels: 1, modes: ['forward', 'train'], warmup: o.warmup, iters: o.iters, memoryEfficient: [false, true] },
    quiet,
  );
  const tfMs = (mode: unknown) => tfjs.rows.find((r) => r.mode === mode)?.ms as number | undefined;
  const rows: Row[] = [
    ...tfjs.rows.map((r): Row => ({ ...r, vsTfjs: 1 })),
    ...ours.map((r) => {
      const t = tfMs(r.mode);
      return {
        engine: 'densenet-webgpu',
        impl: r.impl,
        mode: r.mode,
        batch: r.batch,
        size: r.size,
        ms: r.ms,
        msMin: r.msMin,
        msMax: r.msMax,
        imgPerSec: r.imgPerSec,
        peakBytes: r.peakBytes,
        poolBytes: null,
        vsTfjs: t ? t / (r.ms as number) : null,
      } as Row;
    }),
  ].sort((a, b) => (a.mode === b.mode ? 0 : a.mode === 'forward' ? -1 : 1));
  rep.table(rows, [
    ['engine', 'engine'],
    ['impl', 'blocks'],
    ['mode', 'mode'],
    ['batch', 'batch'],
    ['size', 'input'],
    ['ms', 'ms/step', fixed(1)],
    ['msMin', 'min', fixed(1)],
    ['msMax', 'max', fixed(1)],
    ['imgPerSec', 'img/s', fixed(1)],
    ['peakBytes', 'peak MiB', mib],
    ['poolBytes', 'pool MiB', (v) => (typeof v === 'number' ? mib(v) : '-')],
    ['vsTfjs', 'x tfjs', (v) => (typeof v === 'number' ? `${v.toFixed(1)}x` : '')],
  ]);
  rep.text(
    '\npeak MiB: the most GPU buffer bytes in use during one step (tfjs: tf.memory().numBytesInGPU, sampled at every ' +
      'buffer acquisition; ours: the pool\'s peak live bytes). pool MiB: tfjs\'s numBytesAllocatedInGPU after the ' +
      'step (its buffer cache). x tfjs: tfjs\'s ms/step over ours, same mode. Both engines on the same adapter, each ' +
      'with its own device, one after the other in this process.',
  );
  return rows;
}
