import { describe, expect, test, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import { decodeSafetensors, encodeSafetensors } from '../nn/index.js';
import { planTrain, runTrain, trainingSettings } from '../bench/train.js';
import { InputError, type Flags } from '../bench/args.js';
import { readCheckpoint, saveCheckpoint } from '../bench/checkpoint.js';
import { DenseNet } from '../models/index.js';
import { SGD } from '../nn/index.js';
import { Reporter } from '../bench/report.js';
import { useEngine } from './helpers.js';

useEngine();

import { syntheticDataset } from './fashion.js';

const quiet = new Reporter(true);
quiet.progress = () => {};
quiet.record = () => {};
const train = (f: Flags) => runTrain(planTrain(f), quiet);
const small = { arch: '1,1', growth: 4, size: 16, batch: 20, lr: 0.1, momentum: 0.9, 'log-every': 100 };

function params(path: string): Map<string, Float32Array> {
  const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(path)));
  return new Map([...tensors].map(([k, t]) => [k, t.data]));
}

describe('training on Fashion-MNIST files', () => {
  const data = syntheticDataset(100, 1);

  test('a few epochs on a tiny synthetic set drive the loss down and write the log, curves and checkpoint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    await train({ ...small, data, out, epochs: 4 });
    const log = JSON.parse(readFileSync(join(out, 'train-log.json'), 'utf8'));
    const losses = log.epochs.map((e: { loss: number }) => e.loss);
    expect(losses[3]).toBeLessThan(losses[0]);
    expect(log.summary.testAcc).toBeGreaterThanOrEqual(0);
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toContain('<svg');
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
  });

  test('resuming from a checkpoint gives the same parameters and optimiser state as training straight through', async () => {
    const a = mkdtempSync(join(tmpdir(), 'train-'));
    await train({ ...small, data, out: a, epochs: 2 });
    const b = mkdtempSync(join(tmpdir(), 'train-'));
    await train({ ...small, data, out: b, epochs: 1 });
    await train({ ...small, data, out: b, epochs: 2, resume: join(b, 'checkpoint.safetensors') });
    const pa = params(join(a, 'checkpoint.safetensors'));
    const pb = params(join(b, 'checkpoint.safetensors'));
    expect([...pb.keys()]).toEqual([...pa.keys()]);
    expect([...pa.keys()].some((k) => /^optimizer\.state\.\d+\.momentum_buffer$/.test(k))).toBe(true);
    for (const [k, v] of pa) expect(Array.from(pb.get(k)!), k).toEqual(Array.from(v));
  });

  describe('recipes, optimisers, schedules and augmentation (issue 15)', () => {
    const runs: Array<[string, Flags]> = [
      ['--recipe densenet (Nesterov SGD, no decay on 1-d parameters, multistep)', { recipe: 'densenet' }],
      ['--optimizer adam --schedule cosine --warmup-epochs 1', { optimizer: 'adam', schedule: 'cosine', 'warmup-epochs': 1 }],
      ['--optimizer adamw --schedule step --augment', { optimizer: 'adamw', schedule: 'step', augment: true }],
      ['--precision mixed (float16 activations; the GradScaler state in the checkpoint)', { precision: 'mixed', momentum: 0.9 }],
    ];
    const base = { arch: '1,1', growth: 4, size: 16, batch: 20, 'log-every': 100, data };
    for (const [name, flags] of runs) {
      test(`${name}: resuming gives exactly the run straight through, and the settings are in the checkpoint and the log`, async () => {
        const a = mkdtempSync(join(tmpdir(), 'train-'));
        await train({ ...base, ...flags, out: a, epochs: 3 });
        const b = mkdtempSync(join(tmpdir(), 'train-'));
        await train({ ...base, ...flags, out: b, epochs: 1, 'schedule-epochs': 3 });
        await train({ ...base, out: b, epochs: 3, resume: join(b, 'checkpoint.safetensors') }); // the settings come from the checkpoint
        const ca = decodeSafetensors(new Uint8Array(readFileSync(join(a, 'checkpoint.safetensors'))));
        const cb = decodeSafetensors(new Uint8Array(readFileSync(join(b, 'checkpoint.safetensors'))));
        expect([...cb.tensors.keys()].sort()).toEqual([...ca.tensors.keys()].sort());
        for (const [k, t] of ca.tensors) expect(Array.from(cb.tensors.get(k)!.data), k).toEqual(Array.from(t.data));
        for (const k of ['recipe', 'optimizer', 'lr', 'momentum', 'nesterov', 'weight-decay', 'schedule', 'augment', 'precision', 'optimizer.param_groups', 'optimizer.steps', 'scheduler', 'scaler']) {
          expect(cb.metadata[k], k).toBe(ca.metadata[k]);
        }
        expect(ca.metadata.precision).toBe(flags.precision ?? 'fp32');
        // 3 epochs of 5 clean steps: the scale is unchanged and the growth tracker counts them.
        if (flags.precision === 'mixed') expect(JSON.parse(ca.metadata.scaler)).toMatchObject({ scale: 65536, _growth_tracker: 15 });
        else expect(ca.metadata.scaler).toBeUndefined();
        const la = JSON.parse(readFileSync(join(a, 'train-log.json'), 'utf8'));
        const lb = JSON.parse(readFileSync(join(b, 'train-log.json'), 'utf8'));
        expect(lb.config).toMatchObject({ recipe: la.config.recipe, optimizer: la.config.optimizer, schedule: la.config.schedule, augment: la.config.augment });
        expect(lb.epochs.map((e: { lr: number }) => e.lr)).toEqual(la.epochs.slice(1).map((e: { lr: number }) => e.lr));
      });
    }

    test('the settings each run gets: the recipe, overridden by explicit flags', async () => {
      const d = mkdtempSync(join(tmpdir(), 'train-'));
      await train({ ...base, recipe: 'densenet', out: d, epochs: 4 });
      const { metadata } = decodeSafetensors(new Uint8Array(readFileSync(join(d, 'checkpoint.safetensors'))));
      expect([metadata.recipe, metadata.optimizer, metadata.lr, metadata.momentum, metadata.nesterov, metadata['weight-decay'], metadata.schedule]).toEqual(['densenet', 'sgd', '0.1', '0.9', 'true', '0.0001', 'multistep']);
      // Two groups: weight decay on the weights of ndim > 1, none on biases and batch-norm parameters.
      const groups = JSON.parse(metadata['optimizer.param_groups']);
      expect(groups.map((g: { weight_decay: number; nesterov: boolean }) => [g.weight_decay, g.nesterov])).toEqual([[1e-4, true], [0, true]]);
      expect(JSON.parse(metadata.scheduler)).toMatchObject({ milestones: [2, 3], gamma: 0.1, last_epoch: 4 });
      // The rate of each epoch: divided by 10 at 50% and at 75% of the 4 epochs.
      const lrs = JSON.parse(readFileSync(join(d, 'train-log.json'), 'utf8')).epochs.map((e: { lr: number }) => e.lr);
      expect(lrs.map((x: number) => x.toPrecision(3))).toEqual(['0.100', '0.100', '0.0100', '0.00100']);
      expect(trainingSettings({ recipe: 'densenet', optimizer: 'adamw' }, 4)).toMatchObject({ optimizer: 'adamw', lr: 1e-3, momentum: 0, nesterov: false, weightDecay: 1e-4, schedule: 'multistep' });
      expect(trainingSettings({ recipe: 'densenet', momentum: 0.5, schedule: 'none', lr: 0.05 }, 4)).toMatchObject({ lr: 0.05, momentum: 0.5, nesterov: true, schedule: 'none' });
      expect(trainingSettings({}, 4)).toMatchObject({ recipe: 'd2l', optimizer: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0, schedule: 'none', augment: false });
      expect(() => trainingSettings({ optimizer: 'adam', momentum: 0.9 }, 4)).toThrow(/--momentum is for --optimizer sgd, not adam/);
      expect(() => trainingSettings({ schedule: 'cosine', 'warmup-epochs': 4 }, 4)).toThrow(/--warmup-epochs 4 leaves no epoch of the cosine schedule in 4/);
    });
  });

  test('a NaN loss stops the run naming the step, and keeps the last good checkpoint', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    const ck = join(out, 'checkpoint.safetensors');
    await expect(train({ ...small, data, out, epochs: 3, 'inject-nan-at': 7 })).rejects.toThrow(
      /loss is NaN at epoch 2, step 3 \(global step 7\).*last good checkpoint is .*checkpoint\.safetensors/,
    );
    const meta = decodeSafetensors(new Uint8Array(readFileSync(ck))).metadata;
    expect(meta.epoch).toBe('1');
  });

  test('training reads the GPU once per --log-every steps, not once per step (issue 12)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'train-'));
    const spy = vi.spyOn(E.Tensor.prototype, 'data');
    let reads = 0;
    try {
      await train({ ...small, data, out, epochs: 1 }); // 5 steps, log-every 100: one read for the epoch
      reads = spy.mock.calls.length;
    } finally {
      spy.mockRestore();
    }
    const saved = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'checkpoint.safetensors')))).tensors.size;
    // One read of the steps' losses and logits, one test batch (40 images), one per tensor saved.
    expect(reads).toBe(1 + 1 + saved);
  });

  describe('resuming and checkpoints (issue 13, items 1, 3, 6)', () => {
    let ck = '';
    const first = async () => {
      if (ck) return ck;
      const out = mkdtempSync(join(tmpdir(), 'train-'));
      await train({ ...small, data, out, epochs: 1, seed: 3 });
      ck = join(out, 'checkpoint.safetensors');
      return ck;
    };
    /** The checkpoint rewritten with some metadata changed (undefined removes the key), or a tensor replaced. */
    const rewrite = (path: string, change: Record<string, string | undefined>, tensor?: [string, number]) => {
      const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(path)));
      const meta: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...metadata, ...change })) if (v !== undefined && k !== 'data_crc32') meta[k] = v;
      if (tensor) tensors.get(tensor[0])!.data[0] = tensor[1];
      const to = join(mkdtempSync(join(tmpdir(), 'ck-')), 'checkpoint.safetensors');
      writeFileSync(to, encodeSafetensors(tensors, meta));
      return to;
    };

    test('a flag that contradicts the checkpoint is refused naming both values', async () => {
      const resume = await first();
      for (const [flag, value, theirs] of [['growth', 8, 4], ['arch', '2,2', '1,1'], ['batch', 10, 20], ['size', 32, 16], ['seed', 0, 3]] as const) {
        expect(() => planTrain({ ...small, data, epochs: 2, resume, [flag]: value }), flag).toThrow(
          new RegExp(`--${flag} ${value} does not match the checkpoint .*checkpoint.safetensors, which was trained with ${flag} ${theirs}`),
        );
      }
      for (const [flag, value, theirs] of [['recipe', 'densenet', 'd2l'], ['optimizer', 'adam', 'sgd'], ['lr', 0.05, 0.1], ['momentum', 0, 0.9], ['schedule', 'cosine', 'none'], ['augment', true, false]] as const) {
        expect(() => planTrain({ data, epochs: 2, resume, [flag]: value }), flag).toThrow(
          new RegExp(`--${flag} ${value} does not match the checkpoint .*checkpoint.safetensors, which was trained with ${flag} ${theirs}`),
        );
      }
      // The same values as the checkpoint's are fine.
      expect(planTrain({ ...small, data, epochs: 2, resume, seed: 3 }).config.growth).toBe(4);
    });

    test("without those flags the run adopts the checkpoint's model, and writes it into the metadata and the log", async () => {
      const resume = await first();
      const out = mkdtempSync(join(tmpdir(), 'train-'));
      // No growth/arch/size/batch/seed flags: the defaults (growth 32, arch 4,4,4,4, ...) must not leak in.
      await train({ data, out, epochs: 2, resume, 'log-every': 100 });
      const meta = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'checkpoint.safetensors')))).metadata;
      expect([meta.growth, meta.arch, meta.size, meta.batch, meta.seed, meta.epoch]).toEqual(['4', '1,1', '16', '20', '3', '2']);
      const log = JSON.parse(readFileSync(join(out, 'train-log.json'), 'utf8'));
      expect([log.config.growth, log.config.arch, log.config.size, log.config.batch, log.config.seed]).toEqual([4, [1, 1], 16, 20, 3]);
      // The tensors are those of that model: it loads them strictly.
      const model = new DenseNet({ growthRate: 4, arch: [1, 1] });
      E.scope(() => void model.predict(E.zeros([1, 1, 16, 16])));
      const state = new Map([...readCheckpoint(join(out, 'checkpoint.safetensors')).model].map(([k, t]) => [k, E.tensor(t.data, t.shape)]));
      model.loadStateDict(state);
      for (const t of state.values()) t.dispose();
      model.dispose();
    });

    test('a checkpoint of the first format (momentum buffers under optimizer.momentum_buffer.<i>) still resumes exactly', async () => {
      const resume = await first();
      const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(resume)));
      const old = new Map<string, (typeof tensors extends Map<string, infer T> ? T : never)>();
      for (const [k, t] of tensors) {
        const m = /^optimizer\.state\.(\d+)\.momentum_buffer$/.exec(k);
        old.set(m ? `optimizer.momentum_buffer.${m[1]}` : k, t);
      }
      const keep = ['model', 'growth', 'arch', 'size', 'epoch', 'step', 'seed', 'lr', 'batch'];
      const oldMeta: Record<string, string> = { format: 'densenet-webgpu-train-1' };
      for (const k of keep) oldMeta[k] = metadata[k];
      const legacy = join(mkdtempSync(join(tmpdir(), 'ck-')), 'old.safetensors');
      writeFileSync(legacy, encodeSafetensors(old, oldMeta));
      const a = mkdtempSync(join(tmpdir(), 'train-'));
      const b = mkdtempSync(join(tmpdir(), 'train-'));
      await train({ data, out: a, epochs: 2, resume, 'log-every': 100 });
      await train({ data, out: b, epochs: 2, resume: legacy, momentum: 0.9, 'log-every': 100 }); // format 1 did not record the momentum
      const pa = params(join(a, 'checkpoint.safetensors'));
      const pb = params(join(b, 'checkpoint.safetensors'));
      for (const [k, v] of pa) expect(Array.from(pb.get(k)!), k).toEqual(Array.from(v));
      expect(() => planTrain({ data, epochs: 2, resume: legacy, optimizer: 'adam' })).toThrow(/--optimizer adam does not match the checkpoint .*old.safetensors, which was trained with optimizer sgd/);
    });

    test('bad metadata names the key; corrupt data names the file; nothing to train is said', async () => {
      const resume = await first();
      expect(() => readCheckpoint(rewrite(resume, { epoch: 'two' }))).toThrow(/checkpoint .*: the metadata key 'epoch' is "two"; expected an integer >= 0/);
      expect(() => readCheckpoint(rewrite(resume, { step: '-1' }))).toThrow(/the metadata key 'step' is "-1"; expected an integer >= 0/);
      expect(() => readCheckpoint(rewrite(resume, { growth: undefined }))).toThrow(/the metadata key 'growth' is missing/);
      expect(() => readCheckpoint(rewrite(resume, { arch: undefined }))).toThrow(/the metadata key 'arch' is missing/);
      expect(() => readCheckpoint(rewrite(resume, { format: 'x' }))).toThrow(InputError);
      expect(() => readCheckpoint(rewrite(resume, { precision: 'half' }))).toThrow(/the metadata key 'precision' is "half"; expected one of fp32, mixed/);
      expect(() => readCheckpoint(rewrite(resume, { precision: 'mixed' }))).toThrow(/the metadata key 'scaler' is missing; expected the GradScaler's state/);
      expect(() => readCheckpoint(rewrite(resume, { precision: 'mixed', scaler: '{"scale":-1,"_growth_tracker":0}' }))).toThrow(/'scaler' holds .*expected a positive finite scale/);
      // The whole scaler state is checked on the host (before any GPU work), as GradScaler.loadStateDict would.
      const scaler = { scale: 65536, growth_factor: 2, backoff_factor: 0.5, growth_interval: 2000, _growth_tracker: 5 };
      for (const bad of ['null', '[]', JSON.stringify({ scale: 1024, _growth_tracker: 0 }), JSON.stringify({ ...scaler, growth_factor: 0.5 }), JSON.stringify({ ...scaler, growth_interval: 1.5 })]) {
        expect(() => readCheckpoint(rewrite(resume, { precision: 'mixed', scaler: bad })), bad).toThrow(/the metadata key 'scaler' holds .*; expected .*the GradScaler's state \(GradScaler/);
        expect(() => readCheckpoint(rewrite(resume, { precision: 'mixed', scaler: bad })), bad).toThrow(InputError);
      }
      // A mixed-precision checkpoint resumed with --precision fp32 (or the reverse) is refused naming both.
      const mixed = rewrite(resume, { precision: 'mixed', scaler: JSON.stringify(scaler) });
      expect(readCheckpoint(mixed).scaler).toEqual(scaler);
      expect(() => planTrain({ data, epochs: 2, resume: mixed, precision: 'fp32' })).toThrow(/--precision fp32 does not match the checkpoint .*, which was trained with precision mixed: leave --precision out/);
      expect(() => planTrain({ data, epochs: 2, resume, precision: 'mixed' })).toThrow(/--precision mixed does not match the checkpoint .*, which was trained with precision fp32/);
      // Checkpoints written before mixed precision existed have no 'precision': they were fp32 runs.
      expect(readCheckpoint(rewrite(resume, { precision: undefined })).meta.precision).toBe('fp32');
      const bytes = new Uint8Array(readFileSync(resume));
      bytes[bytes.length - 100] ^= 0x40;
      const flipped = join(mkdtempSync(join(tmpdir(), 'ck-')), 'flipped.safetensors');
      writeFileSync(flipped, bytes);
      expect(() => planTrain({ data, epochs: 2, resume: flipped })).toThrow(/flipped.safetensors: the data section's CRC32 is/);
      expect(() => planTrain({ data, epochs: 1, resume })).toThrow(/has 1 epoch\(s\) done, so --epochs 1 leaves nothing to train/);
    });

    test('the trainer refuses to start from non-finite parameters, or to save them, naming the tensors', async () => {
      const resume = await first();
      const poisoned = rewrite(resume, {}, ['net.0.0.weight', NaN]);
      expect(() => planTrain({ data, epochs: 2, resume: poisoned })).toThrow(/non-finite values in 1 tensor\(s\): net.0.0.weight \(NaN at index 0\); refusing to start/);
      const out = join(mkdtempSync(join(tmpdir(), 'ck-')), 'checkpoint.safetensors');
      const w = E.tensor([1, Infinity]);
      const model = { stateDict: () => new Map([['stem.weight', w]]) } as unknown as DenseNet;
      const meta = { growth: 4, arch: [1, 1], size: 16, batch: 20, seed: 0, epoch: 1, step: 0, ...trainingSettings({}, 1) };
      const p0 = E.zeros([2]);
      p0.requiresGrad = true;
      const opt = new SGD([p0], { lr: 0.1 });
      await expect(saveCheckpoint(out, model, opt, null, meta)).rejects.toThrow(
        /refusing to write the checkpoint .*: non-finite values in 1 tensor\(s\): stem.weight \(Infinity at index 1\)/,
      );
      expect(existsSync(out)).toBe(false);
      w.dispose();
      p0.dispose();
    });
  });

  test('degenerate data is refused before training (issue 13, item 5)', () => {
    expect(() => planTrain({ ...small, data: syntheticDataset(0, 1), epochs: 1 })).toThrow(/train-images-idx3-ubyte.gz: the training set has 0 images/);
    expect(() => planTrain({ ...small, data: syntheticDataset(10, 1, 0), epochs: 1 })).toThrow(/t10k-images-idx3-ubyte: the test set has 0 images/);
    expect(() => planTrain({ ...small, data: syntheticDataset(10, 1, 10, 0), epochs: 1 })).toThrow(/the images are 0x0/);
  });
});
