// Browser builds, called by scripts/build.mjs (or run alone: `node scripts/build-browser.mjs`):
//   dist/browser/{engine,nn,models,data}/index.js  the library for browsers: the same entry points as
//                          for Node (not data/node.js), split so that they share one copy of the engine (chunks in
//                          dist/browser/). package.json's `browser` export condition points at them.
//   dist/web/main.js       the demo page's script (bench/web/main.ts); it imports the library modules
//                          above at run time (../browser/<entry>/index.js), so the demo and its test run
//                          exactly what users get. Not published (package.json `files`).
//   dist/web/serve.js      the demo's static server for Node (`npm run demo:web`). Not published.
// WGSL is inlined as text. Nothing Node-only may reach a browser file: engine/gpu.ts drops its Dawn
// loader when __DENSENET_BROWSER__ is defined, `node:*` imports (the path-based file helpers of
// nn/safetensors.ts) resolve to a stub that rejects, and checkBrowserOutput() fails the build if a
// browser file still imports `webgpu` or a `node:` module, or names either as a string.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The library's entry points, shared with the Node build (scripts/build.mjs). */
export const LIBRARY_ENTRIES = ['engine/index.ts', 'nn/index.ts', 'models/index.ts', 'data/index.ts'];

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

/** The demo imports the library's browser modules at run time instead of bundling a second copy. */
const libraryFromDist = {
  name: 'library-from-dist',
  setup(b) {
    b.onResolve({ filter: /^(\.\.\/)+(engine|nn|models|data)\/index\.js$/ }, (args) => ({
      path: `../browser/${/(engine|nn|models|data)\/index\.js$/.exec(args.path)[1]}/index.js`,
      external: true,
    }));
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
  keepNames: true, // class names as written (String(model) says DenseNet)
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
  const lib = await build({
    ...browserOptions, entryPoints: LIBRARY_ENTRIES, outdir: 'dist/browser', outbase: '.', splitting: true, plugins: [nodeOnlyStub],
  });
  checkBrowserOutput(lib);
  const web = await build({ ...browserOptions, entryPoints: ['bench/web/main.ts'], outfile: 'dist/web/main.js', plugins: [libraryFromDist, nodeOnlyStub] });
  checkBrowserOutput(web);
  await build({
    entryPoints: ['bench/web/serve.ts'], outfile: 'dist/web/serve.js', bundle: true, format: 'esm', platform: 'node', target: 'node20',
    sourcemap: true, logLevel: 'warning',
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildBrowser();
