import { describe, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { resizeBilinear } from '../engine/ops/resize.js';
import { loadSafetensors } from '../nn/safetensors.js';
import { expectClose, randND, toTensor, useEngine } from './helpers.js';
import { nd, type ND } from './reference/ndarray.js';

useEngine();

/** PyTorch's bilinear interpolation (align_corners=False), written out. */
function refResize(x: ND, oh: number, ow: number): ND {
  const [P, H, W] = [x.shape.slice(0, -2).reduce((a, b) => a * b, 1), x.shape[x.shape.length - 2], x.shape[x.shape.length - 1]];
  const out = nd([...x.shape.slice(0, -2), oh, ow]);
  const src = (d: number, inn: number, o: number) => Math.max((d + 0.5) * (inn / o) - 0.5, 0);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const sy = src(i, H, oh);
        const sx = src(j, W, ow);
        const y0 = Math.min(Math.floor(sy), H - 1);
        const x0 = Math.min(Math.floor(sx), W - 1);
        const y1 = Math.min(y0 + 1, H - 1);
        const x1 = Math.min(x0 + 1, W - 1);
        const ly = sy - y0;
        const lx = sx - x0;
        const v = (y: number, xx: number) => x.data[p * H * W + y * W + xx];
        out.data[p * oh * ow + i * ow + j] = (1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1));
      }
    }
  }
  return out;
}

describe('bilinear resize', () => {
  test('against the CPU reference, up and down, awkward sizes', async () => {
    const x = randND([3, 2, 28, 28], 1, 0, 1);
    for (const [oh, ow] of [[96, 96], [33, 7], [1, 1], [13, 57]] as const) {
      expectClose(await resizeBilinear(toTensor(x), [oh, ow]).data(), refResize(x, oh, ow), { what: `${oh}x${ow}` });
    }
  });

  test("matches PyTorch's F.interpolate outputs (fixture)", async () => {
    const t = await loadSafetensors(readFileSync(new URL('./fixtures/resize.safetensors', import.meta.url)));
    const x = t.get('input')!;
    for (const [k, v] of t) {
      if (!k.startsWith('out_')) continue;
      const [h, w] = k.slice(4).split('x').map(Number);
      expectClose(await resizeBilinear(x, [h, w]).data(), nd([...v.shape], await v.data()), { rtol: 1e-5, atol: 1e-6, what: k });
    }
  });
});
