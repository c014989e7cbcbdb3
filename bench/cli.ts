#!/usr/bin/env node
// densenet-bench: the benchmark harness. Commands:
//   speed (default)  images/s, ms per step, GFLOP/s, GPU bytes; naive against memory-efficient blocks
//   kernels          each kernel at the model's shapes (GFLOP/s, GB/s) and where a training step's time goes
//   memory           peak bytes of a training step against depth or batch, naive against memory-efficient
//   matmul           the matmul kernels at N x N x N
//   train / eval     Fashion-MNIST training and evaluation (see bench/train.ts)
//   compare-tfjs     the seed's DenseNet on TensorFlow.js's WebGPU backend against ours (bench/tfjs.ts)
//   report           everything above that describes the adapter, into report.json/.md (bench/adapter_report.ts)
// Errors in the arguments or the input size print one line and exit with code 2.

import * as E from '../engine/index.js';
import { UsageError, oneOf, parseFlags, parseSize } from './args.js';
import { MODEL_NAMES, defaultChannels, type ModelName } from './models.js';
import { Reporter } from './report.js';
import { InputError, runSpeed } from './speed.js';
import { runKernels } from './kernels.js';
import { runMemory } from './memory.js';
import { timeIt } from './timing.js';
import { runTrain, runEval, TRAIN_FLAGS, EVAL_FLAGS } from './train.js';
import { MissingTfjsError, checkD2lInput, checkTfjsInstalled, runCompareTfjs } from './tfjs.js';
import { runReport } from './adapter_report.js';

const VERSION = '0.1.0';

const USAGE = `usage: densenet-bench [command] [flags]
commands:
  speed    [--model d2l|densenet121|densenet169|densenet201|densenet264] [--batch N] [--size HxW] [--channels C]
           [--mode forward|train|both] [--warmup N] [--iters N] [--memory-efficient on|off|both]   (the default)
  kernels  [--model ...] [--batch N] [--size HxW] [--memory-efficient on|off]
           per-kernel GFLOP/s and GB/s at the model's shapes, and a training step's GPU time by kernel
  memory   [--model d2l] [--vary depth|batch] [--batch N] [--size HxW] [--plot FILE.svg]
  matmul   [--size N]
  train    Fashion-MNIST: [--epochs N] [--batch N] [--lr X] [--size N] [--limit N] ... (see README)
  eval     --checkpoint FILE [--data DIR] [--size N]
  compare-tfjs [--batch N] [--size HxW] [--warmup N] [--iters N]
           the seed's DenseNet on TensorFlow.js's WebGPU backend and ours, one table (needs
           npm install --no-save @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu)
  report   --out DIR [--quick]
           self-checks, speed, kernels and memory on this adapter into DIR/report.json, report.md and SVG plots
           (--quick: small sizes only)
common flags: --json (one JSON object per result line on stdout), --help`;

const SPEED_FLAGS = {
  model: 'string', batch: 'int', size: 'string', channels: 'int', mode: 'string', warmup: 'int', iters: 'int',
  'memory-efficient': 'string', json: 'bool', help: 'bool',
} as const;

function header(g: E.Gpu, rep: Reporter): void {
  const f = g.features;
  const a = g.adapter;
  const info = {
    engine: `densenet-webgpu ${VERSION}`,
    adapter: `${a.vendor} / ${a.architecture} / ${a.description}${a.isFallbackAdapter ? ' (software adapter)' : ''}`,
    features: `subgroups=${f.subgroups}${f.subgroups ? ` (size ${f.subgroupMinSize}-${f.subgroupMaxSize})` : ''} timestamp-query=${f.timestampQuery} shader-f16=${f.shaderF16}`,
    limits: `maxBufferSize=${E.formatBytes(g.limits.maxBufferSize)} maxStorageBufferBindingSize=${E.formatBytes(g.limits.maxStorageBufferBindingSize)} maxComputeInvocationsPerWorkgroup=${g.limits.maxComputeInvocationsPerWorkgroup}`,
  };
  if (rep.json) console.log(JSON.stringify({ header: info }));
  else for (const [k, v] of Object.entries(info)) console.log(`${k.padEnd(9)} ${v}`);
  rep.text('');
}

function modelFlags(f: Record<string, unknown>) {
  const model = oneOf('--model', (f.model as string) ?? 'd2l', MODEL_NAMES) as ModelName;
  const batch = (f.batch as number) ?? 8;
  if (batch < 1) throw new UsageError('--batch must be at least 1');
  const size = parseSize((f.size as string) ?? (model === 'd2l' ? '64' : '224'));
  const channels = (f.channels as number) ?? defaultChannels(model);
  if (channels < 1) throw new UsageError('--channels must be at least 1');
  return { model, batch, size, channels };
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv.shift()! : 'speed';
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const known = ['speed', 'kernels', 'memory', 'matmul', 'train', 'eval', 'compare-tfjs', 'report'];
  if (!known.includes(command)) throw new UsageError(`unknown command '${command}'`);

  // Parse everything before touching the GPU, so bad flags fail fast.
  let run: (rep: Reporter) => Promise<unknown>;
  let json = false;
  if (command === 'speed') {
    const f = parseFlags(argv, SPEED_FLAGS, 'speed');
    json = !!f.json;
    const m = modelFlags(f);
    const mode = oneOf('--mode', (f.mode as string) ?? 'both', ['forward', 'train', 'both'] as const);
    const eff = oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'both', ['on', 'off', 'both'] as const);
    run = (rep) =>
      runSpeed(
        {
          ...m,
          modes: mode === 'both' ? ['forward', 'train'] : [mode],
          warmup: (f.warmup as number) ?? 1,
          iters: Math.max(1, (f.iters as number) ?? 5),
          memoryEfficient: eff === 'both' ? [false, true] : [eff === 'on'],
        },
        rep,
      );
  } else if (command === 'kernels') {
    const f = parseFlags(argv, { model: 'string', batch: 'int', size: 'string', channels: 'int', json: 'bool', iters: 'int', 'memory-efficient': 'string' }, 'kernels');
    json = !!f.json;
    const m = modelFlags({ ...f, size: f.size ?? (f.model && f.model !== 'd2l' ? '224' : '96') });
    const eff = oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'on', ['on', 'off'] as const) === 'on';
    run = (rep) => runKernels({ ...m, iters: (f.iters as number) ?? 5, memoryEfficient: eff }, rep);
  } else if (command === 'memory') {
    const f = parseFlags(argv, { model: 'string', vary: 'string', batch: 'int', size: 'string', channels: 'int', plot: 'string', json: 'bool' }, 'memory');
    json = !!f.json;
    const vary = oneOf('--vary', (f.vary as string) ?? 'depth', ['depth', 'batch'] as const);
    const m = modelFlags({ ...f, size: f.size ?? '32' });
    run = (rep) => runMemory({ ...m, vary, plot: (f.plot as string) ?? 'memory.svg' }, rep);
  } else if (command === 'matmul') {
    const f = parseFlags(argv, { size: 'int', json: 'bool' }, 'matmul');
    json = !!f.json;
    const n = (f.size as number) ?? 512;
    if (n < 1) throw new UsageError('--size must be at least 1');
    run = (rep) => matmulBench(n, rep);
  } else if (command === 'compare-tfjs') {
    const f = parseFlags(argv, { batch: 'int', size: 'string', warmup: 'int', iters: 'int', json: 'bool' }, 'compare-tfjs');
    json = !!f.json;
    const m = modelFlags({ batch: f.batch, size: f.size });
    checkD2lInput(m.size);
    checkTfjsInstalled();
    run = (rep) => runCompareTfjs({ batch: m.batch, size: m.size, warmup: (f.warmup as number) ?? 1, iters: Math.max(1, (f.iters as number) ?? 3) }, rep);
  } else if (command === 'report') {
    const f = parseFlags(argv, { out: 'string', quick: 'bool' }, 'report');
    if (!f.out) throw new UsageError('report: --out DIR is required');
    run = async () => void (await runReport({ out: f.out as string, quick: !!f.quick }));
  } else if (command === 'train') {
    const f = parseFlags(argv, TRAIN_FLAGS, 'train');
    json = !!f.json;
    run = (rep) => runTrain(f, rep);
  } else {
    const f = parseFlags(argv, EVAL_FLAGS, 'eval');
    json = !!f.json;
    run = (rep) => runEval(f, rep);
  }
  const rep = new Reporter(json);
  // Unquantised timestamps (Dawn rounds them to about 65 us otherwise), for per-kernel GPU times.
  const g = await E.init({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
  header(g, rep);
  await run(rep);
}

async function matmulBench(n: number, rep: Reporter): Promise<void> {
  const a = E.randn([n, n]);
  const b = E.randn([n, n]);
  const kernels = (['sg8', 'quad', 'tiled'] as const).filter((k) => E.matmulKernelSupported(k, E.gpu().features));
  const rows = [];
  for (const k of kernels) {
    E.forceMatmulKernel(k);
    rep.progress(`matmul ${k}...`);
    const t = await timeIt(() => E.scope(() => void E.matmul(a, b)), { warmup: 1, iters: 7, repeat: 4 });
    rows.push({ kernel: k, shape: `${n}x${n}x${n}`, ms: t.medianMs, gflops: (2 * n ** 3) / (t.medianMs * 1e6) });
  }
  E.forceMatmulKernel(null);
  rep.table(rows, [['kernel', 'kernel'], ['shape', 'M x N x K'], ['ms', 'ms (median)', (v) => (v as number).toFixed(2)], ['gflops', 'GFLOP/s', (v) => (v as number).toFixed(1)]]);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    const usage = e instanceof UsageError || e instanceof InputError || e instanceof MissingTfjsError || /exceeds the device limit|out of memory/.test(String(e?.message));
    console.error(`densenet-bench: ${(e as Error).message}${e instanceof UsageError ? ' (see --help)' : ''}`);
    process.exit(usage ? 2 : 1);
  },
);
