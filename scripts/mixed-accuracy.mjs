#!/usr/bin/env node
// Issue 16's accuracy check of mixed precision: the seed's DenseNet on Fashion-MNIST, 32x32, batch 128,
// lr 0.1, one epoch over the first 12,800 training images (a copy of the IDX files cut to them, so every
// run sees the same images), seeds 0-2, in fp32 and in mixed precision; prints each run's test accuracy
// (all 10,000 test images) and the mean per precision.
//   node scripts/mixed-accuracy.mjs [--seeds 0,1,2] [--precisions fp32,mixed] [--images 12800] [--out DIR]
// Needs `npm run build` first (it runs dist/bench/cli.js) and the dataset (apt-get install dataset-fashion-mnist).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const seeds = (args.seeds ?? '0,1,2').split(',').map(Number);
const precisions = (args.precisions ?? 'fp32,mixed').split(',');
const images = Number(args.images ?? 12800);
const out = args.out ?? '/tmp/mixed-accuracy';
const src = '/usr/share/datasets/fashion-mnist';

// The first `images` training images and labels, as IDX files (big-endian dims after a 4-byte magic).
const data = join(out, 'data');
mkdirSync(data, { recursive: true });
const cut = (name, headerBytes, perItem) => {
  const b = gunzipSync(readFileSync(join(src, `${name}.gz`)));
  const head = Buffer.from(b.subarray(0, headerBytes));
  head.writeUInt32BE(images, 4);
  writeFileSync(join(data, name), Buffer.concat([head, b.subarray(headerBytes, headerBytes + images * perItem)]));
};
cut('train-images-idx3-ubyte', 16, 28 * 28);
cut('train-labels-idx1-ubyte', 8, 1);
for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) copyFileSync(join(src, f), join(data, f));

const results = {};
for (const seed of seeds) {
  for (const precision of precisions) {
    const dir = join(out, `${precision}-seed${seed}`);
    const t0 = Date.now();
    execFileSync('node', ['dist/bench/cli.js', 'train', '--epochs', '1', '--batch', '128', '--size', '32', '--lr', '0.1', '--seed', String(seed),
      '--precision', precision, '--data', data, '--out', dir, '--log-every', '25'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const log = JSON.parse(readFileSync(join(dir, 'train-log.json'), 'utf8'));
    const acc = log.summary.testAcc;
    (results[precision] ??= []).push(acc);
    console.log(`${precision} seed ${seed}: test accuracy ${acc.toFixed(4)}, loss ${log.summary.loss.toFixed(4)}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}
const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
for (const p of precisions) console.log(`${p}: mean test accuracy ${mean(results[p]).toFixed(4)} over seeds ${seeds.join(',')}`);
if (results.fp32 && results.mixed) console.log(`mixed - fp32: ${(mean(results.mixed) - mean(results.fp32)).toFixed(4)}`);
