import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import * as E from '../engine/index.js';
import { runReport } from '../bench/adapter_report.js';
import { useEngine } from './helpers.js';

useEngine();
const out = mkdtempSync(join(tmpdir(), 'densenet-report-'));
// The report tunes: keep its choices in memory, not in the user's cache directory.
E.setTuneStore(E.memoryTuneStore());
afterAll(() => {
  E.setTuneStore(null);
  E.setTuneMode('off');
  rmSync(out, { recursive: true, force: true });
});

test('report --quick writes report.json, report.md and the plots, with the adapter first and every self-check passing', async () => {
  await runReport({ out, quick: true });
  const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  expect(Object.keys(r).indexOf('adapter')).toBeLessThan(Object.keys(r).indexOf('speed'));
  expect(r.adapter.limits.maxBufferSize).toBeGreaterThan(0);
  expect(typeof r.adapter.features.subgroups).toBe('boolean');
  expect(r.selfChecks.length).toBeGreaterThan(5);
  expect(r.selfChecks.filter((c: { ok: boolean }) => !c.ok)).toEqual([]);
  // Both models, naive and memory-efficient, fp32 and mixed precision, forward and train, with dispatch counts.
  expect(r.skipped).toEqual([]);
  expect(r.speed).toHaveLength(16);
  expect(r.speed.filter((row: { precision: string }) => row.precision === 'mixed')).toHaveLength(8);
  for (const row of r.speed) {
    expect(row.dispatches).toBeGreaterThan(10);
    expect(row.ms).toBeGreaterThan(0);
    expect(row.peakBytes).toBeGreaterThan(0);
    expect(row.hostMs).toBeGreaterThan(0);
    expect(row.hostMs).toBeLessThanOrEqual(row.ms);
  }
  expect(r.memory.rows.length).toBe(2);
  expect(r.memory.rows[1].mixedefficientPeakBytes).toBeLessThan(r.memory.rows[1].efficientPeakBytes);
  expect(r.selfChecks.some((c: { name: string }) => /float16/.test(c.name))).toBe(true);
  expect(r.kernels[0].some((k: { kernel: string }) => k.kernel.startsWith('conv input grad ['))).toBe(true); // named with its variant
  expect(r.tuner.rows.length).toBeGreaterThan(0);
  expect(r.tuner.status).toMatch(/^tuned \d+ shapes/);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  expect(md.split('\n')[0]).toMatch(/^# densenet-webgpu on /);
  for (const h of ['## Tuner', '## Kernel self-checks', '## Speed', '## Kernels', '## Memory']) expect(md).toContain(h);
  expect(md).toContain('| GPU ms | host ms | peak MiB |');
  for (const f of ['speed.svg', 'memory.svg']) expect(readFileSync(join(out, f), 'utf8')).toMatch(/^<svg /);
}, 120_000);
