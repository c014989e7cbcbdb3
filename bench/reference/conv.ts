// CPU reference for conv2d (NCHW, groups 1, zero padding): plain loops over float64, PyTorch semantics.

import { nd, type ND } from './ndarray.js';

export interface ConvRefOptions {
  stride?: number;
  padding?: number;
  /** The conv reads relu(x * scale[c] + shift[c]) instead of x (padding stays zero). */
  scale?: ND;
  shift?: ND;
}

/** The value the conv reads at x[n, c, h, w] (0 outside the input). */
function input(x: ND, n: number, c: number, h: number, w: number, o: ConvRefOptions): number {
  const [, C, H, W] = x.shape;
  if (h < 0 || h >= H || w < 0 || w >= W) return 0;
  const v = x.data[((n * C + c) * H + h) * W + w];
  return o.scale && o.shift ? Math.max(0, v * o.scale.data[c] + o.shift.data[c]) : v;
}

export function conv2d(x: ND, w: ND, b: ND | null, o: ConvRefOptions = {}): ND {
  const s = o.stride ?? 1;
  const p = o.padding ?? 0;
  const [N, Cin, H, W] = x.shape;
  const [Cout, , KH, KW] = w.shape;
  const OH = Math.floor((H + 2 * p - KH) / s) + 1;
  const OW = Math.floor((W + 2 * p - KW) / s) + 1;
  const y = nd([N, Cout, OH, OW]);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Cout; co++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let acc = b ? b.data[co] : 0;
          for (let ci = 0; ci < Cin; ci++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                acc += w.data[((co * Cin + ci) * KH + kh) * KW + kw] * input(x, n, ci, oh * s - p + kh, ow * s - p + kw, o);
              }
          y.data[((n * Cout + co) * OH + oh) * OW + ow] = acc;
        }
  return y;
}

/** Gradients of sum(conv2d(x, w, b) * dy) with respect to x, w and b (x' as in conv2d for the prologue). */
export function conv2dGrads(x: ND, w: ND, dy: ND, o: ConvRefOptions = {}): { dx: ND; dw: ND; db: ND } {
  const s = o.stride ?? 1;
  const p = o.padding ?? 0;
  const [N, Cin, H, W] = x.shape;
  const [Cout, , KH, KW] = w.shape;
  const [, , OH, OW] = dy.shape;
  const dx = nd(x.shape);
  const dw = nd(w.shape);
  const db = nd([Cout]);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Cout; co++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const g = dy.data[((n * Cout + co) * OH + oh) * OW + ow];
          db.data[co] += g;
          for (let ci = 0; ci < Cin; ci++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const h = oh * s - p + kh;
                const ww = ow * s - p + kw;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                const wi = ((co * Cin + ci) * KH + kh) * KW + kw;
                dw.data[wi] += g * input(x, n, ci, h, ww, o);
                dx.data[((n * Cin + ci) * H + h) * W + ww] += g * w.data[wi];
              }
        }
  return { dx, dw, db };
}
