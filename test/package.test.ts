// The published package as a user gets it: `npm pack` (which builds dist/ through `prepack`), the
// tarball's file list, an install into a fresh project, the README's library example type-checked with
// `strict: true` against the shipped declarations and run, the setup script and the missing-`webgpu`
// message from that project, and a browser bundle of the three entry points.
// Opt-in (it rebuilds dist/ and takes about 40 s): `npm run test:package` (DENSENET_TEST_PACKAGE=1);
// .ci/run runs it. The install is offline when npm's cache has @webgpu/types (it does after the
// repository's own `npm install`); `webgpu` (Dawn) is linked from this repository's node_modules.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

const enabled = process.env.DENSENET_TEST_PACKAGE === '1';
if (!enabled) console.warn('test/package.test.ts skipped: the package test is opt-in; run `npm run test:package`');

const root = new URL('../', import.meta.url).pathname;
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };

/** What a consumer uses, and nothing else: the tarball's paths must each match one of these. */
const ALLOWED = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/,
  /^dist\/(engine|nn|models|data)\/index\.js(\.map)?$/, /^dist\/data\/node\.js(\.map)?$/, // the Node entry points
  /^dist\/(engine|nn|models|data)\/[\w/]+\.d\.ts$/, // their declarations
  /^dist\/chunk-\w+\.js(\.map)?$/, // the Node build's shared engine
  /^dist\/browser\/(engine|nn|models|data)\/index\.js(\.map)?$/, // the `browser` condition's entry points
  /^dist\/browser\/[\w-]+\.js(\.map)?$/, // ... their shared chunks
  /^dist\/bench\/cli\.js(\.map)?$/, // the `densenet-bench` CLI
  /^scripts\/(setup-webgpu\.sh|probe-adapter\.mjs)$/, // named by the engine's no-adapter hint
  /^scripts\/pytorch_step\.py$/, // the PyTorch peer that `densenet-bench compare-pytorch` runs
  /^bench\/web\/screenshot\.png$/, // shown by the README
];

/** The README's library example: its first ```ts block. */
function readmeExample(): string {
  const m = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(root, 'README.md'), 'utf8'));
  if (!m) throw new Error('README.md has no ```ts example');
  return m[1];
}

function run(cmd: string, args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!enabled)('the packed package in a fresh project', () => {
  let dir: string;
  let project: string;
  let files: string[];
  let manifest: Record<string, unknown> & { scripts?: Record<string, string>; exports: Record<string, unknown> };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'densenet-pack-'));
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack wrote no tarball in ${dir}`);
    files = execFileSync('tar', ['-tzf', join(dir, tgz)], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    project = join(dir, 'project');
    execFileSync('mkdir', [project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], { cwd: project, env, stdio: 'inherit' });
    manifest = JSON.parse(readFileSync(join(project, 'node_modules/densenet-webgpu/package.json'), 'utf8'));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the tarball holds only what a consumer uses, and everything package.json points at', () => {
    const unexpected = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    expect(unexpected).toEqual([]);
    const targets = [
      manifest.types, ...Object.values(manifest.bin as Record<string, string>),
      ...Object.values(manifest.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e as Record<string, string>))),
    ].map((p) => String(p).replace(/^\.\//, ''));
    for (const t of targets) expect(files, t).toContain(t);
    for (const must of ['LICENSE', 'scripts/setup-webgpu.sh', 'bench/web/screenshot.png', 'dist/nn/index.d.ts']) expect(files).toContain(must);
    // The README's image is in the tarball; no install script makes npm warn the consumer.
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain('](bench/web/screenshot.png)');
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) expect(manifest.scripts ?? {}, hook).not.toHaveProperty(hook);
  });

  test('the installed CLI finds its PyTorch peer script: compare-pytorch gets as far as the Python check', () => {
    const r = run(process.execPath, ['node_modules/densenet-webgpu/dist/bench/cli.js', 'compare-pytorch', '--python', '/nonexistent/python3'], project);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/compare-pytorch: '\/nonexistent\/python3' cannot be run/);
  });

  test("without the optional peer 'webgpu', Node says how to install it, and so does the setup script", () => {
    const r = run(process.execPath, ['-e', "import('densenet-webgpu').then((m) => m.init()).catch((e) => { console.error(e.message); process.exit(3); })"], project);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('npm install webgpu@');
    const s = run('bash', ['node_modules/densenet-webgpu/scripts/setup-webgpu.sh'], project);
    expect(s.status, s.stderr).toBe(2);
    expect(s.stderr).toContain('npm install webgpu@');
  });

  test("the README's example type-checks with strict: true against the shipped declarations, and runs", () => {
    writeFileSync(join(project, 'example.ts'), readmeExample());
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'],
        skipLibCheck: false, outDir: 'out',
      },
      files: ['example.ts'],
    }));
    const t = run(process.execPath, [tsc, '-p', '.'], project);
    expect(t.stdout + t.stderr, 'tsc in the consumer project').toBe('');
    expect(t.status).toBe(0);
    // `npm install webgpu` without the download: link this repository's copy (npm would hoist it here too).
    symlinkSync(join(root, 'node_modules/webgpu'), join(project, 'node_modules/webgpu'));
    const setup = run('bash', ['node_modules/densenet-webgpu/scripts/setup-webgpu.sh'], project);
    expect(setup.status, setup.stderr).toBe(0);
    const r = run(process.execPath, ['out/example.js'], project);
    expect(r.status, r.stderr).toBe(0);
    // console.log(await loss.item(), memory().peakBytes): a finite loss near ln(10) and a peak in bytes.
    const [loss, peak] = r.stdout.trim().split(/\s+/).map(Number);
    expect(loss).toBeGreaterThan(0.5);
    expect(loss).toBeLessThan(10);
    expect(peak).toBeGreaterThan(1e6);
  });

  test('a bundler targeting browsers gets the browser build: no Node-only import, one copy of the engine', async () => {
    writeFileSync(join(project, 'web.js'), [
      "import { init, randn } from 'densenet-webgpu';",
      "import { SGD } from 'densenet-webgpu/nn';",
      "import { DenseNet } from 'densenet-webgpu/models';",
      'await init(); console.log(new DenseNet(), randn([1]), SGD);',
    ].join('\n'));
    const out = await build({
      entryPoints: [join(project, 'web.js')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent',
      absWorkingDir: project,
    });
    const text = out.outputFiles[0].text;
    expect(text).not.toMatch(/["'`](?:webgpu|node:[\w/]+)["'`]/);
    // A string that exists once in the engine (engine/gpu.ts).
    expect(text.split('the engine is not initialised').length - 1).toBe(1);
  });
});
