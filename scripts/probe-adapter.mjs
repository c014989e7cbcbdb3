// Prints the WebGPU adapter the engine finds, or exits 1 when there is none; with --package, only checks
// that Node can load the npm package `webgpu` (Dawn) from here, and exits 2 saying how to install it.
// Used by setup-webgpu.sh; it touches nothing, so it is safe to run anywhere. `webgpu` is resolved the
// way the engine's own import resolves it (from this package's folder upwards), so a consumer project
// where npm hoisted it to the top-level node_modules works too. The probe goes through the engine's
// init() (dist/, built here when missing), so the engine stays the only code that talks to WebGPU.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
try {
  import.meta.resolve('webgpu');
} catch {
  console.error("setup-webgpu: the npm package 'webgpu' (Dawn, WebGPU for Node) is not installed: run `npm install webgpu@0.6.2` " +
    '(in the densenet-webgpu repository: `npm install`)');
  process.exit(2);
}
if (process.argv.includes('--package')) process.exit(0);

const entry = new URL('../dist/engine/index.js', import.meta.url);
if (!existsSync(entry)) execFileSync(process.execPath, [new URL('./build.mjs', import.meta.url).pathname], { stdio: 'inherit' });
const { init } = await import(entry.href);
try {
  const g = await init();
  const a = g.adapter;
  console.log(`WebGPU adapter: ${a.vendor || '?'} / ${a.architecture || '?'} / ${a.description || '?'}${a.isFallbackAdapter ? ' (software)' : ''}`);
  process.exit(0);
} catch (e) {
  console.error(`probe-adapter: ${e.message}`);
  process.exit(1);
}
