import { describe, test } from 'vitest';
import * as E from '../engine/index.js';
import { checkShader } from '../engine/runtime.js';
import { useEngine } from './helpers.js';

useEngine();

// Every WGSL file compiles on this adapter (subgroup kernels only where the feature exists).
const files = import.meta.glob('../shaders/*.wgsl', { eager: true, query: '?raw', import: 'default' }) as Record<string, string>;

describe('every shader compiles', () => {
  for (const [path, source] of Object.entries(files)) {
    const file = path.split('/').pop()!;
    if (file === 'common.wgsl') continue;
    test(file, async () => {
      if (/subgroup|quadBroadcast/.test(source) && !E.gpu().features.subgroups) return;
      await checkShader({ file, source });
    });
  }

  test('a compile error names the file, line and column', async () => {
    const bad = 'override WG: u32 = 64u;\n@compute @workgroup_size(WG) fn main() {\n  let x: u32 = 1.5;\n}\n';
    const { expect } = await import('vitest');
    await expect(checkShader({ file: 'bad.wgsl', source: bad })).rejects.toThrow(/bad\.wgsl:3:\d+/);
  });
});
