// `densenet-bench kernels`: every kernel at the shapes the chosen model uses (GFLOP/s for convolutions
// and matmul, GB/s for memory-bound kernels), timed with a queue sync around repeated dispatches; then
// where one training step's GPU time goes, kernel by kernel, from timestamp queries.

import * as E from '../engine/index.js';
import { SGD, crossEntropy, recordLayers, type LayerCall } from '../nn/index.js';
import type { ModelName } from './models.js';
import { Reporter, fixed, type Row } from './report.js';
import { prepare } from './speed.js';
import { median, timeIt } from './timing.js';

export interface KernelsOptions {
  model: ModelName;
  batch: number;
  size: [number, number];
  channels: number;
  iters: number;
  memoryEfficient: boolean;
}

const shapeStr = (s: readonly number[]) => s.join('x');
const x0 = (p: { x: E.Tensor }) => p.x;

/**
 * Median ms per call of `fn`, with enough calls between syncs (at least 3, and about 5 ms of work) that a
 * small kernel's time is its own rather than the submit-and-wait that ends each sample (about 0.2 ms).
 */
async function time(fn: () => void, iters: number): Promise<number> {
  const once = await timeIt(() => E.scope(fn), { warmup: 1, iters: 1, repeat: 3 });
  const repeat = Math.min(64, Math.max(3, Math.ceil(5 / Math.max(once.medianMs, 1e-3))));
  const t = await timeIt(() => E.scope(fn), { warmup: 0, iters, repeat });
  return t.medianMs;
}

/** Calls of a kernel timed back to back in one profile. */
const GPU_REPS = 8;

/**
 * GPU ms of one call of `fn` (the sum of its dispatches) from timestamp queries: GPU_REPS calls back to
 * back per profile, with a one-kernel call's repetitions in one timed pass (as in a step, where
 * dispatches share a pass, and not charged the pass's own timestamp cost each time), median over
 * `iters` profiles; null without the feature. Free of the submit, wait and JavaScript costs that wall
 * clock adds to a small kernel (the CLI asks Dawn for unquantised timestamps).
 */
async function gpuTime(fn: () => void, iters: number): Promise<number | null> {
  if (!E.canProfile()) return null;
  const per: number[] = [];
  for (let i = 0; i < Math.max(3, iters); i++) {
    E.startProfile({ merge: true });
    try {
      for (let r = 0; r < GPU_REPS; r++) E.scope(fn);
    } finally {
      per.push((await E.stopProfile()).reduce((a, k) => a + k.ms, 0) / GPU_REPS);
    }
  }
  return median(per);
}

/** One micro-benchmark row per distinct (kind, shapes) of the model's forward pass. */
async function micro(calls: LayerCall[], iters: number, rep: Reporter): Promise<Row[]> {
  const seen = new Set<string>();
  const rows: Row[] = [];
  for (const c of calls) {
    const key = JSON.stringify(c);
    if (seen.has(key)) continue;
    seen.add(key);
    const x = E.randn(c.input);
    try {
      if (c.kind === 'conv') {
        const w = E.randn(c.weight!);
        const dy = E.randn(c.output);
        const flops = 2 * c.output.reduce((a, b) => a * b, 1) * c.weight!.slice(1).reduce((a, b) => a * b, 1);
        const o = { stride: c.stride!, padding: c.padding! };
        const geom = `${shapeStr(c.input)} * ${shapeStr(c.weight!)} s${c.stride} p${c.padding}`;
        rep.progress(`conv ${geom}...`);
        // Each row names the kernel variant that ran it (engine/variants.ts).
        const kinds: Array<[string, () => void]> = [
          ['conv forward', () => void E.conv2dForwardRaw(x, w, o)],
          ['conv input grad', () => void E.conv2dInputGradRaw(dy, w, c.input, o)],
          ['conv weight grad', () => void E.conv2dWeightGradRaw(x, dy, c.weight!, o)],
        ];
        for (const [k, fn] of kinds) {
          const ms = await time(fn, iters);
          const variant = E.lastVariant('conv');
          const gpuMs = await gpuTime(fn, iters);
          rows.push({ section: 'kernel', kernel: `${k} [${variant}]`, shape: geom, ms, gflops: flops / (ms * 1e6), gpuMs, gpuGflops: gpuMs ? flops / (gpuMs * 1e6) : null, gbps: null });
        }
        w.dispose();
        dy.dispose();
      } else if (c.kind === 'linear') {
        const w = E.randn(c.weight!);
        const flops = 2 * c.output.reduce((a, b) => a * b, 1) * c.weight![1];
        const ms = await time(() => void E.linear(x, w), iters);
        rows.push({ section: 'kernel', kernel: `linear (matmul [${E.lastVariant('matmul')}])`, shape: `${shapeStr(c.input)} * ${shapeStr(c.weight!)}^T`, ms, gflops: flops / (ms * 1e6), gbps: null });
        w.dispose();
      } else {
        const bytesIn = 4 * c.input.reduce((a, b) => a * b, 1);
        const bytesOut = 4 * c.output.reduce((a, b) => a * b, 1);
        const C = c.input[1];
        let entries: Array<[string, () => void, number]> = [];
        if (c.kind === 'batchnorm') {
          const g = E.ones([C]);
          const b = E.zeros([C]);
          entries = [
            ['batchnorm stats', () => void E.batchNormStats(x), bytesIn],
            ['batchnorm (train, stats + apply)', () => void E.noGrad(() => E.batchNorm2d(x, g, b, null, null, { training: true })), 2 * bytesIn + bytesOut],
          ];
        } else if (c.kind === 'relu') entries = [['relu', () => void E.relu(x), bytesIn + bytesOut]];
        else if (c.kind === 'maxpool') entries = [['max pool', () => void E.maxPool2d(x, { kernel: c.kernel!, stride: c.stride, padding: c.padding }), bytesIn + bytesOut]];
        else if (c.kind === 'avgpool') entries = [['avg pool', () => void E.avgPool2d(x, { kernel: c.kernel!, stride: c.stride, padding: c.padding }), bytesIn + bytesOut]];
        else if (c.kind === 'adaptiveavgpool') entries = [['adaptive avg pool', () => void E.adaptiveAvgPool2d(x, [c.output[2], c.output[3]]), bytesIn + bytesOut]];
        for (const [k, fn, bytes] of entries) {
          rep.progress(`${k} ${shapeStr(c.input)}...`);
          const ms = await time(fn, iters);
          const variant = k.startsWith('batchnorm') ? ` [${E.lastVariant('bnStats')}]` : '';
          rows.push({ section: 'kernel', kernel: k + variant, shape: shapeStr(c.input), ms, gflops: null, gbps: bytes / (ms * 1e6) });
        }
      }
    } finally {
      x.dispose();
    }
  }
  return rows;
}

export async function runKernels(o: KernelsOptions, rep: Reporter): Promise<void> {
  rep.progress(`[${o.model}] building the model and compiling shaders...`);
  // The per-layer micro-benchmarks replay the naive path's layer shapes; the step profile uses the
  // chosen implementation.
  const naive = prepare(o, false);
  const calls = recordLayers(() => E.scope(() => void E.noGrad(() => naive.model(x0(naive)))));
  naive.model.dispose();
  naive.x.dispose();
  naive.labels.dispose();
  const { model, x, labels } = prepare(o, o.memoryEfficient);
  const rows = await micro(calls, o.iters, rep);
  rep.text(`Kernels at the shapes of ${o.model}, batch ${o.batch}, input ${o.channels}x${o.size.join('x')} (median wall clock around repeated dispatches; GPU: timestamp queries, median):`);
  rep.table(rows, [
    ['kernel', 'kernel'],
    ['shape', 'shape'],
    ['ms', 'ms', fixed(3)],
    ['gflops', 'GFLOP/s', fixed(1)],
    ['gpuMs', 'GPU ms', fixed(3)],
    ['gpuGflops', 'GPU GFLOP/s', fixed(1)],
    ['gbps', 'GB/s', fixed(2)],
  ]);

  const opt = new SGD(model.parameters(), { lr: 0.1 });
  const step = () =>
    E.scope(() => {
      opt.zeroGrad();
      const loss = crossEntropy(model(x), labels);
      loss.backward();
      opt.step();
    });
  step();
  await E.sync();
  if (!E.canProfile()) {
    rep.text('\nThis adapter has no timestamp-query feature: the per-kernel breakdown of a training step is skipped.');
  } else {
    rep.progress('profiling one training step with timestamp queries...');
    E.startProfile();
    step();
    const times = await E.stopProfile();
    const total = times.reduce((s, t) => s + t.ms, 0);
    rep.text(`\nOne training step (${o.model}, ${o.memoryEfficient ? 'memory-efficient' : 'naive'} blocks, batch ${o.batch}): GPU time by kernel from timestamp queries, ${total.toFixed(1)} ms in all:`);
    rep.table(
      times.map((t) => ({ section: 'step', kernel: t.kernel, count: t.count, ms: t.ms, share: (100 * t.ms) / total })),
      [['kernel', 'kernel'], ['count', 'dispatches'], ['ms', 'ms', fixed(2)], ['share', '%', fixed(1)]],
    );
  }
  opt.zeroGrad();
  opt.dispose();
  model.dispose();
  x.dispose();
  labels.dispose();
}
