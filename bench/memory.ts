// `densenet-bench memory`: the buffer pool's peak bytes during one training step, against the depth
// of one dense block (--vary depth) or the batch size of the whole model (--vary batch), naive against
// memory-efficient blocks; a table and an SVG plot.

import { writeFileSync } from 'node:fs';
import * as E from '../engine/index.js';
import { SGD, crossEntropy } from '../nn/index.js';
import { blockStepPeak } from './block_peak.js';
import type { ModelName } from './models.js';
import { Reporter, mib, type Row } from './report.js';
import { prepare } from './speed.js';
import { lineChart, type Series } from './plot.js';

export interface MemoryOptions {
  model: ModelName;
  vary: 'depth' | 'batch';
  batch: number;
  size: [number, number];
  channels: number;
  plot: string;
}

async function modelStepPeak(o: MemoryOptions, batch: number, memoryEfficient: boolean): Promise<number> {
  const { model, x, labels } = prepare({ ...o, batch }, memoryEfficient);
  const opt = new SGD(model.parameters(), { lr: 0.01 });
  const step = () =>
    E.scope(() => {
      opt.zeroGrad();
      crossEntropy(model(x), labels).backward();
      opt.step();
    });
  step();
  await E.sync();
  E.pool.resetPeak();
  step();
  await E.sync();
  const peak = E.memory().peakBytes;
  opt.zeroGrad();
  opt.dispose();
  model.dispose();
  x.dispose();
  labels.dispose();
  await E.pool.trim();
  return peak;
}

export async function runMemory(o: MemoryOptions, rep: Reporter): Promise<void> {
  const xs = o.vary === 'depth' ? [4, 8, 16, 32] : [1, 2, 4, 8, 16];
  const rows: Row[] = [];
  for (const v of xs) {
    const row: Row = { vary: o.vary, [o.vary]: v };
    for (const eff of [false, true]) {
      rep.progress(`${o.vary} ${v}, ${eff ? 'memory-efficient' : 'naive'}...`);
      const peak = o.vary === 'depth' ? await blockStepPeak(o.model, v, o.batch, o.size, eff) : await modelStepPeak(o, v, eff);
      row[eff ? 'efficientPeakBytes' : 'naivePeakBytes'] = peak;
    }
    row.ratio = (row.efficientPeakBytes as number) / (row.naivePeakBytes as number);
    rows.push(row);
  }
  const what = o.vary === 'depth'
    ? `one dense block (${o.model === 'd2l' ? 'd2l, growth 32' : 'DenseNet-BC, growth 32, bottleneck 4'}) on ${o.batch}x64x${o.size.join('x')}, forward + backward`
    : `${o.model} on ${o.channels}x${o.size.join('x')}, one training step`;
  rep.text(`Peak GPU bytes of ${what}:`);
  rep.table(rows, [
    [o.vary, o.vary === 'depth' ? 'layers' : 'batch'],
    ['naivePeakBytes', 'naive MiB', mib],
    ['efficientPeakBytes', 'efficient MiB', mib],
    ['ratio', 'efficient/naive', (r) => (r as number).toFixed(2)],
  ]);
  writeFileSync(o.plot, svgPlot(rows, o.vary, what));
  rep.text(`plot written to ${o.plot}`);
}

/** Peak MiB against depth or batch, one line per implementation. */
export function svgPlot(rows: Row[], vary: string, title: string): string {
  const line = (name: string, color: string, key: string): Series => ({
    name, color, markers: true, points: rows.map((r) => [r[vary] as number, (r[key] as number) / 2 ** 20]),
  });
  return lineChart({
    title,
    xLabel: vary === 'depth' ? 'layers in the block' : 'batch size',
    yLabel: 'peak MiB',
    series: [line('naive', '#d62728', 'naivePeakBytes'), line('memory-efficient', '#1f77b4', 'efficientPeakBytes')],
  });
}
