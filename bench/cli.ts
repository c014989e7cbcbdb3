#!/usr/bin/env node
// densenet-bench: the benchmark harness. Commands:
//   speed (default)  images/s, ms per step, GFLOP/s, GPU bytes; naive against memory-efficient blocks
//   kernels          each kernel at the model's shapes (GFLOP/s, GB/s) and where a training step's time goes
//   memory           peak bytes of a training step against depth or batch, naive against memory-efficient
//   matmul           the matmul kernels at N x N x N
//   tune             every kernel variant at a model's shapes; the measured choice and its gain (bench/tune.ts)
//   train / eval     Fashion-MNIST training and evaluation (see bench/train.ts)
//   compare-tfjs     the seed's DenseNet on TensorFlow.js's WebGPU backend against ours (bench/tfjs.ts)
//   compare-pytorch  the seed's DenseNet training step against PyTorch on the CPU, alternated (bench/pytorch.ts)
//   report           everything above that describes the adapter, into report.json/.md (bench/adapter_report.ts)
// One table (COMMANDS) holds each command's flags, which both the parser and `COMMAND --help` read, and
// a plan() that checks the flags and input files on the host; only then is the GPU initialised.
// Errors in the arguments or the input print one line and exit with code 2.

import * as E from '../engine/index.js';
import { COMMON_FLAGS, InputError, UsageError, helpText, intFlag, oneOf, parseBytes, parseFlags, parseSize, type FlagSpec, type Flags } from './args.js';
import { MODEL_NAMES, defaultChannels, type ModelName } from './models.js';
import { Reporter } from './report.js';
import { runSpeed } from './speed.js';
import { runKernels } from './kernels.js';
import { runTune } from './tune.js';
import { runMemory } from './memory.js';
import { timeIt } from './timing.js';
import { runTrain, runEval, planTrain, planEval, TRAIN_FLAGS, EVAL_FLAGS, SIGNAL_EXIT } from './train.js';
import { MissingTfjsError, checkD2lInput, checkTfjsInstalled, runCompareTfjs } from './tfjs.js';
import { runReport } from './adapter_report.js';
import { checkPytorch, peerScript, runComparePytorch } from './pytorch.js';
import { runAsFilteredChild } from './dawn_stderr.js';
import { availableParallelism } from 'node:os';

/** The package version (package.json's; a test keeps them equal). */
export const VERSION = '0.1.0';

const PROGRAM = 'densenet-bench';

const MODEL_FLAGS = {
  model: { kind: 'string', help: `NAME: ${MODEL_NAMES.join('|')} (default d2l)` },
  batch: { kind: 'int', help: 'N: images per step (default 8)' },
  size: { kind: 'string', help: 'HxW: input size, or N for NxN (default 64 for d2l, 224 for the others)' },
  channels: { kind: 'int', help: 'C: input channels (default 1 for d2l, 3 for the others)' },
} as const satisfies FlagSpec;

const PRECISION_FLAG = {
  precision: { kind: 'string', help: "fp32|mixed|both: float32 activations, float16 activations (GradScaler in training), or both side by side (default both; fp32 only, with a notice, on an adapter without shader-f16)" },
} as const satisfies FlagSpec;

/** The --precision flag's list (default both). */
function precisionFlag(f: Flags): E.Precision[] {
  const p = oneOf('--precision', (f.precision as string) ?? 'both', ['fp32', 'mixed', 'both'] as const);
  return p === 'both' ? ['fp32', 'mixed'] : [p];
}

/** What a command does once its flags are checked: runs on the GPU, returns an exit code (or nothing for 0). */
type Run = (rep: Reporter) => Promise<number | void>;

interface Command {
  summary: string;
  flags: FlagSpec;
  /** Checks the flags (and any input files) on the host, before the GPU is touched. */
  plan(f: Flags): Run;
}

function modelFlags(f: Flags, defaultSize?: string) {
  const model = oneOf('--model', (f.model as string) ?? 'd2l', MODEL_NAMES) as ModelName;
  const batch = intFlag(f, 'batch', 8);
  const size = parseSize((f.size as string) ?? defaultSize ?? (model === 'd2l' ? '64' : '224'));
  const channels = intFlag(f, 'channels', defaultChannels(model));
  return { model, batch, size, channels };
}

const COMMANDS: Record<string, Command> = {
  speed: {
    summary: 'images/s, ms per step, GFLOP/s and peak GPU bytes; naive against memory-efficient dense blocks (the default command)',
    flags: {
      ...MODEL_FLAGS,
      mode: { kind: 'string', help: 'forward|train|both: what to time (default both)' },
      warmup: { kind: 'int', help: 'N: untimed steps first (default 1)' },
      iters: { kind: 'int', help: 'N: timed steps, at least 1 (default 5)' },
      'memory-efficient': { kind: 'string', help: 'on|off|both: which dense-block implementation (default both)' },
      tune: { kind: 'string', help: 'on|off|both: kernel tuning (default on, or off with DENSENET_TUNE=off); both: timed interleaved, with the tuned/untuned ratio' },
      ...PRECISION_FLAG,
      ...COMMON_FLAGS,
    },
    plan(f) {
      const m = modelFlags(f);
      const mode = oneOf('--mode', (f.mode as string) ?? 'both', ['forward', 'train', 'both'] as const);
      const eff = oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'both', ['on', 'off', 'both'] as const);
      const warmup = intFlag(f, 'warmup', 1, 0);
      const iters = intFlag(f, 'iters', 5);
      const envTune = process.env.DENSENET_TUNE;
      if (envTune) oneOf('DENSENET_TUNE', envTune, ['off', 'cached', 'on'] as const);
      const tune = oneOf('--tune', (f.tune as string) ?? (envTune === 'off' ? 'off' : 'on'), ['on', 'off', 'both'] as const);
      const precision = precisionFlag(f);
      return (rep) =>
        runSpeed(
          {
            ...m, modes: mode === 'both' ? ['forward', 'train'] : [mode], warmup, iters,
            memoryEfficient: eff === 'both' ? [false, true] : [eff === 'on'], tune: tune === 'both' ? ['off', 'on'] : [tune], precision,
          },
          rep,
        ).then(() => undefined);
    },
  },
  tune: {
    summary: "measure every kernel variant at the shapes of one training step; per shape each candidate's GFLOP/s, the choice and its gain over the heuristic (saved in the tuning cache)",
    flags: { ...MODEL_FLAGS, ...COMMON_FLAGS },
    plan(f) {
      const m = modelFlags(f);
      return (rep) => runTune(m, rep).then(() => undefined);
    },
  },
  kernels: {
    summary: "each kernel at the model's shapes (GFLOP/s, GB/s) and where a training step's GPU time goes",
    flags: {
      ...MODEL_FLAGS,
      size: { kind: 'string', help: 'HxW: input size, or N for NxN (default 96 for d2l, 224 for the others)' },
      iters: { kind: 'int', help: 'N: timed repetitions of each kernel (default 5)' },
      'memory-efficient': { kind: 'string', help: 'on|off: which dense-block implementation (default on)' },
      ...COMMON_FLAGS,
    },
    plan(f) {
      const m = modelFlags(f, f.model && f.model !== 'd2l' ? '224' : '96');
      const eff = oneOf('--memory-efficient', (f['memory-efficient'] as string) ?? 'on', ['on', 'off'] as const) === 'on';
      const iters = intFlag(f, 'iters', 5);
      return (rep) => runKernels({ ...m, iters, memoryEfficient: eff }, rep);
    },
  },
  memory: {
    summary: 'peak GPU bytes of a training step against depth or batch, naive against memory-efficient; a table and an SVG plot',
    flags: {
      ...MODEL_FLAGS,
      size: { kind: 'string', help: 'HxW: input size, or N for NxN (default 32)' },
      vary: { kind: 'string', help: 'depth|batch: one dense block of 4-32 layers, or the whole model at batch 1-16 (default depth)' },
      plot: { kind: 'string', help: 'FILE: where the SVG plot goes (default memory.svg)' },
      ...PRECISION_FLAG,
      ...COMMON_FLAGS,
    },
    plan(f) {
      const vary = oneOf('--vary', (f.vary as string) ?? 'depth', ['depth', 'batch'] as const);
      const m = modelFlags(f, '32');
      const precision = precisionFlag(f);
      return (rep) => runMemory({ ...m, vary, plot: (f.plot as string) ?? 'memory.svg', precision }, rep);
    },
  },
  matmul: {
    summary: 'the matmul kernels at N x N x N',
    flags: { size: { kind: 'int', help: 'N: the matrix size (default 512)' }, ...COMMON_FLAGS },
    plan(f) {
      const n = intFlag(f, 'size', 512);
      return (rep) => matmulBench(n, rep);
    },
  },
  train: {
    summary: 'train the seed DenseNet on Fashion-MNIST (a checkpoint every epoch and on SIGINT/SIGTERM, then exit 130/143)',
    flags: TRAIN_FLAGS,
    plan(f) {
      const plan = planTrain(f);
      return async (rep) => {
        const { signal } = await runTrain(plan, rep);
        return signal ? SIGNAL_EXIT[signal] : 0;
      };
    },
  },
  eval: {
    summary: 'test accuracy and confusion matrix of a checkpoint written by train',
    flags: EVAL_FLAGS,
    plan(f) {
      const plan = planEval(f);
      return (rep) => runEval(plan, rep);
    },
  },
  report: {
    summary: 'self-checks, speed, kernels and memory on this adapter into DIR/report.json, report.md and SVG plots',
    flags: {
      out: { kind: 'string', help: 'DIR: where report.json, report.md and the plots go (required)' },
      quick: { kind: 'bool', help: 'small sizes only (a minute on a software adapter)' },
      ...COMMON_FLAGS,
    },
    plan(f) {
      if (!f.out) throw new UsageError('report: --out DIR is required');
      return async () => void (await runReport({ out: f.out as string, quick: !!f.quick }));
    },
  },
  'compare-tfjs': {
    summary: "the seed's DenseNet on TensorFlow.js's WebGPU backend and ours, one table (needs npm install --no-save @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu)",
    flags: {
      batch: MODEL_FLAGS.batch,
      size: MODEL_FLAGS.size,
      warmup: { kind: 'int', help: 'N: untimed steps first (default 1)' },
      iters: { kind: 'int', help: 'N: timed steps, at least 1 (default 3)' },
      ...COMMON_FLAGS,
    },
    plan(f) {
      const m = modelFlags({ batch: f.batch, size: f.size });
      checkD2lInput(m.size);
      checkTfjsInstalled();
      const warmup = intFlag(f, 'warmup', 1, 0);
      const iters = intFlag(f, 'iters', 3);
      return (rep) => runCompareTfjs({ batch: m.batch, size: m.size, warmup, iters }, rep).then(() => undefined);
    },
  },
  'compare-pytorch': {
    summary: "the seed's DenseNet training step (memory-efficient, float32) here and in PyTorch on the CPU, in alternating rounds; per round and median ms and their ratio (needs python3-torch)",
    flags: {
      batch: MODEL_FLAGS.batch,
      size: { kind: 'int', help: 'N: the input is 1xNxN (default 64)' },
      warmup: { kind: 'int', help: 'N: untimed steps before each round, both sides (default 3)' },
      iters: { kind: 'int', help: 'N: timed steps per round, both sides (default 20)' },
      rounds: { kind: 'int', help: 'N: rounds, ours then PyTorch in each (default 8)' },
      threads: { kind: 'int', help: "N: PyTorch's CPU threads (default: this machine's cores)" },
      python: { kind: 'string', help: 'PATH: the Python that runs the PyTorch peer (default python3)' },
      tune: { kind: 'string', help: 'on|off: our kernel tuning (default off: the heuristic choices)' },
      ...COMMON_FLAGS,
    },
    plan(f) {
      const batch = intFlag(f, 'batch', 8);
      const size = intFlag(f, 'size', 64);
      checkD2lInput([size, size]);
      const warmup = intFlag(f, 'warmup', 3, 0);
      const iters = intFlag(f, 'iters', 20);
      const rounds = intFlag(f, 'rounds', 8);
      const threads = intFlag(f, 'threads', availableParallelism());
      const tune = oneOf('--tune', (f.tune as string) ?? 'off', ['on', 'off'] as const);
      const python = (f.python as string) ?? 'python3';
      const peer = peerScript();
      const torchVersion = checkPytorch(python);
      return (rep) => runComparePytorch({ batch, size, warmup, iters, rounds, threads, python, tune, torchVersion, peer }, rep).then(() => undefined);
    },
  },
};

function globalHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `usage: ${PROGRAM} [command] [flags]`,
    `       ${PROGRAM} COMMAND --help   (that command's flags)`,
    `       ${PROGRAM} --version`,
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(w)}  ${c.summary}`),
    '',
    'Errors in the flags or the input print one line and exit with code 2.',
  ].join('\n');
}

function header(g: E.Gpu, rep: Reporter): void {
  const f = g.features;
  const a = g.adapter;
  const info = {
    engine: `densenet-webgpu ${VERSION}`,
    adapter: `${a.vendor} / ${a.architecture} / ${a.description}${a.isFallbackAdapter ? ' (software adapter)' : ''}${E.rulesAssumeHardware() ? '; kernel rules as on a hardware GPU (DENSENET_RULES=hardware)' : ''}`,
    features: `subgroups=${f.subgroups}${f.subgroups ? ` (size ${f.subgroupMinSize}-${f.subgroupMaxSize})` : ''} timestamp-query=${f.timestampQuery} shader-f16=${f.shaderF16}`,
    limits: `maxBufferSize=${E.formatBytes(g.limits.maxBufferSize)} maxStorageBufferBindingSize=${E.formatBytes(g.limits.maxStorageBufferBindingSize)} maxComputeInvocationsPerWorkgroup=${g.limits.maxComputeInvocationsPerWorkgroup}`,
  };
  rep.record('header', info);
  if (!rep.json) for (const [k, v] of Object.entries(info)) console.log(`${k.padEnd(9)} ${v}`);
  rep.text('');
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === '-V') {
    console.log(VERSION);
    return 0;
  }
  const explicit = argv[0] !== undefined && !argv[0].startsWith('-');
  const name = explicit ? argv.shift()! : 'speed';
  if (!explicit && (argv.includes('--help') || argv.includes('-h'))) {
    console.log(globalHelp());
    return 0;
  }
  if (!Object.hasOwn(COMMANDS, name)) throw new UsageError(`unknown command '${name}'`);
  const cmd = COMMANDS[name];
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText(PROGRAM, name, cmd.summary, cmd.flags));
    return 0;
  }
  // Everything that can be checked on the host is checked before touching the GPU.
  const f = parseFlags(argv, cmd.flags, name);
  const run = cmd.plan(f);
  const memoryBudget = f['memory-budget'] === undefined ? undefined : parseBytes(f['memory-budget'] as string);
  const rep = new Reporter(!!f.json, name);
  // Unquantised timestamps (Dawn rounds them to about 65 us otherwise), for per-kernel GPU times and tuning.
  const g = await E.init({ memoryBudget, dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
  header(g, rep);
  return (await run(rep)) ?? 0;
}

async function matmulBench(n: number, rep: Reporter): Promise<void> {
  const a = E.randn([n, n]);
  const b = E.randn([n, n]);
  const kernels = E.supportedVariants('matmul').filter((k) => k !== 'naive');
  const rows = [];
  try {
    for (const k of kernels) {
      E.forceMatmulKernel(k);
      rep.progress(`matmul ${k}...`);
      const t = await timeIt(() => E.scope(() => void E.matmul(a, b)), { warmup: 1, iters: 7, repeat: 4 });
      rows.push({ kernel: k, shape: `${n}x${n}x${n}`, ms: t.medianMs, gflops: (2 * n ** 3) / (t.medianMs * 1e6) });
    }
  } finally {
    E.forceMatmulKernel(null);
    a.dispose();
    b.dispose();
  }
  rep.table(rows, [['kernel', 'kernel'], ['shape', 'M x N x K'], ['ms', 'ms (median)', (v) => (v as number).toFixed(2)], ['gflops', 'GFLOP/s', (v) => (v as number).toFixed(1)]]);
}

// The process the user started only filters Dawn's two warning lines out of its child's stderr (see
// bench/dawn_stderr.ts); the child does the work.
if (!runAsFilteredChild()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      const usage = e instanceof UsageError || e instanceof InputError || e instanceof MissingTfjsError || /exceeds the device limit|out of memory/.test(String(e?.message));
      console.error(`densenet-bench: ${(e as Error).message}${e instanceof UsageError ? ' (see --help)' : ''}`);
      process.exit(usage ? 2 : 1);
    },
  );
}
