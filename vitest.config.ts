import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [
    {
      // Same as esbuild's text loader: a .wgsl import is the file's text.
      name: 'wgsl-as-text',
      transform(code, id) {
        if (id.endsWith('.wgsl')) return { code: `export default ${JSON.stringify(code)};`, map: null };
        return undefined;
      },
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // One WebGPU device per process: files run in their own worker processes, at most two at a time
    // (the software adapter uses every core anyway).
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  },
});
