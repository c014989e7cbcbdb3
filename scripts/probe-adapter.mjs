// Prints the WebGPU adapter the engine finds, or exits 1 when there is none.
// Used by setup-webgpu.sh; it touches nothing, so it is safe to run anywhere. It goes through the
// engine's own init() (built into dist/ by `npm install`), so the engine stays the only code that
// talks to WebGPU.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
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
