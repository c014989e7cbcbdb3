// The library in a real browser: Debian's Chromium, headless, driven by playwright-core, on the demo page
// served from 127.0.0.1 (bench/web/). Chromium's WebGPU adapter here is SwiftShader (subgroups of 4, no
// shader-f16, 256 invocations per workgroup), so this also checks the kernel choices on a second adapter.
// The page runs its kernel self-checks against the CPU reference, the seed's DenseNet with fixed weights
// (test/fixtures/d2l_small.safetensors) whose logits must match this process's (Dawn) and PyTorch's,
// trains a few steps (reading the losses back once per window of steps, freeing every tensor, and stopping
// on a NaN loss with the step named), checks that the page fits a 1024 px window and a phone's width, and
// a screenshot is saved to out/browser-demo.png.
// The suite is opt-in, because it needs Chromium, which the README's `npm test` does not install: run it
// with `npm run test:browser` (DENSENET_TEST_BROWSER=1). .ci/run installs Chromium and runs it.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { DenseNet } from '../models/index.js';
import { startServer, type DemoServer } from '../bench/web/serve.js';
import type { BrowserContext, Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const enabled = process.env.DENSENET_TEST_BROWSER === '1';
if (!enabled) {
  console.warn('test/browser.test.ts skipped: the browser suite is opt-in; run `npm run test:browser` ' +
    "(it needs Debian's Chromium: apt-get install chromium)");
}

// The flags that give headless Chromium navigator.gpu on this machine (../shared/PLATFORM.md).
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic',
];

const root = new URL('../', import.meta.url).pathname;
const fixture = join(root, 'test/fixtures/d2l_small.safetensors');

interface FixtureResult {
  shape: number[];
  logitsTrain: number[];
  logitsEval: number[];
  pytorchTrain: number[];
  pytorchEval: number[];
}

/** The largest excess of |a - b| over atol + rtol * |b| (<= 0: close everywhere). */
function worstExcess(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  expect(a.length).toBe(b.length);
  let worst = -Infinity;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i])));
  return worst;
}

describe.skipIf(!enabled)('the demo page in headless Chromium (WebGPU on SwiftShader)', () => {
  let server: DemoServer;
  let context: BrowserContext;
  let page: Page;
  let userDir: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's Chromium with \`apt-get install -y chromium\` (.ci/run does this), or set CHROMIUM to its path`);
    }
    // The library's browser modules, the page's script and the Node-only check (scripts/build-browser.mjs).
    execFileSync(process.execPath, [join(root, 'scripts/build-browser.mjs')], { cwd: root, stdio: 'inherit' });
    const [{ chromium }] = await Promise.all([import('playwright-core'), E.init()]);
    server = await startServer({ port: 0 });
    userDir = mkdtempSync(join(tmpdir(), 'densenet-chromium-'));
    context = await chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1200, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    // ?model=none: the page does not build the seed's full DenseNet (the test uses small ones).
    await page.goto(`${server.url}?model=none`);
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  test("the library's browser modules have no Node-only import", () => {
    const files = readdirSync(join(root, 'dist/browser'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    expect(files).toEqual(expect.arrayContaining(['engine/index.js', 'nn/index.js', 'models/index.js']));
    for (const f of files) expect(readFileSync(join(root, 'dist/browser', f), 'utf8'), f).not.toMatch(/["'`](?:webgpu|node:[\w/]+)["'`]/);
  });

  test('the page gets a WebGPU device and picks kernels for the adapter', async () => {
    const info = await page.evaluate(() => window.demo.ready);
    console.log(`browser adapter: ${info.vendor}/${info.architecture}, subgroups ${info.features.subgroups ? info.features.subgroupMinSize : 'none'}, ` +
      `kernels ${JSON.stringify(info.kernels)}`);
    expect(info.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
    expect(info.limits.maxComputeWorkgroupSizeX).toBeGreaterThanOrEqual(64);
    if (info.features.subgroups && info.features.subgroupMaxSize < 8) {
      // SwiftShader (subgroups of 4): the kernels that share values among 8 lanes must not be chosen.
      expect(info.kernels.conv).not.toBe('subgroup');
      expect(info.kernels.matmul).not.toBe('sg8');
    }
    expect(await page.locator('#adapter').textContent()).toContain('GPU memory');
  });

  test('kernel self-checks in the page match the CPU reference', async () => {
    const results = await page.evaluate(() => window.demo.selfChecks());
    const failed = results.filter((r) => !r.ok);
    for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}: max |err| ${r.maxAbsErr.toExponential(1)}${r.error ? ` (${r.error})` : ''}`);
    expect(results.length).toBeGreaterThanOrEqual(8);
    expect(failed.map((r) => `${r.name}: ${r.error ?? `worst excess ${r.worstExcess}`}`)).toEqual([]);
  });

  test("the seed's DenseNet with fixed weights gives the same logits in the browser as in Node (and PyTorch)", async () => {
    const web = (await page.evaluate(() => window.demo.fixtureCheck('/fixtures/d2l_small.safetensors'))) as FixtureResult;
    // The same steps in this process, on Dawn: load, one training-mode forward, then eval.
    const t = await nn.loadSafetensors(readFileSync(fixture));
    const model = new DenseNet({ growthRate: 8, arch: [2, 2] });
    model.loadStateDict(new Map([...t].filter(([k]) => k.startsWith('net.'))));
    const x = t.get('input')!;
    const nodeTrain = await E.noGrad(() => model(x)).data();
    const nodeEval = await model.predict(x).data();
    model.dispose();
    for (const v of t.values()) v.dispose();
    expect(web.shape).toEqual([x.shape[0], 10]);
    expect(worstExcess(web.logitsTrain, nodeTrain, 1e-4, 1e-5), 'train-mode logits, browser vs Node').toBeLessThanOrEqual(0);
    expect(worstExcess(web.logitsEval, nodeEval, 1e-4, 1e-5), 'eval-mode logits, browser vs Node').toBeLessThanOrEqual(0);
    expect(worstExcess(web.logitsTrain, web.pytorchTrain, 1e-4, 1e-5), 'train-mode logits, browser vs PyTorch').toBeLessThanOrEqual(0);
    expect(worstExcess(web.logitsEval, web.pytorchEval, 1e-4, 1e-5), 'eval-mode logits, browser vs PyTorch').toBeLessThanOrEqual(0);
  });

  test('a checkpoint loads through the file input and classifies the test images', async () => {
    await page.setInputFiles('#ckpt', fixture);
    await page.locator('#model-status', { hasText: 'd2l_small.safetensors: DenseNet(growth 8, arch [2,2])' }).waitFor({ timeout: 60_000 });
    await page.locator('#acc', { hasText: 'accuracy on these' }).waitFor({ timeout: 60_000 });
    const { predictions } = await page.evaluate(() => window.demo.classify());
    expect(predictions.length).toBeGreaterThan(0);
    expect(predictions.every((p) => p >= 0 && p < 10)).toBe(true);
  });

  test('the page fits a 1024 px window and a narrow screen (no horizontal scrolling); it says what "seed" and "d2l" are', async () => {
    const link = page.locator('#about-model a');
    expect(await link.getAttribute('href')).toBe('https://d2l.ai/chapter_convolutional-modern/densenet.html');
    try {
      for (const width of [1024, 800, 390]) {
        await page.setViewportSize({ width, height: 900 });
        const { scrollWidth, clientWidth } = await page.evaluate(() => ({
          scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
        }));
        expect(scrollWidth, `page width at a ${width} px viewport`).toBeLessThanOrEqual(clientWidth);
      }
    } finally {
      await page.setViewportSize({ width: 1200, height: 1000 });
    }
  });

  test('the speed panel times a training step untuned and tuned on this adapter, and frees what it made', async () => {
    await expect(page.evaluate(() => window.demo.speed({ growth: 8, arch: [2], batch: 0, iters: 2 }))).rejects.toThrow(/batch must be a positive integer, got 0/);
    expect(await page.locator('#speed-status').textContent()).toContain('speed failed: speed: batch must be a positive integer, got 0');
    const r = await page.evaluate(() => window.demo.speed({ growth: 8, arch: [2], batch: 2, iters: 2 }));
    const supported = await page.evaluate(() => window.demo.adapterInfo().variants);
    console.log(`speed in the page: untuned ${r.untunedMs.toFixed(1)} ms, tuned ${r.tunedMs.toFixed(1)} ms (${r.ratio.toFixed(3)}), ` +
      `${r.shapes} shapes tuned in ${r.tuneSeconds.toFixed(1)} s, chosen ${JSON.stringify(r.chosen)}`);
    expect(r.untunedMs).toBeGreaterThan(0);
    expect(r.tunedMs).toBeGreaterThan(0);
    expect(r.dispatches.untuned).toBeGreaterThan(10);
    expect(r.dispatches.tuned).toBeGreaterThan(10);
    expect(r.hostMs.untuned).toBeGreaterThan(0);
    expect(r.hostMs.untuned).toBeLessThanOrEqual(r.untunedMs); // each step's host part is within its time
    expect(r.hostMs.tuned).toBeGreaterThan(0);
    expect(r.hostMs.tuned).toBeLessThanOrEqual(r.tunedMs);
    expect(r.shapes).toBeGreaterThan(0);
    expect(r.changed).toBeLessThanOrEqual(r.shapes);
    // Every chosen variant is one this adapter supports (the panel reports conv, matmul and batch-norm stats).
    const byFamily: Record<string, string[]> = { conv: supported.conv, matmul: supported.matmul, bnStats: supported.batchNormStats };
    for (const key of Object.keys(r.chosen)) {
      const [family, variant] = key.split(' ');
      if (byFamily[family]) expect(byFamily[family], key).toContain(variant);
    }
    expect(Object.keys(r.chosen).some((k) => k.startsWith('conv '))).toBe(true);
    const table = await page.locator('#speed-table').textContent();
    expect(table).toContain(`tuned / untuned${r.ratio.toFixed(3)}`);
    expect(table).toContain(`${r.shapes} shapes measured`);
    expect(await page.locator('#speed-status').textContent()).toBe('done');
    // Again: every shape is tuned already (nothing new is measured, the stored choices run), and the run
    // leaves live GPU memory as it found it (the first run also made the optimiser's process-wide constants).
    const live = await page.evaluate(() => window.demo.memory().liveBytes);
    const again = await page.evaluate(() => window.demo.speed({ growth: 8, arch: [2], batch: 2, iters: 1 }));
    expect(again.shapes).toBe(0);
    expect(await page.locator('#speed-table').textContent()).toContain('every shape was measured before');
    expect(await page.evaluate(() => window.demo.memory().liveBytes), 'live GPU bytes after the speed run').toBe(live);
  });

  test('a browser without WebGPU gets a clear message saying what to do', async () => {
    const p2 = await context.newPage();
    try {
      // Hide navigator.gpu, as in a browser without WebGPU.
      await p2.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
      await p2.goto(`${server.url}?model=none`);
      await p2.locator('#nogpu').waitFor({ state: 'visible', timeout: 30_000 });
      const text = await p2.locator('#nogpu').textContent();
      expect(text).toContain('no WebGPU');
      expect(text).toContain('--enable-unsafe-webgpu');
      expect(await p2.locator('#train').isDisabled()).toBe(true);
    } finally {
      await p2.close();
    }
  });

  test('training in the page lowers the loss, reads the losses back once per window of steps, and frees its tensors; the screenshot is saved', async () => {
    await page.evaluate(() => window.demo.buildModel({ growth: 8, arch: [2, 2], seed: 0 }));
    // One step first: the engine's and the optimiser's process-wide constants (768 bytes here) are made on first use.
    await page.evaluate(() => window.demo.train({ steps: 1, batch: 16, lr: 0.1, seed: 1 }));
    const steps = 12; // not a multiple of the read-back window: the last read covers the 2 steps left
    const before = await page.evaluate(() => ({ readbacks: window.demo.readbacks(), live: window.demo.memory().liveBytes }));
    const losses = await page.evaluate((steps) => window.demo.train({ steps, batch: 16, lr: 0.1, seed: 1 }), steps);
    const after = await page.evaluate(() => ({ readbacks: window.demo.readbacks(), live: window.demo.memory().liveBytes, history: window.demo.lossHistory() }));
    const readEvery = await page.evaluate(() => window.demo.readEvery);
    console.log(`losses in the page: ${losses.map((v) => v.toFixed(3)).join(' ')}; ${after.readbacks - before.readbacks} read-backs`);
    expect(readEvery).toBeGreaterThan(1);
    expect(after.readbacks - before.readbacks, 'read-backs during training').toBeLessThanOrEqual(Math.ceil(steps / readEvery));
    expect(after.live, 'live GPU bytes after training').toBe(before.live);
    expect(losses).toHaveLength(steps);
    expect(after.history.slice(1)).toEqual(losses); // the curve: one point per step
    expect(losses.every(Number.isFinite)).toBe(true);
    const first = (losses[0] + losses[1] + losses[2]) / 3;
    const last = (losses[steps - 3] + losses[steps - 2] + losses[steps - 1]) / 3;
    expect(last).toBeLessThan(first);
    await page.evaluate(() => window.demo.classify());
    const mem = await page.evaluate(() => window.demo.memory());
    expect(mem.peakBytes).toBeGreaterThan(0);
    expect(await page.locator('#memory').textContent()).toMatch(/live .* peak /);
    mkdirSync(join(root, 'out'), { recursive: true });
    await page.screenshot({ path: join(root, 'out/browser-demo.png'), fullPage: true });
    expect(existsSync(join(root, 'out/browser-demo.png'))).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  test('a NaN loss stops training in the page, naming the step and the later steps of its read-back window that had run', async () => {
    await page.evaluate(() => window.demo.buildModel({ growth: 8, arch: [2, 2], seed: 0 }));
    const live = await page.evaluate(() => window.demo.memory().liveBytes);
    const message = await page.evaluate(() =>
      window.demo.train({ steps: 6, batch: 16, lr: 0.1, seed: 1, injectNanAt: 3 }).then(() => 'no error', (e: Error) => e.message));
    expect(message).toBe('the loss is NaN at step 3; stopping (steps 4-6, in the same read-back window, had already run)');
    const history = await page.evaluate(() => window.demo.lossHistory());
    expect(history).toHaveLength(2); // the good steps before the NaN
    expect(history.every(Number.isFinite)).toBe(true);
    expect(await page.evaluate(() => window.demo.memory().liveBytes), 'live GPU bytes after the stop').toBe(live);
    expect(await page.locator('#train').isDisabled()).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
