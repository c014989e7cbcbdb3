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
  E.pool.trim();
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

/** A small line chart: peak MiB against depth or batch, one line per implementation. */
export function svgPlot(rows: Row[], vary: string, title: string): string {
  const W = 640;
  const H = 400;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const xs = rows.map((r) => r[vary] as number);
  const series: Array<[string, string, number[]]> = [
    ['naive', '#d62728', rows.map((r) => (r.naivePeakBytes as number) / 2 ** 20)],
    ['memory-efficient', '#1f77b4', rows.map((r) => (r.efficientPeakBytes as number) / 2 ** 20)],
  ];
  const ymax = Math.max(...series.flatMap(([, , ys]) => ys)) * 1.1 || 1;
  const xmax = Math.max(...xs);
  const px = (x: number) => m.l + ((W - m.l - m.r) * x) / xmax;
  const py = (y: number) => H - m.b - ((H - m.t - m.b) * y) / ymax;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${vary === 'depth' ? 'layers in the block' : 'batch size'}</text>`,
    `<text x="18" y="${H / 2}" text-anchor="middle" transform="rotate(-90 18 ${H / 2})">peak MiB</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (ymax * i) / 4;
    parts.push(`<text x="${m.l - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(0)}</text>`);
    parts.push(`<line x1="${m.l}" y1="${py(y)}" x2="${W - m.r}" y2="${py(y)}" stroke="#ddd"/>`);
  }
  for (const x of xs) parts.push(`<text x="${px(x)}" y="${H - m.b + 16}" text-anchor="middle">${x}</text>`);
  series.forEach(([name, color, ys], si) => {
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${ys.map((y, i) => `${px(xs[i])},${py(y)}`).join(' ')}"/>`);
    ys.forEach((y, i) => parts.push(`<circle cx="${px(xs[i])}" cy="${py(y)}" r="3" fill="${color}"/>`));
    parts.push(`<rect x="${m.l + 12}" y="${m.t + 8 + si * 18}" width="12" height="3" fill="${color}"/><text x="${m.l + 30}" y="${m.t + 13 + si * 18}">${name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
