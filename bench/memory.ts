// `densenet-bench memory`: the buffer pool's peak bytes during one training step, against the depth
// of one dense block (--vary depth) or the batch size of the whole model (--vary batch), naive against
// memory-efficient blocks, each in fp32 and mixed precision (float16 activations) side by side; a table
// and an SVG plot.

import { writeFileSync } from 'node:fs';
import * as E from '../engine/index.js';
import { blockStepPeak } from './block_peak.js';
import type { ModelName } from './models.js';
import { Reporter, mib, type Row } from './report.js';
import { prepare, usablePrecisions } from './speed.js';
import { trainStep } from './step.js';
import { lineChart, type Series } from './plot.js';

export interface MemoryOptions {
  model: ModelName;
  vary: 'depth' | 'batch';
  batch: number;
  size: [number, number];
  channels: number;
  plot: string;
  precision?: E.Precision[];
}

async function modelStepPeak(o: MemoryOptions, batch: number, memoryEfficient: boolean, precision: E.Precision): Promise<number> {
  const { model, x, labels } = prepare({ ...o, batch }, memoryEfficient, true, precision);
  const { step, dispose } = trainStep(model, x, labels, precision, 0.01);
  step();
  await E.sync();
  E.pool.resetPeak();
  step();
  await E.sync();
  const peak = E.memory().peakBytes;
  dispose();
  model.dispose();
  x.dispose();
  labels.dispose();
  await E.pool.trim();
  return peak;
}

export async function runMemory(o: MemoryOptions, rep: Reporter): Promise<void> {
  const xs = o.vary === 'depth' ? [4, 8, 16, 32] : [1, 2, 4, 8, 16];
  const rows: Row[] = [];
  const precisions = usablePrecisions(o.precision ?? ['fp32'], rep);
  const mixed = precisions.includes('mixed');
  const fp32 = precisions.includes('fp32');
  for (const v of xs) {
    const row: Row = { vary: o.vary, [o.vary]: v };
    for (const precision of precisions) for (const eff of [false, true]) {
      rep.progress(`${o.vary} ${v}, ${eff ? 'memory-efficient' : 'naive'}, ${precision}...`);
      const peak = o.vary === 'depth' ? await blockStepPeak(o.model, v, o.batch, o.size, eff, true, precision) : await modelStepPeak(o, v, eff, precision);
      row[`${precision === 'mixed' ? 'mixed' : ''}${eff ? 'efficient' : 'naive'}PeakBytes`] = peak;
    }
    if (fp32) row.ratio = (row.efficientPeakBytes as number) / (row.naivePeakBytes as number);
    if (mixed) row.mixedRatio = (row.mixedefficientPeakBytes as number) / (row.mixednaivePeakBytes as number);
    if (mixed && fp32) row.mixedOverFp32 = (row.mixedefficientPeakBytes as number) / (row.efficientPeakBytes as number);
    rows.push(row);
  }
  const what = o.vary === 'depth'
    ? `one dense block (${o.model === 'd2l' ? 'd2l, growth 32' : 'DenseNet-BC, growth 32, bottleneck 4'}) on ${o.batch}x64x${o.size.join('x')}, forward + backward`
    : `${o.model} on ${o.channels}x${o.size.join('x')}, one training step`;
  rep.text(`Peak GPU bytes of ${what}:`);
  const ratio = (r: Row[string]) => (r as number).toFixed(2);
  type Col = [string, string, (v: Row[string]) => string];
  rep.table(rows, [
    [o.vary, o.vary === 'depth' ? 'layers' : 'batch'],
    ...(fp32 ? ([['naivePeakBytes', 'naive MiB', mib], ['efficientPeakBytes', 'efficient MiB', mib], ['ratio', 'efficient/naive', ratio]] as Col[]) : []),
    ...(mixed ? ([['mixednaivePeakBytes', 'mixed naive MiB', mib], ['mixedefficientPeakBytes', 'mixed efficient MiB', mib], ['mixedRatio', 'mixed efficient/naive', ratio]] as Col[]) : []),
    ...(mixed && fp32 ? ([['mixedOverFp32', 'mixed/fp32 (efficient)', ratio]] as Col[]) : []),
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
    series: [
      ...(rows[0].naivePeakBytes !== undefined ? [line('naive', '#d62728', 'naivePeakBytes'), line('memory-efficient', '#1f77b4', 'efficientPeakBytes')] : []),
      ...(rows[0].mixednaivePeakBytes !== undefined
        ? [line('naive, mixed precision', '#ff9896', 'mixednaivePeakBytes'), line('memory-efficient, mixed precision', '#2ca02c', 'mixedefficientPeakBytes')]
        : []),
    ],
  });
}
