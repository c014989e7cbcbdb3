// An adapter without 'shader-f16' (SwiftShader in Chromium has none; here the feature is withheld):
// an engine default of 'mixed' falls back to 'fp32' with one notice, asking a model for 'mixed'
// explicitly is a clear error, and float16 storage names the missing feature.
import { afterAll, describe, expect, test, vi } from 'vitest';
import * as E from '../engine/index.js';
import { DenseNet, densenet121 } from '../models/index.js';

const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
// The default set before the adapter is known: it falls back once the engine is initialised.
E.setDefaultPrecision('mixed');
await E.init({ disableFeatures: ['shader-f16'] });
afterAll(() => warn.mockRestore());

describe('precision without shader-f16', () => {
  test("the default 'mixed' fell back to 'fp32' with one notice", async () => {
    expect(E.gpu().features.shaderF16).toBe(false);
    expect(E.defaultPrecision()).toBe('fp32');
    await E.init({ precision: 'mixed' });
    expect(E.defaultPrecision()).toBe('fp32');
    expect(E.mixedSupported()).toBe(false);
    E.setDefaultPrecision('mixed');
    const notices = warn.mock.calls.filter((c) => /shader-f16.*falls back to 'fp32'/.test(String(c[0])));
    expect(notices.length).toBe(1);
    const m = new DenseNet({ growthRate: 4, arch: [1, 1] });
    expect(m.precision).toBe('fp32');
    m.dispose();
  });

  test("asking for 'mixed' explicitly is a clear error naming the feature and the fix", () => {
    expect(() => new DenseNet({ precision: 'mixed' })).toThrow(/DenseNet: precision 'mixed' .*'shader-f16'.*use precision 'fp32'/);
    expect(() => densenet121({ precision: 'mixed' })).toThrow(/DenseNetBC: precision 'mixed'/);
    const m = new DenseNet({ growthRate: 4, arch: [1, 1] });
    expect(() => (m.precision = 'mixed')).toThrow(/shader-f16/);
    m.dispose();
  });

  test('float16 storage names the missing feature', () => {
    const x = E.tensor([1, 2]);
    expect(() => x.half()).toThrow(/float16 storage needs the adapter feature 'shader-f16'.*precision 'fp32'/);
    x.dispose();
  });
});
