// `densenet-bench report --out DIR [--quick]`: what the engine does on the adapter it finds, in one
// unattended run: the adapter with its features and limits, the tuner (when the engine has one), the
// kernel self-checks against the CPU reference, `speed` for the seed's DenseNet and DenseNet-121 (naive
// and memory-efficient), `kernels` and `memory`. Writes DIR/report.json, DIR/report.md, DIR/speed.svg
// and DIR/memory.svg; progress goes to stderr.
//
// It must stay under 10 minutes on a real GPU, and a software adapter (lavapipe) cannot run the big
// rows at all in that time: every speed row after the first is estimated from the first row's time per
// FLOP and skipped, with a note in the report, when the estimate exceeds the row budget on a software
// adapter or what is left of the total budget. --quick runs small sizes only (a test runs it).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import { countFlops } from '../nn/index.js';
import { runKernels } from './kernels.js';
import { blockStepPeak } from './block_peak.js';
import { runTune } from './tune.js';
import { svgPlot } from './memory.js';
import { buildModel, defaultChannels, type ModelName } from './models.js';
import { Reporter, type Row } from './report.js';
import { runSpeed } from './speed.js';
// The kernel self-checks live in one place, shared with the browser demo page.
import { runSelfChecks, type CheckResult } from './web/selfcheck.js';

export interface ReportOptions {
  out: string;
  quick: boolean;
  /** Total time budget in seconds (rows that would not fit are skipped). */
  budgetS?: number;
}

type Column = [key: string, title: string, format?: (v: Row[string]) => string];

/** A Reporter that keeps tables and text for the report files instead of printing them. */
class Collector extends Reporter {
  tables: Array<{ rows: Row[]; columns: Column[] }> = [];
  texts: string[] = [];
  constructor(private readonly t0: number) {
    super(false);
  }
  override table(rows: Row[], columns: Column[]): void {
    this.tables.push({ rows, columns });
  }
  override text(s: string): void {
    this.texts.push(s);
  }
  override progress(s: string): void {
    process.stderr.write(`report [${((performance.now() - this.t0) / 1000).toFixed(0)} s] ${s}\n`);
  }
  take(): { tables: Array<{ rows: Row[]; columns: Column[] }>; texts: string[] } {
    const r = { tables: this.tables, texts: this.texts };
    this.tables = [];
    this.texts = [];
    return r;
  }
}

interface SpeedPlan {
  model: ModelName;
  batch: number;
  size: number;
  memoryEfficient: boolean;
  precision: E.Precision;
}

/** The speed rows of a full run and of --quick: naive and memory-efficient, each in fp32 and (with shader-f16) mixed precision. */
function speedPlan(quick: boolean, precisions: E.Precision[]): SpeedPlan[] {
  const rows: Array<[ModelName, number, number]> = quick
    ? [['d2l', 2, 32], ['densenet121', 2, 32]]
    : [['d2l', 8, 64], ['d2l', 256, 96], ['densenet121', 8, 224], ['densenet121', 32, 224]];
  return rows.flatMap(([model, batch, size]) =>
    [false, true].flatMap((memoryEfficient) => precisions.map((precision) => ({ model, batch, size, memoryEfficient, precision }))),
  );
}

/** A software adapter gets at most this long per speed row (estimated). */
const SOFTWARE_ROW_BUDGET_S = 90;
/** Steps a speed row runs: per mode one warm-up, one peak-memory step, one profiled step, `iters` timed. */
const STEPS_PER_MODE = 3;

/** Training FLOPs per image per input pixel of a model (from a batch-1 forward at a small size). */
function flopsPerImagePixel(model: ModelName, cache: Map<ModelName, number>): number {
  let f = cache.get(model);
  if (f === undefined) {
    const size = 64;
    E.manualSeed(0);
    const { model: m } = buildModel(model, defaultChannels(model), true);
    const x = E.randn([1, defaultChannels(model), size, size]);
    const fl = countFlops(() => E.scope(() => void m(x)));
    m.dispose();
    x.dispose();
    f = (fl.forward + fl.backward) / (size * size);
    cache.set(model, f);
  }
  return f;
}

function adapterInfo(g: E.Gpu) {
  const a = g.adapter;
  const limits: Record<string, number> = {};
  // GPUSupportedLimits keeps its fields on the prototype: walk it.
  for (let o = g.limits as object; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const k of Object.getOwnPropertyNames(o)) {
      const v = (g.limits as unknown as Record<string, unknown>)[k];
      if (typeof v === 'number' && !(k in limits)) limits[k] = v;
    }
  }
  return {
    vendor: a.vendor, architecture: a.architecture, description: a.description, isFallbackAdapter: a.isFallbackAdapter,
    /** 'hardware' when the rules treat the adapter as a hardware GPU whatever it is (DENSENET_RULES, see engine/variants.ts). */
    rules: E.rulesAssumeHardware() ? 'hardware' : 'adapter',
    features: { ...g.features },
    limits: Object.fromEntries(Object.entries(limits).sort(([x], [y]) => x.localeCompare(y))),
  };
}

/**
 * Tunes the kernels at the seed DenseNet's training-step shapes (engine/tuner.ts) and leaves tuning on,
 * so the speed rows that follow run the measured choices; returns what it chose per shape.
 */
async function runTuner(rep: Reporter, quick: boolean): Promise<{ status: string; rows: Row[] }> {
  const t0 = performance.now();
  const size: [number, number] = quick ? [32, 32] : [64, 64];
  const batch = quick ? 2 : 8;
  E.setTuneMode('on');
  const rows = await runTune({ model: 'd2l', batch, size, channels: 1 }, rep);
  const changed = rows.filter((r) => r.chosen !== r.heuristic).length;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  return { status: `tuned ${rows.length} shapes of the seed DenseNet (batch ${batch}, ${size.join('x')}) in ${secs} s; ${changed} differ from the heuristic`, rows };
}

export async function runReport(o: ReportOptions): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const budget = o.budgetS ?? (o.quick ? 120 : 540);
  const rep = new Collector(t0);
  mkdirSync(o.out, { recursive: true });
  const g = E.gpu();
  const adapter = adapterInfo(g);
  const software = g.adapter.isFallbackAdapter;
  rep.progress(`adapter ${adapter.vendor} / ${adapter.architecture} / ${adapter.description}${software ? ' (software)' : ''}; writing ${o.out}`);

  rep.progress('tuner...');
  const tuner = await runTuner(rep, o.quick);
  rep.take(); // runTune's own table is in tuner.rows

  rep.progress('kernel self-checks against the CPU reference...');
  const selfChecks: CheckResult[] = await runSelfChecks((r) => rep.progress(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}`));

  // Speed rows; the first one (the seed's DenseNet, naive) calibrates the time estimates.
  const speed: Row[] = [];
  const skipped: Array<{ row: string; reason: string }> = [];
  const flopCache = new Map<ModelName, number>();
  let msPerGflop: number | null = null;
  const iters = o.quick ? 1 : 3;
  const precisions: E.Precision[] = E.mixedSupported() ? ['fp32', 'mixed'] : ['fp32'];
  if (!E.mixedSupported()) rep.progress("this adapter has no 'shader-f16': fp32 rows only");
  for (const p of speedPlan(o.quick, precisions)) {
    const name = `${p.model} batch ${p.batch} ${p.size}x${p.size} ${p.memoryEfficient ? 'efficient' : 'naive'} ${p.precision}`;
    if (msPerGflop !== null) {
      const gflop = (flopsPerImagePixel(p.model, flopCache) * p.batch * p.size * p.size) / 1e9;
      // forward (about a third of a training step) and train, each STEPS_PER_MODE + iters steps
      const estS = (msPerGflop * gflop * (4 / 3) * (STEPS_PER_MODE + iters)) / 1000;
      const reason = software && estS > SOFTWARE_ROW_BUDGET_S
        ? `estimated ${estS.toFixed(0)} s on a software adapter (limit ${SOFTWARE_ROW_BUDGET_S} s per row)`
        : elapsed() + estS > budget ? `estimated ${estS.toFixed(0)} s, more than the ${(budget - elapsed()).toFixed(0)} s left of the report's budget` : null;
      if (reason) {
        rep.progress(`skip ${name}: ${reason}`);
        skipped.push({ row: name, reason });
        continue;
      }
    }
    rep.progress(`speed ${name}...`);
    try {
      const rows = await runSpeed({
        model: p.model, batch: p.batch, size: [p.size, p.size], channels: defaultChannels(p.model), modes: ['forward', 'train'],
        warmup: 1, iters, memoryEfficient: [p.memoryEfficient], precision: [p.precision],
      }, rep);
      rep.take();
      speed.push(...rows);
      const train = rows.find((r) => r.mode === 'train');
      if (msPerGflop === null && train) msPerGflop = (train.ms as number) / ((train.flopsPerStep as number) / 1e9);
    } catch (e) {
      const reason = `failed: ${(e as Error).message.split('\n')[0]}`;
      rep.progress(`${name} ${reason}`);
      skipped.push({ row: name, reason });
      await E.pool.trim();
    }
  }

  const kSize = o.quick ? 32 : 64;
  const kBatch = o.quick ? 2 : 8;
  rep.progress(`kernels: d2l batch ${kBatch} ${kSize}x${kSize}...`);
  await runKernels({ model: 'd2l', batch: kBatch, size: [kSize, kSize], channels: 1, iters: o.quick ? 1 : 3, memoryEfficient: true }, rep);
  const kernels = rep.take();

  const depths = o.quick ? [2, 4] : [4, 8, 16, 32];
  const mSize = o.quick ? 8 : 32;
  const memory: Row[] = [];
  for (const depth of depths) {
    const row: Row = { vary: 'depth', depth };
    for (const precision of precisions) for (const eff of [false, true]) {
      rep.progress(`memory: block of ${depth} layers, ${eff ? 'memory-efficient' : 'naive'}, ${precision}...`);
      row[`${precision === 'mixed' ? 'mixed' : ''}${eff ? 'efficient' : 'naive'}PeakBytes`] = await blockStepPeak('d2l', depth, 8, [mSize, mSize], eff, true, precision);
    }
    memory.push(row);
  }
  const memoryTitle = `peak bytes of one d2l dense block's training step (batch 8, 64 input channels, ${mSize}x${mSize})`;
  writeFileSync(join(o.out, 'memory.svg'), svgPlot(memory, 'depth', memoryTitle));
  writeFileSync(join(o.out, 'speed.svg'), speedSvg(speed));

  const report = {
    engine: 'densenet-webgpu',
    generated: new Date().toISOString(),
    quick: o.quick,
    adapter,
    tuner,
    selfChecks,
    speed,
    skipped,
    kernels: kernels.tables.map((t) => t.rows),
    kernelNotes: kernels.texts,
    memory: { title: memoryTitle, rows: memory },
    seconds: elapsed(),
  };
  writeFileSync(join(o.out, 'report.json'), JSON.stringify(report, null, 1));
  writeFileSync(join(o.out, 'report.md'), markdown(report, kernels.tables));
  rep.progress(`done in ${elapsed().toFixed(0)} s: ${join(o.out, 'report.md')}`);
  return report;
}

// ---- output ---------------------------------------------------------------------------------------

const num = (d: number) => (v: Row[string]) => (typeof v === 'number' ? v.toFixed(d) : String(v ?? ''));
const mibOf = (v: Row[string]) => (typeof v === 'number' ? (v / 2 ** 20).toFixed(1) : String(v ?? ''));

function mdTable(rows: Row[], columns: Column[]): string {
  const head = `| ${columns.map(([, t]) => t).join(' | ')} |\n| ${columns.map(() => '---').join(' | ')} |`;
  const body = rows.map((r) => `| ${columns.map(([k, , f]) => (f ? f(r[k]) : String(r[k] ?? ''))).join(' | ')} |`);
  return [head, ...body].join('\n');
}

function markdown(r: {
  generated: string; quick: boolean; adapter: ReturnType<typeof adapterInfo>; tuner: { status: string; rows: Row[] }; selfChecks: CheckResult[];
  speed: Row[]; skipped: Array<{ row: string; reason: string }>; kernelNotes: string[]; memory: { title: string; rows: Row[] }; seconds: number;
}, kernelTables: Array<{ rows: Row[]; columns: Column[] }>): string {
  const a = r.adapter;
  const f = a.features;
  const out: string[] = [];
  out.push(`# densenet-webgpu on ${a.vendor} / ${a.architecture} / ${a.description}`, '');
  out.push(`Generated ${r.generated}${r.quick ? ' (--quick: small sizes only)' : ''}; took ${r.seconds.toFixed(0)} s.`, '');
  out.push(`- software adapter: ${a.isFallbackAdapter}`);
  if (a.rules === 'hardware') out.push('- kernel rules: as on a hardware GPU (DENSENET_RULES=hardware), not this adapter\'s own');
  out.push(`- features: subgroups=${f.subgroups}${f.subgroups ? ` (size ${f.subgroupMinSize}-${f.subgroupMaxSize})` : ''}, timestamp-query=${f.timestampQuery}, shader-f16=${f.shaderF16}`);
  out.push('', '<details><summary>limits</summary>', '', mdTable(Object.entries(a.limits).map(([k, v]) => ({ k, v })), [['k', 'limit'], ['v', 'value']]), '', '</details>', '');
  out.push('## Tuner', '', r.tuner.status, '');
  out.push(mdTable(r.tuner.rows, [['family', 'family'], ['shape', 'shape'], ['chosen', 'chosen'], ['heuristic', 'heuristic'], ['gain', 'gain', (v) => (typeof v === 'number' ? v.toFixed(2) : '')]]), '');
  const failed = r.selfChecks.filter((c) => !c.ok).length;
  out.push('## Kernel self-checks against the CPU reference', '', `${r.selfChecks.length - failed} passed, ${failed} failed.`, '');
  out.push(mdTable(r.selfChecks as unknown as Row[], [['name', 'check'], ['ok', 'ok'], ['maxAbsErr', 'max abs error', (v) => (typeof v === 'number' ? v.toExponential(2) : '')], ['error', 'error']]), '');
  out.push('## Speed (one training step = forward, loss, backward, SGD)', '', '![speed](speed.svg)', '');
  out.push(mdTable(r.speed, [
    ['model', 'model'], ['impl', 'blocks'], ['precision', 'precision'], ['mode', 'mode'], ['batch', 'batch'], ['size', 'input'], ['ms', 'ms/step', num(1)],
    ['imgPerSec', 'img/s', num(1)], ['gflops', 'GFLOP/s', num(2)], ['dispatches', 'dispatches'], ['gpuMs', 'GPU ms', num(1)],
    ['hostMs', 'host ms', num(1)], ['peakBytes', 'peak MiB', mibOf],
  ]), '');
  if (r.skipped.length) out.push('Rows not run:', '', ...r.skipped.map((s) => `- ${s.row}: ${s.reason}`), '');
  out.push('## Kernels (seed DenseNet shapes)', '');
  kernelTables.forEach((t, i) => {
    if (r.kernelNotes[i]) out.push(r.kernelNotes[i].trim(), '');
    out.push(mdTable(t.rows, t.columns), '');
  });
  out.push('## Memory', '', r.memory.title, '', '![memory](memory.svg)', '');
  const mixedMemory = r.memory.rows.some((row) => row.mixedefficientPeakBytes !== undefined);
  out.push(mdTable(r.memory.rows, [
    ['depth', 'layers'], ['naivePeakBytes', 'naive MiB', mibOf], ['efficientPeakBytes', 'efficient MiB', mibOf],
    ...(mixedMemory ? ([['mixednaivePeakBytes', 'mixed naive MiB', mibOf], ['mixedefficientPeakBytes', 'mixed efficient MiB', mibOf]] as Column[]) : []),
  ]), '');
  return out.join('\n');
}

/** Horizontal bars: ms per training step of each speed row. */
function speedSvg(rows: Row[]): string {
  const train = rows.filter((r) => r.mode === 'train');
  const W = 640;
  const bar = 22;
  const left = 260;
  const H = 40 + bar * Math.max(1, train.length);
  const max = Math.max(1e-9, ...train.map((r) => r.ms as number));
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<text x="8" y="16">ms per training step</text>`];
  train.forEach((r, i) => {
    const y = 28 + i * bar;
    const w = ((W - left - 70) * (r.ms as number)) / max;
    parts.push(`<text x="8" y="${y + 14}">${esc(`${r.model} ${r.impl} ${r.precision} b${r.batch} ${r.size}`)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${bar - 6}" fill="${r.impl === 'efficient' ? '#2a7' : '#888'}"/>`,
      `<text x="${(left + w + 4).toFixed(1)}" y="${y + 14}">${(r.ms as number).toFixed(1)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
