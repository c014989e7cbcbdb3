// The benchmark CLI as a user runs it: bundled from bench/cli.ts as scripts/build.mjs does, spawned
// as a process. Usage errors must come before the GPU (no adapter header), exit 2, one line; the
// training runs are tiny (growth 4, two one-layer blocks, 16x16 inputs).
import { beforeAll, describe, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { decodeSafetensors } from '../nn/index.js';
import { TRAIN_FLAGS, EVAL_FLAGS } from '../bench/train.js';
import { CLASS_NAMES } from '../bench/data.js';
import { syntheticDataset } from './fashion.js';
import { dropDawnNoise } from '../bench/dawn_stderr.js';

const CLI = join('dist', 'cli-test', 'cli.js');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };

beforeAll(async () => {
  await build({
    entryPoints: ['bench/cli.ts'], outfile: CLI, bundle: true, format: 'esm', platform: 'node', target: 'node20',
    external: ['webgpu'], loader: { '.wgsl': 'text' }, keepNames: true, logLevel: 'warning',
  });
});

function cli(args: string[], extraEnv: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...env, ...extraEnv }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tiny = ['--growth', '4', '--arch', '1,1', '--size', '16', '--batch', '10', '--log-every', '1'];

describe('densenet-bench', () => {
  const data = syntheticDataset(60, 1, 20);

  test('usage errors exit 2 with one line, before the adapter header (issue 13, items 5, 7, 12)', () => {
    const emptyTrain = syntheticDataset(0, 1);
    const cases: Array<[string[], RegExp]> = [
      [['train', '--momentum', '-1', '--data', data], /--momentum must be >= 0, got -1/],
      [['train', '--weight-decay', '-1', '--data', data], /--weight-decay must be >= 0, got -1/],
      [['speed', '--iters', '0'], /--iters must be at least 1, got 0/],
      [['eval', '--checkpoint', 'x.safetensors', '--batch', '0'], /--batch must be at least 1, got 0/],
      [['eval', '--checkpoint', 'x.safetensors', '--test-limit', '0'], /--test-limit must be at least 1, got 0/],
      [['eval', '--size', '32'], /eval: unknown flag --size/],
      [['train', '--data', emptyTrain, ...tiny], /the training set has 0 images/],
      [['train', '--epochs', '1', '--resume', join(data, 'nothing.safetensors')], /checkpoint .*nothing.safetensors does not exist/],
      [['speed', '--memory-budget', 'lots'], /--memory-budget needs a size such as 2GiB/],
      [['train', '--recipe', 'resnet', '--data', data], /--recipe must be one of d2l, densenet, got 'resnet'/],
      [['train', '--optimizer', 'rmsprop', '--data', data], /--optimizer must be one of sgd, adam, adamw, got 'rmsprop'/],
      [['train', '--schedule', 'linear', '--data', data], /--schedule must be one of none, step, multistep, cosine, got 'linear'/],
      [['train', '--optimizer', 'adam', '--momentum', '0.9', '--data', data], /--momentum is for --optimizer sgd, not adam/],
      [['train', '--schedule', 'cosine', '--epochs', '2', '--warmup-epochs', '2', '--data', data], /--warmup-epochs 2 leaves no epoch of the cosine schedule in 2/],
      [['train', '--lr', '0', '--data', data], /--lr must be positive, got 0/],
      [['speed', '--precision', 'half'], /--precision must be one of fp32, mixed, both, got 'half'/],
      [['memory', '--precision', 'fp16'], /--precision must be one of fp32, mixed, both, got 'fp16'/],
      [['train', '--precision', 'both', '--data', data], /--precision must be one of fp32, mixed, got 'both'/],
      [['eval', '--checkpoint', 'x.safetensors', '--precision', 'mixed'], /eval: unknown flag --precision/],
    ];
    for (const [args, message] of cases) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe(''); // no adapter header: nothing touched the GPU
      const lines = r.stderr.split('\n').filter((l) => l && !/artificially reduced/.test(l));
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  });

  test('--memory-budget caps the pool: a speed run over it is a clear out-of-memory error, exit 2 (issue 13, item 8)', () => {
    const r = cli(['speed', '--memory-budget', '1MiB', '--mode', 'forward', '--iters', '1', '--warmup', '0', '--memory-efficient', 'on']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/out of memory.*1\.0 MiB|1\.0 MiB.*out of memory|budget/i);
  });

  test('help is per command and lists exactly the flags the parser takes; --version (issue 14)', () => {
    for (const [command, flags] of [['train', TRAIN_FLAGS], ['eval', EVAL_FLAGS]] as const) {
      const r = cli([command, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: densenet-bench ${command} \\[flags\\]`));
      const listed = [...r.stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]);
      expect(listed.sort()).toEqual(Object.keys(flags).sort());
    }
    expect(cli(['eval', '--help']).stdout).not.toMatch(/--size/);
    for (const command of ['speed', 'kernels', 'memory', 'matmul', 'compare-tfjs', 'compare-pytorch']) {
      const r = cli([command, '--help']);
      const listed = [...r.stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]);
      expect(listed.length, command).toBeGreaterThan(1);
      // Every listed flag is known to the parser: given all of them, it is the unknown flag after them that stops the run.
      const r2 = cli([command, ...listed.filter((f) => f !== 'help').map((f) => `--${f}=1`), '--no-such-flag']);
      expect(r2.status).toBe(2);
      expect(r2.stderr, command).toMatch(/unknown flag --no-such-flag/);
    }
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    expect(cli(['--version']).stdout.trim()).toBe(pkg.version);
  });

  test('DENSENET_RULES=hardware is named in the header; another value is ignored with one warning naming the variable', () => {
    const args = ['speed', '--mode', 'forward', '--batch', '1', '--size', '32', '--iters', '1', '--warmup', '0', '--memory-efficient', 'on', '--precision', 'fp32'];
    const hw = cli(args, { DENSENET_RULES: 'hardware' });
    expect(hw.status, hw.stderr).toBe(0);
    expect(hw.stdout).toContain('kernel rules as on a hardware GPU (DENSENET_RULES=hardware)');
    const bad = cli(args, { DENSENET_RULES: 'gpu' });
    expect(bad.status, bad.stderr).toBe(0);
    expect(bad.stderr.split('\n').filter((l) => l.includes('DENSENET_RULES'))).toEqual(["densenet-webgpu: DENSENET_RULES must be one of adapter, hardware, got 'gpu'; ignoring it"]);
    expect(bad.stdout).not.toContain('kernel rules as on');
  });

  test('speed --mode forward takes batch 1 (no training-mode batch norm) (issue 13, item 12)', () => {
    const r = cli(['speed', '--mode', 'forward', '--batch', '1', '--size', '32', '--iters', '1', '--warmup', '0', '--memory-efficient', 'on', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    // --precision both is the default: fp32 and mixed side by side (this adapter has shader-f16).
    expect(rows.map((x) => x.type)).toEqual(['header', 'row', 'row']);
    expect(rows[1]).toMatchObject({ command: 'speed', mode: 'forward', batch: 1, precision: 'fp32' });
    expect(rows[2]).toMatchObject({ command: 'speed', mode: 'forward', batch: 1, precision: 'mixed' });
    expect(rows[2].peakBytes).toBeLessThan(rows[1].peakBytes);
    // The process's CPU time per step (Node reads it): at least the kernels' work on this software adapter.
    for (const row of rows.slice(1)) expect(row.cpuMs).toBeGreaterThan(0);
    // The host's share: recording a step takes time, within the step's (per step, so the medians too).
    for (const row of rows.slice(1)) {
      expect(row.hostMs).toBeGreaterThan(0);
      expect(row.hostMs).toBeLessThanOrEqual(row.ms);
    }
  });

  test('eval runs a mixed-precision checkpoint in mixed precision: the accuracy the run logged (issue 16)', () => {
    const out = mkdtempSync(join(tmpdir(), 'cli-'));
    const t = cli(['train', ...tiny, '--data', data, '--out', out, '--epochs', '1', '--precision', 'mixed', '--json']);
    expect(t.status, t.stderr).toBe(0);
    const summary = t.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.type === 'summary');
    const e = cli(['eval', '--checkpoint', join(out, 'checkpoint.safetensors'), '--data', data]);
    expect(e.status, e.stderr).toBe(0);
    expect(e.stdout).toContain(`test accuracy: ${summary.testAcc.toFixed(4)} on`);
    expect(e.stdout).toMatch(/precision mixed\)/);
  });

  test('train --json and eval --json print typed lines; eval shows progress and names the classes (issue 14)', () => {
    const out = mkdtempSync(join(tmpdir(), 'cli-'));
    const stale = join(out, 'checkpoint.safetensors.tmp-2147483646-1');
    writeFileSync(stale, 'left by a killed write');
    const t = cli(['train', ...tiny, '--data', data, '--out', out, '--epochs', '2', '--json']);
    expect(t.status, t.stderr).toBe(0);
    expect(existsSync(stale)).toBe(false);
    const lines = t.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(['header', 'epoch', 'epoch', 'summary']);
    expect(lines.every((l) => l.command === 'train')).toBe(true);
    expect(lines[0]).toHaveProperty('adapter');
    expect(lines[2]).toMatchObject({ epoch: 2 });
    expect(t.stderr).toMatch(/eval batch 1\/1 acc [\d.]+ [\d.]+ img\/s ETA/);

    const e = cli(['eval', '--checkpoint', join(out, 'checkpoint.safetensors'), '--data', data, '--batch', '8', '--json']);
    expect(e.status, e.stderr).toBe(0);
    expect(e.stderr).toMatch(/eval batch 3\/3 acc/);
    const ev = e.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(ev.map((l) => l.type)).toEqual(['header', ...CLASS_NAMES.map(() => 'row'), 'summary']);
    expect(Object.keys(ev[1].predicted)).toEqual(CLASS_NAMES);
    expect(ev[10]).toMatchObject({ true: 'Ankle boot' });
    expect(ev[11]).toMatchObject({ command: 'eval', images: 20, epoch: 2 });

    const text = cli(['eval', '--checkpoint', join(out, 'checkpoint.safetensors'), '--data', data]);
    expect(text.stdout).toMatch(/Ankle boot\n/); // the last column's title, not cut short
    expect(text.stdout).toMatch(/^Ankle boot /m);
  });

  test('train --recipe densenet --augment, then --resume with a contradicting --optimizer is refused, without it continues (issue 15)', () => {
    const out = mkdtempSync(join(tmpdir(), 'cli-'));
    const t = cli(['train', ...tiny, '--data', data, '--out', out, '--epochs', '1', '--schedule-epochs', '2', '--recipe', 'densenet', '--augment', '--json']);
    expect(t.status, t.stderr).toBe(0);
    const ck = join(out, 'checkpoint.safetensors');
    const meta = decodeSafetensors(new Uint8Array(readFileSync(ck))).metadata;
    expect([meta.recipe, meta.optimizer, meta.schedule, meta.augment, meta['schedule-epochs']]).toEqual(['densenet', 'sgd', 'multistep', 'true', '2']);
    const refused = cli(['train', '--data', data, '--out', out, '--epochs', '2', '--resume', ck, '--optimizer', 'adamw']);
    expect(refused.status).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/--optimizer adamw does not match the checkpoint .*checkpoint.safetensors, which was trained with optimizer sgd/);
    const r = cli(['train', '--data', data, '--out', out, '--epochs', '2', '--resume', ck, '--log-every', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/recipe densenet, optimizer sgd, lr 0\.1, schedule multistep, augment/);
    expect(r.stderr).toMatch(/epoch 2: .*lr 0\.00100/);
    const log = JSON.parse(readFileSync(join(out, 'train-log.json'), 'utf8'));
    expect(log.config).toMatchObject({ recipe: 'densenet', optimizer: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 1e-4, schedule: 'multistep', augment: true });
  });

  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    test(`${signal} writes a checkpoint and exits ${code} (issue 13, item 10)`, async () => {
      const out = mkdtempSync(join(tmpdir(), 'cli-'));
      const child = spawn(process.execPath, [CLI, 'train', ...tiny, '--batch', '2', '--data', data, '--out', out, '--epochs', '3'], { env });
      let stderr = '';
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      await new Promise<void>((resolve) => {
        child.stderr.on('data', (d) => {
          stderr += String(d);
          if (/epoch 1\/3 batch 2\//.test(stderr)) resolve();
        });
        void exited.then(() => resolve());
      });
      child.kill(signal);
      expect(await exited, stderr).toBe(code);
      expect(stderr).toMatch(new RegExp(`${signal}: writing a checkpoint`));
      const meta = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'checkpoint.safetensors')))).metadata;
      expect(Number(meta.epoch) * 30 + Number(meta.step)).toBeGreaterThan(1);
      expect(readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);
    });
  }

  test("Dawn's two 'artificially reduced' warning lines are not printed; everything else on stderr is (issue 14)", () => {
    const r = cli(['matmul', '--size', '8']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^engine +densenet-webgpu/m);
    expect(r.stderr).not.toMatch(/artificially reduced/);
    expect(r.stderr).toMatch(/matmul \w+\.\.\./); // the progress lines still come through
    const noise = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n';
    expect(dropDawnNoise(`a\n${noise}${noise.replace('Uniform', 'Storage')}b\n`)).toBe('a\nb\n');
  });

  describe('compare-pytorch (issue 12: the step within 3.5x of PyTorch measured at the same time)', () => {
    // A stand-in for Python: `-c ...` (the torch check) prints a version; `-` (the peer) saves its stdin
    // and arguments and prints the peer's line (or `peerLine`).
    function fakePython(peerLine: string, peerExit = 0): { python: string; dir: string } {
      const dir = mkdtempSync(join(tmpdir(), 'fakepy-'));
      const python = join(dir, 'python');
      writeFileSync(python, [
        '#!/bin/sh',
        'if [ "$1" = "-c" ]; then echo 9.9.9; exit 0; fi',
        `cat > ${join(dir, 'stdin.py')}`,
        `echo "$@" > ${join(dir, 'args')}`,
        `echo '${peerLine}'`,
        `if [ ${peerExit} != 0 ]; then echo 'RuntimeError: the peer crashed' >&2; exit ${peerExit}; fi`,
        '',
      ].join('\n'));
      chmodSync(python, 0o755);
      return { python, dir };
    }
    const quick = ['--rounds', '2', '--iters', '1', '--warmup', '0', '--batch', '2', '--size', '32', '--threads', '3'];

    test('no Python, no torch, a bad size: one line, exit 2, before the GPU', () => {
      const cases: Array<[string[], RegExp]> = [
        [['compare-pytorch', '--python', '/nonexistent/python3'], /compare-pytorch: '\/nonexistent\/python3' cannot be run .*python3-torch/],
        [['compare-pytorch', '--python', '/bin/false'], /compare-pytorch: '\/bin\/false -c import torch.*' failed with exit code 1; it needs .*python3-torch/],
        [['compare-pytorch', '--python', fakePython('').python, '--size', '16'], /input 1x16x16 is too small for d2l/],
        [['compare-pytorch', '--python', fakePython('').python, '--rounds', '0'], /--rounds must be at least 1, got 0/],
        [['compare-pytorch', '--python', fakePython('').python, '--tune', 'both'], /--tune must be one of on, off, got 'both'/],
      ];
      for (const [args, message] of cases) {
        const r = cli(args);
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stdout, args.join(' ')).toBe('');
        const lines = r.stderr.split('\n').filter((l) => l && !/artificially reduced/.test(l));
        expect(lines, args.join(' ')).toHaveLength(1);
        expect(lines[0]).toMatch(message);
      }
    });

    test("rounds alternate our step and the peer's; each row is the two medians and their ratio, the summary their medians", () => {
      const { python, dir } = fakePython('pytorch 9.9.9 cpu threads=3 d2l batch=2 32x32 train: median 50.0 ms (min 49.0, max 51.0)');
      const r = cli(['compare-pytorch', '--python', python, ...quick, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => l.type)).toEqual(['header', 'header', 'row', 'row', 'summary']);
      expect(lines[1]).toMatchObject({ command: 'compare-pytorch', peer: 'pytorch', version: '9.9.9', threads: 3, python });
      const rows = lines.slice(2, 4);
      for (const [i, row] of rows.entries()) {
        expect(row).toMatchObject({ round: i + 1, batch: 2, size: '1x32x32', torchMs: 50 });
        expect(row.ms).toBeGreaterThan(0);
        expect(row.ratio).toBeCloseTo(row.ms / 50, 10);
      }
      expect(lines[4]).toMatchObject({ rounds: 2, torchMs: 50 });
      expect(lines[4].ratio).toBeCloseTo((rows[0].ratio + rows[1].ratio) / 2, 10);
      // The peer got the shipped script on stdin and this run's sizes.
      expect(readFileSync(join(dir, 'stdin.py'), 'utf8')).toBe(readFileSync('scripts/pytorch_step.py', 'utf8'));
      expect(readFileSync(join(dir, 'args'), 'utf8').trim()).toBe('- --mode train --batch 2 --size 32 --threads 3 --iters 1 --warmup 0');
    });

    test('a peer that fails during a round (torch checked fine) is an error naming the round and its stderr, not a missing torch', () => {
      const r = cli(['compare-pytorch', '--python', fakePython('', 3).python, ...quick]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/compare-pytorch: the PyTorch peer failed in round 1 with exit code 3 \(RuntimeError: the peer crashed\)/);
      expect(r.stderr).not.toMatch(/python3-torch/);
    });

    test('a peer that prints no training time is an error that quotes what it printed', () => {
      const r = cli(['compare-pytorch', '--python', fakePython('Segmentation fault').python, ...quick]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/the PyTorch peer printed no training time \(expected a line with 'train: median X ms'\), got: "Segmentation fault"/);
    });
  });

  test('the build keeps class names: String(new DenseNet()) starts with DenseNet (issue 14)', () => {
    expect(spawnSync(process.execPath, ['scripts/build.mjs'], { encoding: 'utf8', env }).status).toBe(0);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('./dist/models/index.js'); console.log(String(new m.DenseNet()).split('\\n')[0]);"], { encoding: 'utf8', env });
    expect(r.stdout.trim()).toMatch(/^DenseNet\b/);
  });
});
