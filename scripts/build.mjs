// Bundles the library entry points and the benchmark CLI into dist/ with esbuild.
// WGSL files are imported as text (`import src from '../shaders/x.wgsl'`), the same way vitest
// loads them (vitest.config.ts) and ../shared/device/pack.sh bundles them.
// Code splitting keeps one copy of the engine shared by the engine, nn and models entries,
// so a process never ends up with two devices or two buffer pools.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { buildBrowser } from './build-browser.mjs';

const entries = ['engine/index.ts', 'nn/index.ts', 'models/index.ts', 'data/index.ts', 'data/node.ts', 'bench/cli.ts'].filter((f) => existsSync(f));
await build({
  entryPoints: entries,
  outdir: 'dist',
  outbase: '.',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['webgpu'],
  loader: { '.wgsl': 'text' },
  sourcemap: true,
  logLevel: 'warning',
});

// The browser bundle of the library and the demo page (bench/web/), checked for Node-only imports.
await buildBrowser();
