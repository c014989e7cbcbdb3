#!/usr/bin/env node
// densenet-bench: the command-line harness. For now: `demo` (the default) runs a few ops and prints
// the adapter and results; `matmul` measures the matmul kernels.

import * as E from '../engine/index.js';
import { timeIt } from './timing.js';

const USAGE = `usage: densenet-bench [demo|matmul] [--size N] [--json]
  demo     run a few ops on the GPU and print the adapter and the results (default)
  matmul   GFLOP/s of each matmul kernel at N x N x N (default 512)`;

class UsageError extends Error {}

function parseArgs(argv: string[]) {
  const args = { command: 'demo', size: 512, json: false };
  const rest = [...argv];
  if (rest[0] && !rest[0].startsWith('-')) args.command = rest.shift()!;
  while (rest.length) {
    const a = rest.shift()!;
    if (a === '--json') args.json = true;
    else if (a === '--size') {
      const v = Number(rest.shift());
      if (!Number.isInteger(v) || v < 1) throw new UsageError(`--size needs a positive integer`);
      args.size = v;
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown option ${a}`);
  }
  if (!['demo', 'matmul'].includes(args.command)) throw new UsageError(`unknown command ${args.command}`);
  return args;
}

function header(g: E.Gpu): string {
  const f = g.features;
  return [
    `adapter: ${g.adapter.vendor} / ${g.adapter.architecture} / ${g.adapter.description}${g.adapter.isFallbackAdapter ? ' (software)' : ''}`,
    `features: subgroups=${f.subgroups}${f.subgroups ? ` (size ${f.subgroupMinSize}-${f.subgroupMaxSize})` : ''} timestamp-query=${f.timestampQuery} shader-f16=${f.shaderF16}`,
    `limits: maxBufferSize=${E.formatBytes(g.limits.maxBufferSize)} maxStorageBufferBindingSize=${E.formatBytes(g.limits.maxStorageBufferBindingSize)}`,
  ].join('\n');
}

async function demo(): Promise<void> {
  const a = E.tensor([[1, 2, 3], [4, 5, 6]]);
  const b = E.tensor([[1, 0], [0, 1], [1, 1]]);
  a.requiresGrad = true;
  const c = E.matmul(a, b);
  const loss = E.mean(E.relu(E.sub(c, 3)));
  loss.backward();
  console.log('a =', await a.toArray());
  console.log('b =', await b.toArray());
  console.log('a @ b =', await c.toArray());
  console.log('loss = mean(relu(a @ b - 3)) =', await loss.item());
  console.log('d loss / d a =', await a.grad!.toArray());
  console.log(`GPU memory: live ${E.formatBytes(E.memory().liveBytes)}, peak ${E.formatBytes(E.memory().peakBytes)}`);
}

async function matmulBench(n: number, json: boolean): Promise<void> {
  const a = E.randn([n, n]);
  const b = E.randn([n, n]);
  const kernels: E.MatmulKernel[] = E.gpu().features.subgroups ? ['subgroup', 'tiled'] : ['tiled'];
  for (const k of kernels) {
    E.forceMatmulKernel(k);
    const t = await timeIt(() => E.scope(() => void E.matmul(a, b)), { warmup: 1, iters: 5, repeat: 4 });
    const gflops = (2 * n ** 3) / (t.medianMs * 1e6);
    if (json) console.log(JSON.stringify({ bench: 'matmul', kernel: k, m: n, n, k: n, medianMs: t.medianMs, gflops }));
    else console.log(`matmul ${n}x${n}x${n} ${k.padEnd(8)} ${t.medianMs.toFixed(2).padStart(8)} ms  ${gflops.toFixed(1).padStart(6)} GFLOP/s`);
  }
  E.forceMatmulKernel(null);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`densenet-bench: ${e.message}\n${USAGE}`);
      process.exit(2);
    }
    throw e;
  }
  const g = await E.init();
  if (!args.json) console.log(header(g));
  if (args.command === 'demo') await demo();
  else await matmulBench(args.size, args.json);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`densenet-bench: ${(e as Error).message}`);
    process.exit(1);
  },
);
