// Browser builds, called by scripts/build.mjs (or run alone: `node scripts/build-browser.mjs`):
//   dist/browser/densenet-webgpu.js  the library (models/browser.ts: engine, nn, models) as one ESM file for browsers
//   dist/web/main.js                 the demo page's script (bench/web/main.ts); it imports the library
//                                    bundle above at run time (../browser/densenet-webgpu.js), so the
//                                    demo and its test run exactly what users get
//   dist/web/serve.js                the demo's static server for Node (`npm run demo:web`)
// WGSL is inlined as text. Nothing Node-only may reach a browser file: engine/gpu.ts drops its Dawn
// loader when __DENSENET_BROWSER__ is defined, `node:*` imports (the path-based file helpers of
// nn/safetensors.ts) resolve to a stub that rejects, and checkBrowserOutput() fails the build if a
// browser file still imports `webgpu` or a `node:` module, or names either as a string.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const LIB_OUT = 'dist/browser/densenet-webgpu.js';

/** Every `node:*` import of browser code becomes a module that rejects with a clear message. */
const nodeOnlyStub = {
  name: 'node-only-stub',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, () => ({ path: 'unavailable', namespace: 'node-only' }));
    b.onLoad({ filter: /.*/, namespace: 'node-only' }, () => ({
      contents: "throw new Error('densenet-webgpu: reading or writing files by path works only under Node; in a browser pass the bytes (a Uint8Array or ArrayBuffer) instead');",
      loader: 'js',
    }));
  },
};

/** The demo imports the library from the built bundle instead of bundling a second copy. */
const libraryFromBundle = {
  name: 'library-from-bundle',
  setup(b) {
    b.onResolve({ filter: /\/browser\.js$/ }, () => ({ path: '../browser/densenet-webgpu.js', external: true }));
  },
};

const browserOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  define: { __DENSENET_BROWSER__: 'true' },
  minifySyntax: true, // folds the define away, with the Node-only branches it guards
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
};

/** Fails when a browser output imports, or names as a string, the `webgpu` package or a `node:` module. */
export function checkBrowserOutput(result) {
  const problems = [];
  for (const [file, out] of Object.entries(result.metafile.outputs)) {
    if (file.endsWith('.map')) continue;
    for (const imp of out.imports) {
      if (imp.path === 'webgpu' || imp.path.startsWith('webgpu/') || imp.path.startsWith('node:')) problems.push(`${file} imports '${imp.path}'`);
    }
    for (const input of Object.keys(out.inputs)) {
      if (/node_modules\/webgpu\//.test(input)) problems.push(`${file} contains ${input}`);
    }
    const text = readFileSync(file, 'utf8');
    const m = text.match(/["'`](?:webgpu|node:[\w/]+)["'`]/);
    if (m) problems.push(`${file} names ${m[0]} (a Node-only module) in its code`);
  }
  if (problems.length) throw new Error(`browser bundle check failed: Node-only code is reachable:\n  ${problems.join('\n  ')}`);
}

export async function buildBrowser() {
  const lib = await build({ ...browserOptions, entryPoints: ['models/browser.ts'], outfile: LIB_OUT, plugins: [nodeOnlyStub] });
  checkBrowserOutput(lib);
  const web = await build({ ...browserOptions, entryPoints: ['bench/web/main.ts'], outfile: 'dist/web/main.js', plugins: [libraryFromBundle, nodeOnlyStub] });
  checkBrowserOutput(web);
  await build({
    entryPoints: ['bench/web/serve.ts'], outfile: 'dist/web/serve.js', bundle: true, format: 'esm', platform: 'node', target: 'node20',
    sourcemap: true, logLevel: 'warning',
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildBrowser();
