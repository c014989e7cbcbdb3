// Builds dist/ (`npm run build`; `npm pack` runs it through `prepack`):
//   dist/{engine,nn,models,data}/index.js, dist/data/node.js
//                                      the library for Node, bundled with esbuild; code splitting keeps one
//                                      copy of the engine shared by the entries (dist/chunk-*.js),
//                                      so a process never ends up with two devices or two buffer pools
//   dist/**/*.d.ts                     their type declarations (tsc, tsconfig.build.json)
//   dist/bench/cli.js                  the benchmark CLI (`densenet-bench`)
//   dist/browser/, dist/web/           the browser builds (scripts/build-browser.mjs)
// WGSL files are imported as text (`import src from '../shaders/x.wgsl'`), the same way vitest loads them
// (vitest.config.ts).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildBrowser, LIBRARY_ENTRIES } from './build-browser.mjs';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: [...LIBRARY_ENTRIES, 'data/node.ts', 'bench/cli.ts'],
  outdir: 'dist',
  outbase: '.',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['webgpu'],
  loader: { '.wgsl': 'text' },
  keepNames: true, // class names are user-visible: String(new DenseNet()) prints them
  sourcemap: true,
  logLevel: 'warning',
});

// Declarations. The GPU* types in them come from @webgpu/types (a dependency), which the entry points
// reference so that a consumer's compiler loads it without being told.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
for (const entry of LIBRARY_ENTRIES) {
  const file = `dist/${entry.replace(/\.ts$/, '.d.ts')}`;
  writeFileSync(file, `/// <reference types="@webgpu/types" />\n${readFileSync(file, 'utf8')}`);
}

await buildBrowser();
