import { describe, test } from 'vitest';
import { poolShaders } from '../engine/ops/pool2d.js';
import { bnStatsSource, bnUpdateSource } from '../engine/ops/batchnorm.js';
import * as E from '../engine/index.js';
import { checkShader, compose } from '../engine/runtime.js';
import { shaders } from '../engine/shaders.js';
import { useEngine } from './helpers.js';
import { matmulSource } from '../engine/ops/matmul.js';
import { convSource } from '../engine/ops/conv.js';

useEngine();
const { features } = await E.init(); // skipIf needs the adapter's features while the tests are collected

// Every WGSL file compiles on this adapter (subgroup kernels only where the feature exists), as the
// engine loads it (unary.wgsl and binary.wgsl with the code generated from the elementwise table); a
// body and its snippets compile as the composed module of every variant the adapter supports.
const files = import.meta.glob('../shaders/*.wgsl', { eager: true, query: '?raw', import: 'default' }) as Record<string, string>;
const loaded = new Map(Object.values(shaders).map((s) => [s.file, s.source]));
const composedParts = /^matmul|^batchnorm_stats|^batchnorm_update|^bn_moments|^conv2d/;

describe('every shader compiles', () => {
  for (const v of E.allVariants('matmul')) {
    if (v === 'naive') continue;
    test(`matmul.wgsl composed for ${v}`, async (ctx) => {
      if (!E.supportedVariants('matmul').includes(v)) ctx.skip();
      await checkShader(matmulSource(v));
    });
  }
  for (const v of E.allVariants('conv')) {
    test(`conv2d.wgsl composed for ${v}`, async (ctx) => {
      if (!E.supportedVariants('conv').includes(v)) ctx.skip();
      await checkShader(convSource(v));
    });
  }
  for (const [path, source] of Object.entries(files)) {
    const file = path.split('/').pop()!;
    if (file === 'common.wgsl' || file === 'half_store.wgsl' || composedParts.test(file)) continue;
    if (/pool/.test(file)) continue; // composed with pool_common.wgsl: below
    const needsSubgroups = /subgroup|quadBroadcast/.test(source);
    // A body with storage-typed bindings (array<X_T>, engine/storage.ts) compiles with every role float32,
    // and with every role float16 (with half_store.wgsl) where the adapter has shader-f16.
    const roles = [...new Set([...source.matchAll(/array<(?:vec4<)?(\w+)_T>/g)].map((m) => m[1]))];
    const body = { file, source: loaded.get(file) ?? source };
    if (!roles.length) {
      test.skipIf(needsSubgroups && !features.subgroups)(file, () => checkShader(body));
      continue;
    }
    for (const dtype of E.DTYPES) {
      test.skipIf((needsSubgroups && !features.subgroups) || (dtype === 'float16' && !features.shaderF16))(`${file} with ${dtype} storage`, () =>
        checkShader(E.typed(body, Object.fromEntries(roles.map((r) => [r, dtype])), { enables: needsSubgroups ? ['subgroups'] : [] })),
      );
    }
  }

  // The pooling bodies with pool_common.wgsl, and batch norm's per-channel kernels with each variant's
  // lane sums, composed with every storage type the adapter can run.
  for (const dtype of E.DTYPES) {
    const noF16 = dtype === 'float16' && !features.shaderF16;
    ['maxpool2d', 'avgpool2d'].forEach((name, i) => {
      test.skipIf(noF16)(`${name}.wgsl composed with pool_common.wgsl, ${dtype} storage`, () => checkShader(poolShaders(dtype)[i]));
    });
    for (const v of E.allVariants('bnStats')) {
      test(`batchnorm_stats.wgsl composed for ${v}, ${dtype} storage`, async (ctx) => {
        if (noF16 || !E.supportedVariants('bnStats').includes(v)) ctx.skip();
        await checkShader(bnStatsSource(v, { X: dtype, DY: dtype, DX: dtype }));
      });
      test(`batchnorm_update.wgsl composed for ${v}, ${dtype} storage`, async (ctx) => {
        if (noF16 || !E.supportedVariants('bnStats').includes(v)) ctx.skip();
        await checkShader(bnUpdateSource(v, dtype));
      });
    }
  }

  test('a compile error in a composed snippet names the snippet, line and column', async () => {
    const { expect } = await import('vitest');
    const body = { file: 'body.wgsl', source: '@compute @workgroup_size(1) fn main() {\n  helper();\n}' };
    const snippet = { file: 'snippet.wgsl', source: '// a snippet\nfn helper() {\n  let y: u32 = 2.5;\n}' };
    await expect(checkShader(compose(body, [snippet], { variant: 'broken' }))).rejects.toThrow(/snippet\.wgsl:3:\d+/);
  });

  test('a compile error names the file, line and column', async () => {
    const bad = 'override WG: u32 = 64u;\n@compute @workgroup_size(WG) fn main() {\n  let x: u32 = 1.5;\n}\n';
    const { expect } = await import('vitest');
    await expect(checkShader({ file: 'bad.wgsl', source: bad })).rejects.toThrow(/bad\.wgsl:3:\d+/);
  });
});
