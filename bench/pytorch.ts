// `densenet-bench compare-pytorch`: one training step of the seed's DenseNet (memory-efficient blocks,
// float32) here and in PyTorch on the CPU, in alternating rounds. Each round times --iters of our steps
// (each ended by a GPU sync, as `speed` does), then runs the PyTorch peer (scripts/pytorch_step.py, which
// the package ships, fed to `python -`) for --iters of its steps, so both see the host in
// the same state; per round the two medians and their ratio, then the median over the rounds. On a
// noisy host single rounds move by 1.5x, so the median ratio is the figure to quote.
//
// The peer needs a Python with torch (Debian: apt install python3-torch); --python picks the
// interpreter. It is checked before the GPU is touched: a missing interpreter or torch is one line and
// exit code 2.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as E from '../engine/index.js';
import { InputError } from './args.js';
import { prepare } from './speed.js';
import { trainStep } from './step.js';
import { Reporter, fixed, type Row } from './report.js';
import { median, timeIt } from './timing.js';
import { tuneStep } from './tune_timing.js';

export const PYTORCH_INSTALL = "Debian's python3-torch (apt install python3-torch), or --python PATH to a Python that has torch";

export interface ComparePytorchOptions {
  batch: number;
  /** The input's side (the peer takes square inputs). */
  size: number;
  warmup: number;
  iters: number;
  rounds: number;
  /** PyTorch's CPU threads. */
  threads: number;
  /** The Python interpreter. */
  python: string;
  tune: 'on' | 'off';
  /** torch's version, from checkPytorch(), and the peer's source, from peerScript() (the plan runs both before the GPU is touched). */
  torchVersion: string;
  peer: string;
}

/**
 * Runs `python` with `args` (and `input` on stdin) and returns its output. A failure is an InputError
 * that says what to install when `round` is undefined (the check before the GPU), else an Error naming
 * the round (torch was there: the peer itself failed).
 */
function runPython(python: string, args: string[], input: string | undefined, timeoutMs: number, round?: number): string {
  const r = spawnSync(python, args, { input, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 20 });
  const last = (r.stderr ?? '').trim().split('\n').pop() ?? '';
  if (round !== undefined && (r.error || r.status !== 0)) {
    const why = r.error ? (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `did not finish in ${timeoutMs / 1000} s` : r.error.message : `exit code ${r.status}`;
    throw new Error(`compare-pytorch: the PyTorch peer failed in round ${round} with ${why}${last ? ` (${last})` : ''}`);
  }
  if (r.error) {
    const why = (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `did not finish in ${timeoutMs / 1000} s` : `cannot be run (${r.error.message})`;
    throw new InputError(`compare-pytorch: '${python}' ${why}; it needs ${PYTORCH_INSTALL}`);
  }
  if (r.status !== 0) {
    throw new InputError(`compare-pytorch: '${python} ${args.join(' ')}' failed with exit code ${r.status}${last ? ` (${last})` : ''}; it needs ${PYTORCH_INSTALL}`);
  }
  return r.stdout;
}

/**
 * The peer's source: scripts/pytorch_step.py of this checkout or installed package, two levels up from
 * the bundled CLI (dist/bench/cli.js, .devpack/app/cli.mjs) or one from this file (tests).
 */
export function peerScript(): string {
  const tried = ['../../scripts/pytorch_step.py', '../scripts/pytorch_step.py'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = tried.find((f) => existsSync(f));
  if (!found) throw new InputError(`compare-pytorch: the PyTorch peer script is missing (looked for ${tried.join(' and ')}); run the CLI from a checkout of densenet-webgpu or its installed package`);
  return readFileSync(found, 'utf8');
}

/** Checks that `python` runs and imports torch (before the GPU is touched); returns torch's version. */
export function checkPytorch(python: string): string {
  return runPython(python, ['-c', 'import torch; print(torch.__version__)'], undefined, 120_000).trim();
}

/** The median ms of the peer's training step, from its output line `... train: median X ms ...`. */
export function peerTrainMs(output: string): number {
  const m = /\btrain: median ([0-9.]+) ms/.exec(output);
  const ms = m ? Number(m[1]) : NaN;
  if (!(ms > 0)) throw new Error(`compare-pytorch: the PyTorch peer printed no training time (expected a line with 'train: median X ms'), got: ${JSON.stringify(output.trim().slice(0, 300))}`);
  return ms;
}

export async function runComparePytorch(o: ComparePytorchOptions, rep: Reporter): Promise<Row[]> {
  const torch = o.torchVersion;
  const peerArgs = ['-', '--mode', 'train', '--batch', String(o.batch), '--size', String(o.size), '--threads', String(o.threads), '--iters', String(o.iters), '--warmup', String(o.warmup)];
  rep.text(`peer      PyTorch ${torch} on the CPU, ${o.threads} thread${o.threads === 1 ? '' : 's'} ('${o.python}')`);
  rep.record('header', { peer: 'pytorch', version: torch, threads: o.threads, python: o.python });
  rep.progress('[d2l efficient] building the model and compiling shaders...');
  const built = prepare({ model: 'd2l', batch: o.batch, size: [o.size, o.size], channels: 1 }, true);
  const { step, dispose } = trainStep(built.model, built.x, built.labels, 'fp32');
  const rows: Row[] = [];
  const before = E.tuneMode();
  try {
    if (o.tune === 'on') {
      rep.progress('[d2l efficient] tuning the kernels at this step\'s shapes...');
      await tuneStep(step);
    }
    E.setTuneMode(o.tune === 'on' ? 'cached' : 'off');
    for (let r = 1; r <= o.rounds; r++) {
      rep.progress(`round ${r} of ${o.rounds}: ours (${o.iters} steps), then PyTorch (${o.iters} steps)...`);
      const ours = await timeIt(step, { warmup: o.warmup, iters: o.iters });
      const theirs = peerTrainMs(runPython(o.python, peerArgs, o.peer, 600_000, r));
      rows.push({ round: r, batch: o.batch, size: `1x${o.size}x${o.size}`, ms: ours.medianMs, torchMs: theirs, ratio: ours.medianMs / theirs });
    }
  } finally {
    E.setTuneMode(before);
    dispose();
    built.model.dispose();
    built.x.dispose();
    built.labels.dispose();
    await E.pool.trim();
  }
  rep.table(rows, [
    ['round', 'round'],
    ['batch', 'batch'],
    ['size', 'input'],
    ['ms', 'ms/step', fixed(1)],
    ['torchMs', 'PyTorch ms/step', fixed(1)],
    ['ratio', 'ours/PyTorch', fixed(2)],
  ]);
  const summary = {
    rounds: rows.length,
    ms: median(rows.map((r) => r.ms as number)),
    torchMs: median(rows.map((r) => r.torchMs as number)),
    ratio: median(rows.map((r) => r.ratio as number)),
  };
  rep.record('summary', summary);
  rep.text(`median of ${summary.rounds} rounds: ours ${summary.ms.toFixed(1)} ms, PyTorch ${summary.torchMs.toFixed(1)} ms, ratio ${summary.ratio.toFixed(2)}x`);
  return rows;
}
