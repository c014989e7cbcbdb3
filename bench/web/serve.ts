// The demo page's static server, loopback only (`npm run demo:web`; built to dist/web/serve.js).
//   /                      bench/web/index.html
//   /web/*                 dist/web/ (the page's script, built by scripts/build-browser.mjs)
//   /browser/*             dist/browser/ (the library bundle the page imports)
//   /data/test?n=N         the first N Fashion-MNIST test images (train: /data/train), as
//                          16 bytes of header (u32 LE: count, height, width, flags; flags bit 0 = synthetic),
//                          then count label bytes, then count * height * width pixel bytes (0-255).
//                          Without the dataset (Debian's dataset-fashion-mnist) the images are synthetic.
//   /fixtures/NAME.safetensors   test/fixtures/ (the browser test's fixed weights)
// Usage: node dist/web/serve.js [--port 8080] [--data DIR]

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import type { ImageSet } from '../../data/idx.js';
import { DEFAULT_DATA_DIR, INSTALL_HINT, readImageSet } from '../data.js';

/** The repository root: this file is bench/web/serve.ts, or dist/web/serve.js when built. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json',
  '.png': 'image/png', '.safetensors': 'application/octet-stream',
};

export interface DemoServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** 0 picks a free port. */
  port?: number;
  /** Fashion-MNIST folder (gzipped or plain IDX files). */
  dataDir?: string;
  /** Repository root (default: found from this file). */
  root?: string;
}

export const MAX_IMAGES = 10_000;

/** Synthetic 28x28 images with a class-dependent shape, for machines without the dataset. */
export function syntheticImages(count: number, seed: number): ImageSet {
  const H = 28;
  const W = 28;
  const images = new Uint8Array(count * H * W);
  const labels = new Uint8Array(count);
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = 0; i < count; i++) {
    const c = i % 10;
    labels[i] = c;
    const img = images.subarray(i * H * W, (i + 1) * H * W);
    const dx = Math.floor(rnd() * 5) - 2;
    const dy = Math.floor(rnd() * 5) - 2;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const u = x - 14 - dx;
        const v = y - 14 - dy;
        // Ten shapes: filled and hollow boxes, bars, discs, rings, diagonals, a cross, a triangle.
        const on = [
          Math.abs(u) < 8 && Math.abs(v) < 10,
          Math.abs(u) < 3 && Math.abs(v) < 12,
          Math.abs(v) < 3 && Math.abs(u) < 12,
          u * u + v * v < 80,
          Math.abs(Math.hypot(u, v) - 9) < 2,
          Math.abs(u - v) < 3 && Math.abs(u) < 11,
          (Math.abs(u) < 2 || Math.abs(v) < 2) && Math.abs(u) < 11 && Math.abs(v) < 11,
          v > -9 && v < 9 && Math.abs(u) < (v + 9) / 2,
          Math.max(Math.abs(u), Math.abs(v)) < 11 && Math.max(Math.abs(u), Math.abs(v)) > 7,
          (Math.abs(u) < 10 && Math.abs(v) < 10) && ((u + 10) >> 2) % 2 === 0,
        ][c];
        const val = (on ? 180 + 60 * rnd() : 25 * rnd()) | 0;
        img[y * W + x] = val;
      }
    }
  }
  return { images, labels, count, height: H, width: W };
}

function findIdx(dir: string, stem: string): string | null {
  for (const name of [stem, `${stem}.gz`]) if (existsSync(join(dir, name))) return join(dir, name);
  return null;
}

export async function startServer({ port = 0, dataDir = DEFAULT_DATA_DIR, root = ROOT }: ServeOptions = {}): Promise<DemoServer> {
  const sets = new Map<string, { set: ImageSet; synthetic: boolean }>();
  const loadSplit = (split: 'train' | 'test') => {
    let e = sets.get(split);
    if (!e) {
      const stem = split === 'train' ? 'train' : 't10k';
      const images = findIdx(dataDir, `${stem}-images-idx3-ubyte`);
      const labels = findIdx(dataDir, `${stem}-labels-idx1-ubyte`);
      if (images && labels) e = { set: readImageSet(images, labels), synthetic: false };
      else {
        console.warn(`Fashion-MNIST not found in ${dataDir}: serving synthetic images (${INSTALL_HINT})`);
        e = { set: syntheticImages(MAX_IMAGES, split === 'train' ? 1 : 2), synthetic: true };
      }
      sets.set(split, e);
    }
    return e;
  };

  const sendFile = (res: ServerResponse, path: string) => {
    if (!existsSync(path) || !statSync(path).isFile()) {
      const hint = path.includes(`${sep}dist${sep}`) ? ' (build it with `npm run build`)' : '';
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path.slice(root.length)}${hint}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(path));
  };

  /** A path under `dir` from the rest of the URL, or null if it tries to leave it. */
  const under = (dir: string, rest: string): string | null => {
    const p = normalize(join(dir, decodeURIComponent(rest)));
    return p.startsWith(dir + sep) ? p : null;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
    if (path === '/' || path === '/index.html') return sendFile(res, join(root, 'bench/web/index.html'));
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    const data = /^\/data\/(train|test)$/.exec(path);
    if (data) {
      const n = Math.max(1, Math.min(MAX_IMAGES, Number(url.searchParams.get('n') ?? 64) || 64));
      const { set, synthetic } = loadSplit(data[1] as 'train' | 'test');
      const count = Math.min(n, set.count);
      const hw = set.height * set.width;
      const out = new Uint8Array(16 + count + count * hw);
      const dv = new DataView(out.buffer);
      [count, set.height, set.width, synthetic ? 1 : 0].forEach((v, i) => dv.setUint32(4 * i, v, true));
      out.set(set.labels.subarray(0, count), 16);
      out.set(set.images.subarray(0, count * hw), 16 + count);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
      return void res.end(out);
    }
    for (const [prefix, dir] of [['/web/', 'dist/web'], ['/browser/', 'dist/browser']] as const) {
      if (path.startsWith(prefix)) {
        const p = under(join(root, dir), path.slice(prefix.length));
        return p ? sendFile(res, p) : void res.writeHead(403).end();
      }
    }
    const fx = /^\/fixtures\/([\w.-]+\.safetensors)$/.exec(path);
    if (fx) return sendFile(res, join(root, 'test/fixtures', fx[1]));
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error: ${(e as Error).message}\n`);
    }
  });
  // Loopback only: the page and its data are for this machine.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const USAGE = 'node dist/web/serve.js [--port 8080] [--data DIR]';

/** A usage error: one line on stderr, exit code 2. */
function usageError(message: string): never {
  console.error(`serve: ${message} (usage: ${USAGE})`);
  process.exit(2);
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new Error(`--port must be a whole number from 0 to 65535 (0: any free port), got '${text}'`);
  return port;
}

async function main(): Promise<void> {
  let values: { port?: string; data?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { port: { type: 'string' }, data: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    usageError((e as Error).message.split(/\.\s/)[0]); // Node's first sentence: "Unknown option '--prot'"
  }
  if (values.help) return void console.log(`usage: ${USAGE}   (serves the demo on 127.0.0.1)`);
  let port = 8080;
  try {
    if (values.port !== undefined) port = parsePort(values.port);
  } catch (e) {
    usageError((e as Error).message);
  }
  const dataDir = values.data ?? DEFAULT_DATA_DIR;
  if (values.data !== undefined && !existsSync(dataDir)) usageError(`--data ${dataDir}: no such folder`);
  let s: DemoServer;
  try {
    s = await startServer({ port, dataDir });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') usageError(`port ${port} on 127.0.0.1 is already in use; choose another with --port N`);
    if (code === 'EACCES') usageError(`port ${port} needs more privileges than this user has; choose one above 1023 with --port N`);
    throw e;
  }
  if (!existsSync(join(ROOT, 'dist/web/main.js'))) console.warn('dist/web/main.js is missing: run `npm run build` first');
  console.log(`densenet-webgpu demo: open ${s.url} in a browser with WebGPU (Ctrl-C stops the server)`);
  console.log('  headless Chromium on Linux needs --enable-unsafe-webgpu; see README.md, "The demo in a browser"');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(`serve: ${(e as Error).message}`);
    process.exit(1);
  });
}
