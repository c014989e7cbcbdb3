import { describe, test } from 'vitest';
import * as E from '../engine/index.js';
import { checkShader } from '../engine/runtime.js';
import { shaders } from '../engine/shaders.js';
import { useEngine } from './helpers.js';

useEngine();
const { features } = await E.init(); // skipIf needs the adapter's features while the tests are collected

// Every WGSL file compiles on this adapter (subgroup kernels only where the feature exists), as the
// engine loads it (unary.wgsl and binary.wgsl with the code generated from the elementwise table).
const files = import.meta.glob('../shaders/*.wgsl', { eager: true, query: '?raw', import: 'default' }) as Record<string, string>;
const loaded = new Map(Object.values(shaders).map((s) => [s.file, s.source]));

describe('every shader compiles', () => {
  for (const [path, source] of Object.entries(files)) {
    const file = path.split('/').pop()!;
    if (file === 'common.wgsl') continue;
    const needsSubgroups = /subgroup|quadBroadcast/.test(source);
    test.skipIf(needsSubgroups && !features.subgroups)(file, async () => {
      await checkShader({ file, source: loaded.get(file) ?? source });
    });
  }

  test('a compile error names the file, line and column', async () => {
    const bad = 'override WG: u32 = 64u;\n@compute @workgroup_size(WG) fn main() {\n  let x: u32 = 1.5;\n}\n';
    const { expect } = await import('vitest');
    await expect(checkShader({ file: 'bad.wgsl', source: bad })).rejects.toThrow(/bad\.wgsl:3:\d+/);
  });
});
