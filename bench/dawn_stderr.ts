// Dawn prints two harmless lines from native code whenever it opens an adapter ("Warning:
// maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 ..."): it clamps a
// limit the driver reports, whatever limits are requested, and no API silences it. A JavaScript process
// cannot filter its own file descriptor 2, so the CLI runs itself as a child and passes the child's
// stderr through without those two lines. The child gets its own process group, so a Ctrl-C in the
// terminal reaches it once, forwarded by the parent (the trainer writes its checkpoint on the first
// SIGINT or SIGTERM and exits at once on a second).

import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const CHILD_ENV = 'DENSENET_BENCH_CHILD';
const DAWN_NOISE = /Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?\n/g;

/** Removes Dawn's limit-clamping warnings from a chunk of stderr text. */
export function dropDawnNoise(text: string): string {
  return text.replace(DAWN_NOISE, '');
}

/**
 * In the parent: starts this same command as a child with Dawn's warnings filtered from its stderr,
 * forwards SIGINT and SIGTERM to it, exits with its exit code (128 + n when a signal n ended it), and
 * returns true. In the child (or with DENSENET_BENCH_CHILD=1 set by the caller): returns false.
 */
export function runAsFilteredChild(): boolean {
  if (process.env[CHILD_ENV]) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, [CHILD_ENV]: '1' },
    detached: true,
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const kept = dropDawnNoise(chunk);
    if (kept) process.stderr.write(kept);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('error', (e) => {
    console.error(`densenet-bench: could not start ${process.execPath}: ${e.message}`);
    process.exit(1);
  });
  child.on('close', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 1)));
  return true;
}
