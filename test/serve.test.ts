// The demo server's command line (bench/web/serve.ts, built to dist/web/serve.js): usage errors are one
// line on stderr with exit code 2, before anything listens. The server is bundled to a temporary file
// with esbuild (as scripts/build-browser.mjs does) and run as a user runs it; no GPU is involved.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url).pathname;

describe('serve.js flags', () => {
  let dir: string;
  let serve: string;
  let busy: Server;
  let busyPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'densenet-serve-'));
    serve = join(dir, 'serve.js');
    await build({ entryPoints: [join(root, 'bench/web/serve.ts')], outfile: serve, bundle: true, format: 'esm', platform: 'node', logLevel: 'silent' });
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as { port: number }).port;
  });

  afterAll(() => {
    busy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown flag', ['--prot', '8080'], /Unknown option '--prot'/],
    ['a stray argument', ['8080'], /Unexpected argument '8080'/],
    ['a port that is not a number', ['--port', 'http'], /--port must be a whole number from 0 to 65535 \(0: any free port\), got 'http'/],
    ['a port out of range', ['--port', '70000'], /--port must be a whole number from 0 to 65535 \(0: any free port\), got '70000'/],
    ['a missing data folder', ['--port', '0', '--data', '/nonexistent/fashion'], /--data \/nonexistent\/fashion: no such folder/],
  ];
  for (const [what, args, message] of cases) {
    test(`${what}: one line, exit code 2`, () => {
      const r = spawnSync(process.execPath, [serve, ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^serve: .*\(usage: node dist\/web\/serve\.js /);
    });
  }

  test('a busy port: one line, exit code 2', () => {
    const r = spawnSync(process.execPath, [serve, '--port', String(busyPort)], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`port ${busyPort} on 127.0.0.1 is already in use; choose another with --port N`);
  });
});
