// The demo page (bench/web/index.html, built to dist/web/main.js). It imports the library's browser
// modules (dist/browser/{engine,nn,models,data}/index.js, what the package's `browser` condition gives) at run
// time, builds the seed's DenseNet or loads a checkpoint, classifies Fashion-MNIST test images from the
// demo server (bench/web/serve.ts), trains in the page with a live loss curve, and shows the adapter and
// the engine's GPU memory. `window.demo` exposes the same actions to the end-to-end test
// (test/browser.test.ts).

import * as E from '../../engine/index.js';
import * as nn from '../../nn/index.js';
import * as models from '../../models/index.js';
import * as data from '../../data/index.js';
import { runSelfChecks, type CheckResult } from './selfcheck.js';
import { measurePageSpeed, speedRows, type PageSpeedOptions, type PageSpeedResult } from './speed.js';

type DenseNet = InstanceType<typeof models.DenseNet>;

export const CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const TEST_IMAGES = 64;
const TRAIN_IMAGES = 4096;
const SHOWN = 24;

interface ImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  synthetic: boolean;
}

interface ModelState {
  model: DenseNet;
  growth: number;
  arch: number[];
  size: number;
  source: string;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let state: ModelState | null = null;
let testSet: ImageSet | null = null;
let trainSet: ImageSet | null = null;
/** Class probabilities of the test images (softmax on the GPU), [n * 10], and the predicted classes (argmax on the GPU). */
let probs: Float32Array | null = null;
let predicted: Float32Array | null = null;
let selected = 0;
let stopRequested = false;
const losses: number[] = [];

// One GPU job at a time: buttons and the test API share this queue.
let queue: Promise<unknown> = Promise.resolve();
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

function setStatus(id: string, text: string, cls = ''): void {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${cls}`;
}

// ---- data --------------------------------------------------------------------------------------

async function fetchImages(split: 'train' | 'test', n: number): Promise<ImageSet> {
  const res = await fetch(`/data/${split}?n=${n}`);
  if (!res.ok) throw new Error(`GET /data/${split}: ${res.status} ${await res.text()}`);
  const buf = new Uint8Array(await res.arrayBuffer());
  const dv = new DataView(buf.buffer);
  const [count, height, width, flags] = [0, 1, 2, 3].map((i) => dv.getUint32(4 * i, true));
  return {
    count, height, width, synthetic: (flags & 1) === 1,
    labels: buf.subarray(16, 16 + count),
    images: buf.subarray(16 + count, 16 + count + count * height * width),
  };
}

/** The library's loader over a set: [0, 1] images [B, 1, size, size] (resized on the GPU) and labels. */
function loaderOf(set: ImageSet, size: number, options: data.DataLoaderOptions): data.DataLoader {
  const transforms = size === set.height && size === set.width ? [] : [data.resize(size)];
  return new data.DataLoader(new data.IdxDataset(set), { ...options, transforms, expectShape: [1, size, size] });
}

// ---- the model ---------------------------------------------------------------------------------

function replaceModel(next: ModelState): void {
  state?.model.dispose();
  state = next;
  probs = null;
  predicted = null;
  losses.length = 0;
  drawLoss();
  const m = next.model;
  $<HTMLInputElement>('growth').value = String(next.growth);
  $<HTMLInputElement>('arch').value = next.arch.join(',');
  setStatus('model-status', `${next.source}: DenseNet(growth ${next.growth}, arch [${next.arch}]), ${m.numParameters().toLocaleString('en')} parameters, input ${next.size}x${next.size}`);
}

/** The seed's DenseNet with fresh weights (lazy layers materialised with one image). */
async function buildModel({ growth = 32, arch = [4, 4, 4, 4], memoryEfficient = true, seed = 0 } = {}): Promise<void> {
  return exclusive(async () => {
    E.manualSeed(seed);
    const model = new models.DenseNet({ growthRate: growth, arch, memoryEfficient });
    const size = 32;
    E.scope(() => void model.predict(E.zeros([1, 1, size, size])));
    replaceModel({ model, growth, arch, size, source: 'new model' });
  });
}

/**
 * Loads a state dict of the seed's DenseNet from safetensors bytes: a `densenet-bench train` checkpoint
 * (its metadata gives the input size) or any d2l state dict. Growth rate and blocks come from the keys.
 */
async function loadCheckpoint(bytes: Uint8Array, name: string, memoryEfficient = true): Promise<void> {
  return exclusive(async () => {
    const { tensors, metadata } = nn.decodeSafetensors(bytes);
    const conv = tensors.get('net.dense_blk1.net.0.2.weight');
    if (!conv) throw new Error(`${name}: no 'net.dense_blk1.net.0.2.weight': not a state dict of the seed's DenseNet (d2l)`);
    const growth = conv.shape[0];
    const arch: number[] = [];
    for (let b = 1; tensors.has(`net.dense_blk${b}.net.0.2.weight`); b++) {
      let j = 0;
      while (tensors.has(`net.dense_blk${b}.net.${j}.2.weight`)) j++;
      arch.push(j);
    }
    const size = metadata.size ? Number(metadata.size) : 32;
    const model = new models.DenseNet({ growthRate: growth, arch, memoryEfficient });
    const dict = new Map<string, E.Tensor>();
    for (const [k, t] of tensors) if (k.startsWith('net.')) dict.set(k, E.tensor(t.data, t.shape));
    try {
      model.loadStateDict(dict);
    } catch (e) {
      model.dispose();
      throw e;
    } finally {
      for (const t of dict.values()) t.dispose();
    }
    const epoch = metadata.epoch ? `, epoch ${metadata.epoch}` : '';
    replaceModel({ model, growth, arch, size, source: `${name}${epoch}` });
  });
}

// ---- classification ----------------------------------------------------------------------------

async function classify(): Promise<{ accuracy: number; predictions: number[] }> {
  return exclusive(async () => {
    if (!state || !testSet) throw new Error('no model or no test images yet');
    const { model, size } = state;
    const n = testSet.count;
    const all = new Float32Array(n * 10);
    const best = new Float32Array(n);
    let at = 0;
    for (const [x] of loaderOf(testSet, size, { batchSize: 32 })) {
      const [p, top] = E.scope(() => {
        const p = E.softmax(model.predict(x), 1);
        return [p, E.argmax(p, 1)];
      });
      all.set(await p.data(), at * 10);
      best.set(await top.data(), at);
      at += x.shape[0];
      p.dispose();
      top.dispose();
    }
    probs = all;
    predicted = best;
    const predictions = Array.from(best);
    const correct = predictions.filter((p, i) => p === testSet!.labels[i]).length;
    const accuracy = correct / n;
    setStatus('acc', `accuracy on these ${n} test images: ${(100 * accuracy).toFixed(1)}% (${correct}/${n})`);
    drawGallery();
    showProbs();
    return { accuracy, predictions };
  });
}

const TILE_W = 112;
const TILE_H = 114;

function drawGallery(): void {
  const cv = $<HTMLCanvasElement>('gallery');
  const ctx = cv.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, cv.width, cv.height);
  if (!testSet) return;
  const { height: H, width: W } = testSet;
  const tmp = document.createElement('canvas');
  tmp.width = W;
  tmp.height = H;
  const tctx = tmp.getContext('2d')!;
  const img = tctx.createImageData(W, H);
  const cols = Math.floor(cv.width / TILE_W);
  for (let i = 0; i < Math.min(SHOWN, testSet.count); i++) {
    for (let k = 0; k < H * W; k++) {
      const v = 255 - testSet.images[i * H * W + k];
      img.data.set([v, v, v, 255], 4 * k);
    }
    tctx.putImageData(img, 0, 0);
    const x0 = (i % cols) * TILE_W;
    const y0 = Math.floor(i / cols) * TILE_H;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, x0 + 14, y0 + 2, 84, 84);
    if (i === selected) {
      ctx.strokeStyle = '#e07b24';
      ctx.lineWidth = 3;
      ctx.strokeRect(x0 + 12, y0 + 1, 88, 87);
    }
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    const truth = testSet.labels[i];
    if (probs && predicted) {
      const p = predicted[i];
      ctx.fillStyle = p === truth ? '#070' : '#b00';
      ctx.fillText(`${CLASS_NAMES[p]} ${(100 * probs[i * 10 + p]).toFixed(0)}%`, x0 + TILE_W / 2, y0 + 99);
    }
    ctx.fillStyle = '#777';
    ctx.fillText(`(${CLASS_NAMES[truth]})`, x0 + TILE_W / 2, y0 + 111);
  }
}

function showProbs(): void {
  const table = $<HTMLTableElement>('probs');
  table.innerHTML = '';
  if (!testSet) return;
  $('selected').textContent = `test image ${selected}: ${CLASS_NAMES[testSet.labels[selected]]}`;
  if (!probs || !predicted) return;
  const top = predicted[selected];
  CLASS_NAMES.forEach((name, c) => {
    const p = probs![selected * 10 + c];
    const row = table.insertRow();
    row.insertCell().textContent = name;
    const bar = document.createElement('span');
    bar.className = c === top ? 'bar top' : 'bar';
    bar.style.width = `${Math.max(1, Math.round(160 * p))}px`;
    row.insertCell().append(bar);
    row.insertCell().textContent = `${(100 * p).toFixed(1)}%`;
  });
}

// ---- training ----------------------------------------------------------------------------------

function drawLoss(): void {
  const cv = $<HTMLCanvasElement>('loss');
  const ctx = cv.getContext('2d')!;
  const W = cv.width;
  const H = cv.height;
  // The legend sits in the top margin, above the plot, so it never covers the curve.
  const m = { l: 44, r: 10, t: 24, b: 26 };
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = '#999';
  ctx.lineWidth = 1;
  ctx.strokeRect(m.l, m.t, W - m.l - m.r, H - m.t - m.b);
  ctx.fillStyle = '#444';
  ctx.font = '11px system-ui, sans-serif';
  const n = losses.length;
  const xmax = Math.max(10, n);
  const ymax = Math.max(0.5, ...losses.filter(Number.isFinite)) * 1.05;
  const px = (i: number) => m.l + ((W - m.l - m.r) * i) / xmax;
  const py = (v: number) => H - m.b - ((H - m.t - m.b) * v) / ymax;
  ctx.textAlign = 'right';
  for (let k = 0; k <= 4; k++) ctx.fillText(((ymax * k) / 4).toFixed(2), m.l - 4, py((ymax * k) / 4) + 4);
  ctx.textAlign = 'center';
  ctx.fillText(`step (${n})`, (m.l + W - m.r) / 2, H - 6);
  ctx.fillText('0', px(0), H - m.b + 12);
  ctx.fillText(String(xmax), px(xmax), H - m.b + 12);
  const line = (vals: number[], color: string, width: number) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    vals.forEach((v, i) => (i ? ctx.lineTo(px(i + 1), py(v)) : ctx.moveTo(px(i + 1), py(v))));
    ctx.stroke();
  };
  const legend = [['loss per step', '#9bb6e6', 1], ['smoothed', '#1f4fb4', 2]] as const;
  ctx.textAlign = 'left';
  let lx = m.l;
  for (const [label, color, width] of legend) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(lx, m.t - 10);
    ctx.lineTo(lx + 18, m.t - 10);
    ctx.stroke();
    ctx.fillStyle = '#444';
    ctx.fillText(label, lx + 22, m.t - 6);
    lx += 30 + ctx.measureText(label).width;
  }
  if (!n) return;
  line(losses, '#9bb6e6', 1);
  const ema: number[] = [];
  losses.forEach((v, i) => ema.push(i ? 0.9 * ema[i - 1] + 0.1 * v : v));
  line(ema, '#1f4fb4', 2);
}

export interface TrainOptions {
  steps?: number;
  batch?: number;
  lr?: number;
  momentum?: number;
  seed?: number;
  /** For tests: make the loss NaN at this step (1-based), as the CLI's --inject-nan-at does. */
  injectNanAt?: number;
}

/** Training reads its losses back once every this many steps (every step when fewer remain). */
export const READ_EVERY = 10;

async function train({ steps = 200, batch = 32, lr = 0.1, momentum = 0, seed = 1, injectNanAt = 0 }: TrainOptions = {}): Promise<number[]> {
  return exclusive(async () => {
    if (!state || !trainSet) throw new Error('no model or no training images yet');
    const { model, size } = state;
    const set = trainSet;
    const opt = new nn.SGD(model.parameters(), { lr, momentum });
    // Shuffled batches from the library's loader, a new order each pass over the images.
    const loader = loaderOf(set, size, { batchSize: Math.min(batch, set.count), shuffle: true, dropLast: true, generator: new E.Generator(seed + losses.length) });
    const got: number[] = [];
    stopRequested = false;
    ($('stop') as HTMLButtonElement).disabled = false;
    ($('train') as HTMLButtonElement).disabled = true;
    const t0 = performance.now();
    // The steps of a window run without reading anything back (and without yielding to the page); then
    // the window's losses come back in one read, are checked for NaN step by step, and extend the curve
    // (one point per step). The Stop button and the status line therefore act at the next read-back.
    let pending: E.Tensor[] = [];
    let step = 0;
    const readPending = async () => {
      const w = pending;
      pending = [];
      const all = E.scope(() => E.cat(w.map((l) => E.reshape(l, [1]))));
      for (const l of w) l.dispose();
      const host = await all.data().finally(() => all.dispose());
      const first = step - w.length; // steps first+1 .. step are in this window
      for (let i = 0; i < host.length; i++) {
        const v = host[i];
        if (!Number.isFinite(v)) {
          const bad = first + i + 1;
          const later = bad + 1 === step ? `step ${step}` : `steps ${bad + 1}-${step}`;
          const after = bad < step ? ` (${later}, in the same read-back window, had already run)` : '';
          drawLoss(); // the good steps before it
          throw new Error(`the loss is ${v} at step ${bad}; stopping${after}`);
        }
        losses.push(v);
        got.push(v);
      }
      drawLoss();
      const secs = (performance.now() - t0) / 1000;
      setStatus('train-status', `step ${step}/${steps}: loss ${host[host.length - 1].toFixed(4)}, ${((step * batch) / secs).toFixed(1)} images/s`);
      updateMemory();
    };
    try {
      while (step < steps && !stopRequested) {
        for (const [x, y] of loader) {
          const loss = E.scope(() => {
            opt.zeroGrad();
            let l = nn.crossEntropy(model(x), y);
            if (step + 1 === injectNanAt) l = E.mul(l, E.tensor(Number.NaN));
            l.backward();
            opt.step();
            return l;
          });
          pending.push(loss);
          step++;
          if (pending.length === READ_EVERY || step >= steps) await readPending();
          if (step >= steps || stopRequested) break;
        }
      }
    } finally {
      for (const l of pending) l.dispose();
      opt.zeroGrad(); // the last step's gradients are not needed after training: the page's live memory returns to what it was
      opt.dispose();
      ($('stop') as HTMLButtonElement).disabled = true;
      ($('train') as HTMLButtonElement).disabled = false;
    }
    return got;
  });
}

// ---- the adapter and memory ---------------------------------------------------------------------

function adapterInfo() {
  const g = E.gpu();
  const l = g.limits;
  return {
    vendor: g.adapter.vendor,
    architecture: g.adapter.architecture,
    description: g.adapter.description,
    isFallbackAdapter: g.adapter.isFallbackAdapter,
    features: { ...g.features },
    deviceFeatures: [...g.device.features].sort(),
    limits: {
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
    kernels: { matmul: E.heuristicVariant('matmul'), conv: E.heuristicVariant('conv'), batchNormStats: E.heuristicVariant('bnStats') },
    variants: { matmul: E.supportedVariants('matmul'), conv: E.supportedVariants('conv'), batchNormStats: E.supportedVariants('bnStats') },
  };
}

function showAdapter(): void {
  const a = adapterInfo();
  const f = a.features;
  const rows: Array<[string, string]> = [
    ['adapter', `${a.vendor || '?'} / ${a.architecture || '?'}${a.description ? ` (${a.description})` : ''}${a.isFallbackAdapter ? ', software (fallback) adapter' : ''}`],
    ['features', a.deviceFeatures.join(', ')],
    ['subgroups', f.subgroups ? `yes, size ${f.subgroupMinSize}${f.subgroupMaxSize !== f.subgroupMinSize ? `-${f.subgroupMaxSize}` : ''}` : 'no'],
    ['shader-f16 / timestamps', `${f.shaderF16 ? 'yes' : 'no'} / ${f.timestampQuery ? 'yes' : 'no'}`],
    ['workgroup', `${a.limits.maxComputeInvocationsPerWorkgroup} invocations, ${a.limits.maxComputeWorkgroupStorageSize / 1024} KiB shared`],
    ['buffers', `${E.formatBytes(a.limits.maxBufferSize)} max, ${a.limits.maxStorageBuffersPerShaderStage} storage per stage`],
    ['kernels chosen', `matmul ${a.kernels.matmul}, conv ${a.kernels.conv}, batch-norm stats ${a.kernels.batchNormStats}`],
    ['GPU memory', ''],
  ];
  const t = $<HTMLTableElement>('adapter');
  t.innerHTML = '';
  for (const [k, v] of rows) {
    const r = t.insertRow();
    r.insertCell().textContent = k;
    const c = r.insertCell();
    c.textContent = v;
    if (k === 'features') c.className = 'features';
    if (k === 'GPU memory') c.id = 'memory';
  }
  updateMemory();
}

function updateMemory(): void {
  const el = document.getElementById('memory');
  if (!el || !E.isInitialised()) return;
  const m = E.memory();
  el.textContent = `live ${E.formatBytes(m.liveBytes)} (${m.liveBuffers} buffers), peak ${E.formatBytes(m.peakBytes)}, cached ${E.formatBytes(m.cachedBytes)}`;
}

function showNoWebGpu(detail: string): void {
  $('nogpu').hidden = false;
  const why = window.isSecureContext ? '' : ' This page is not a secure context: open it from http://127.0.0.1 or https.';
  $('nogpu-msg').textContent = `${detail}${why}`;
  for (const b of document.querySelectorAll('button, input')) (b as HTMLButtonElement).disabled = true;
  $('adapter').innerHTML = '<tr><td>status</td><td class="bad">no WebGPU</td></tr>';
}

// ---- the fixed-weights check (the test compares its logits with Node's) ----------------------------

async function fixtureCheck(url = '/fixtures/d2l_small.safetensors') {
  return exclusive(async () => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    const { tensors } = nn.decodeSafetensors(new Uint8Array(await res.arrayBuffer()));
    const model = new models.DenseNet({ growthRate: 8, arch: [2, 2] });
    const dict = new Map<string, E.Tensor>();
    for (const [k, t] of tensors) if (k.startsWith('net.')) dict.set(k, E.tensor(t.data, t.shape));
    model.loadStateDict(dict);
    for (const t of dict.values()) t.dispose();
    const inp = tensors.get('input')!;
    const x = E.tensor(inp.data, inp.shape);
    // As test/models.test.ts: one training-mode forward (batch statistics, running stats updated), then eval.
    const yt = E.noGrad(() => model(x));
    const logitsTrain = Array.from(await yt.data());
    const ye = model.predict(x);
    const logitsEval = Array.from(await ye.data());
    for (const t of [x, yt, ye]) t.dispose();
    model.dispose();
    return {
      shape: [...ye.shape],
      logitsTrain,
      logitsEval,
      pytorchTrain: Array.from(tensors.get('logits_train')!.data),
      pytorchEval: Array.from(tensors.get('logits_eval')!.data),
    };
  });
}

// ---- wiring ------------------------------------------------------------------------------------

function readArch(): number[] {
  const arch = ($<HTMLInputElement>('arch').value || '4,4,4,4').split(',').map((s) => Number(s.trim()));
  if (!arch.length || !arch.every((n) => Number.isInteger(n) && n >= 1)) throw new Error('arch needs comma-separated positive integers, e.g. 4,4,4,4');
  if (arch.length > 4) throw new Error('at most 4 dense blocks fit a 32x32 input');
  return arch;
}

function reportError(where: string, e: unknown): void {
  const msg = (e as Error)?.message ?? String(e);
  console.error(`${where}:`, e);
  setStatus(where === 'train' ? 'train-status' : 'model-status', `${where} failed: ${msg}`, 'bad');
}

function wire(): void {
  $('build').onclick = () =>
    buildModel({ growth: Number($<HTMLInputElement>('growth').value), arch: readArch(), memoryEfficient: $<HTMLInputElement>('memeff').checked })
      .then(classify)
      .catch((e) => reportError('build', e));
  $<HTMLInputElement>('ckpt').onchange = async (ev) => {
    const file = (ev.target as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      setStatus('model-status', `loading ${file.name}...`);
      await loadCheckpoint(new Uint8Array(await file.arrayBuffer()), file.name, $<HTMLInputElement>('memeff').checked);
      await classify();
    } catch (e) {
      reportError('load', e);
    }
  };
  $('classify').onclick = () => classify().catch((e) => reportError('classify', e));
  $('train').onclick = () =>
    train({ steps: Number($<HTMLInputElement>('steps').value), batch: Number($<HTMLInputElement>('batch').value), lr: Number($<HTMLInputElement>('lr').value) })
      .then(classify)
      .catch((e) => reportError('train', e));
  $('stop').onclick = () => (stopRequested = true);
  $('run-checks').onclick = () => checks().catch((e) => reportError('checks', e));
  $('speed').onclick = () => speed().catch((e) => console.error('speed:', e));
  $('gallery').onclick = (ev) => {
    const cv = $<HTMLCanvasElement>('gallery');
    const r = cv.getBoundingClientRect();
    // The canvas may be drawn smaller than its pixel size on a narrow page: back to canvas pixels.
    const x = ((ev.clientX - r.left) * cv.width) / r.width;
    const y = ((ev.clientY - r.top) * cv.height) / r.height;
    const cols = Math.floor(cv.width / TILE_W);
    const i = Math.floor(y / TILE_H) * cols + Math.floor(x / TILE_W);
    if (testSet && i >= 0 && i < Math.min(SHOWN, testSet.count)) {
      selected = i;
      drawGallery();
      showProbs();
    }
  };
}

/** The speed panel: a training step of the architecture in the model panel, untuned and tuned (./speed.ts). */
async function speed(options: Partial<PageSpeedOptions> = {}): Promise<PageSpeedResult> {
  return exclusive(async () => {
    const button = $<HTMLButtonElement>('speed');
    button.disabled = true;
    $<HTMLTableElement>('speed-table').innerHTML = '';
    try {
      const o: PageSpeedOptions = {
        growth: options.growth ?? Number($<HTMLInputElement>('growth').value),
        arch: options.arch ?? readArch(),
        memoryEfficient: options.memoryEfficient ?? $<HTMLInputElement>('memeff').checked,
        batch: options.batch ?? Number($<HTMLInputElement>('speed-batch').value),
        size: options.size ?? 32,
        iters: options.iters ?? Number($<HTMLInputElement>('speed-iters').value),
      };
      const r = await measurePageSpeed(o, (line) => setStatus('speed-status', line));
      const t = $<HTMLTableElement>('speed-table');
      for (const [k, v] of speedRows(r)) {
        const row = t.insertRow();
        row.insertCell().textContent = k;
        row.insertCell().textContent = v;
      }
      setStatus('speed-status', 'done', 'ok');
      updateMemory();
      return r;
    } catch (e) {
      setStatus('speed-status', `speed failed: ${(e as Error)?.message ?? e}`, 'bad');
      throw e;
    } finally {
      button.disabled = false;
    }
  });
}

async function checks(): Promise<CheckResult[]> {
  return exclusive(async () => {
    const ul = $('checks');
    ul.innerHTML = '';
    return runSelfChecks((r) => {
      const li = document.createElement('li');
      li.className = r.ok ? 'ok' : 'bad';
      li.textContent = `${r.ok ? 'PASS' : 'FAIL'} ${r.name}: max |err| ${r.maxAbsErr.toExponential(1)} (${r.ms.toFixed(0)} ms)${r.error ? ` ${r.error}` : ''}`;
      ul.append(li);
    });
  });
}

async function start(): Promise<ReturnType<typeof adapterInfo>> {
  wire();
  if (!('gpu' in navigator) || !navigator.gpu) {
    showNoWebGpu(E.NO_WEBGPU_HINT);
    throw new Error('no WebGPU');
  }
  try {
    await E.init();
  } catch (e) {
    showNoWebGpu(`WebGPU is present but no device could be created: ${(e as Error).message}`);
    throw e;
  }
  showAdapter();
  setInterval(updateMemory, 500);
  [testSet, trainSet] = await Promise.all([fetchImages('test', TEST_IMAGES), fetchImages('train', TRAIN_IMAGES)]);
  $('data-note').textContent = testSet.synthetic
    ? '(synthetic images: Fashion-MNIST is not installed on the server; apt-get install dataset-fashion-mnist)'
    : `(the first ${testSet.count} of the test set; training uses the first ${trainSet.count} training images)`;
  drawGallery();
  showProbs();
  drawLoss();
  const params = new URLSearchParams(location.search);
  // ?model=none leaves the model to the caller (the test builds a small one).
  if (params.get('model') !== 'none') {
    setStatus('model-status', "building the seed's DenseNet...");
    await buildModel({ growth: Number(params.get('growth') ?? 32), arch: (params.get('arch') ?? '4,4,4,4').split(',').map(Number) });
    await classify();
  }
  return adapterInfo();
}

const ready = start();
ready.catch((e) => console.error('densenet-webgpu demo:', e));

declare global {
  interface Window {
    demo: typeof demo;
  }
}
const demo = {
  ready,
  adapterInfo,
  selfChecks: checks,
  fixtureCheck,
  buildModel,
  loadCheckpoint: (bytes: number[] | Uint8Array, name = 'checkpoint') => loadCheckpoint(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes), name),
  classify,
  train,
  speed,
  memory: () => E.memory(),
  lossHistory: () => [...losses],
  /** Reads from the GPU so far (the test counts those of a training run) and the steps per loss read-back. */
  readbacks: () => E.readbacks(),
  readEvery: READ_EVERY,
};
window.demo = demo;
