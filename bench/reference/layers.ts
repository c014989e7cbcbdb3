// CPU references for the layer ops (batch norm, pooling, cross-entropy, linear, SGD): plain float64 loops
// over NCHW arrays, written to be obviously correct.

import { nd, type ND } from './ndarray.js';

const at4 = (a: ND, n: number, c: number, h: number, w: number) =>
  a.data[((n * a.shape[1] + c) * a.shape[2] + h) * a.shape[3] + w];

/** Per-channel mean and biased variance of x [N, C, H, W] (two passes). */
export function channelStats(x: ND): { mean: number[]; variance: number[] } {
  const [N, C, H, W] = x.shape;
  const mean: number[] = [];
  const variance: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) s += at4(x, n, c, h, w);
    const m = s / (N * H * W);
    let q = 0;
    for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) q += (at4(x, n, c, h, w) - m) ** 2;
    mean.push(m);
    variance.push(q / (N * H * W));
  }
  return { mean, variance };
}

/** Batch norm with the given per-channel mean and variance: (x - mean) / sqrt(var + eps) * gamma + beta. */
export function batchNorm(x: ND, gamma: ND, beta: ND, mean: number[], variance: number[], eps = 1e-5): ND {
  const [N, C, H, W] = x.shape;
  const out = nd(x.shape);
  let i = 0;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      const inv = 1 / Math.sqrt(variance[c] + eps);
      for (let j = 0; j < H * W; j++, i++) out.data[i] = (x.data[i] - mean[c]) * inv * gamma.data[c] + beta.data[c];
    }
  return out;
}

/** Training-mode batch norm (batch statistics). */
export function batchNormTrain(x: ND, gamma: ND, beta: ND, eps = 1e-5): ND {
  const { mean, variance } = channelStats(x);
  return batchNorm(x, gamma, beta, mean, variance, eps);
}

/** PyTorch's running-statistics update: the unbiased variance, weighted by momentum. */
export function runningUpdate(rm: number[], rv: number[], x: ND, momentum = 0.1): { rm: number[]; rv: number[] } {
  const [N, , H, W] = x.shape;
  const M = N * H * W;
  const { mean, variance } = channelStats(x);
  return {
    rm: rm.map((r, c) => (1 - momentum) * r + momentum * mean[c]),
    rv: rv.map((r, c) => (1 - momentum) * r + momentum * variance[c] * (M / (M - 1))),
  };
}

function poolOut(H: number, k: number, s: number, p: number): number {
  return Math.floor((H + 2 * p - k) / s) + 1;
}

/**
 * Calls `visit` with the in-bounds values of every pooling window (padding excluded) and their plane
 * indices h*W + w, row by row, windows in output order (n, c, oh, ow); returns the output shape.
 */
function poolWindows(x: ND, k: [number, number], s: [number, number], p: [number, number], visit: (values: number[], at: number[]) => void): number[] {
  const [N, C, H, W] = x.shape;
  const OH = poolOut(H, k[0], s[0], p[0]);
  const OW = poolOut(W, k[1], s[1], p[1]);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const values: number[] = [];
          const at: number[] = [];
          for (let a = 0; a < k[0]; a++)
            for (let b = 0; b < k[1]; b++) {
              const h = oh * s[0] - p[0] + a;
              const w = ow * s[1] - p[1] + b;
              if (h >= 0 && h < H && w >= 0 && w < W) (values.push(at4(x, n, c, h, w)), at.push(h * W + w));
            }
          visit(values, at);
        }
  return [N, C, OH, OW];
}

/** Max pooling (padding is -inf, floor mode; a NaN in a window gives NaN). */
export function maxPool(x: ND, k: [number, number], s: [number, number], p: [number, number]): ND {
  const out: number[] = [];
  const shape = poolWindows(x, k, s, p, (v) => out.push(Math.max(-Infinity, ...v)));
  return nd(shape, out);
}

/** The plane index h*W + w of the first maximum (rows, then columns) of each max-pooling window. */
export function maxPoolArgmax(x: ND, k: [number, number], s: [number, number], p: [number, number]): number[] {
  const idx: number[] = [];
  poolWindows(x, k, s, p, (v, at) => {
    let best = -1;
    v.forEach((value, j) => {
      if (best < 0 || value > v[best]) best = j;
    });
    idx.push(best < 0 ? -1 : at[best]);
  });
  return idx;
}

/** Average pooling, count_include_pad = true, floor mode. */
export function avgPool(x: ND, k: [number, number], s: [number, number], p: [number, number]): ND {
  const out: number[] = [];
  const shape = poolWindows(x, k, s, p, (v) => out.push(v.reduce((a, b) => a + b, 0) / (k[0] * k[1])));
  return nd(shape, out);
}

/** Adaptive average pooling: cell i spans [floor(i*H/OH), ceil((i+1)*H/OH)). */
export function adaptiveAvgPool(x: ND, OH: number, OW: number): ND {
  const [N, C, H, W] = x.shape;
  const out = nd([N, C, OH, OW]);
  let i = 0;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const h0 = Math.floor((oh * H) / OH);
          const h1 = Math.ceil(((oh + 1) * H) / OH);
          const w0 = Math.floor((ow * W) / OW);
          const w1 = Math.ceil(((ow + 1) * W) / OW);
          let acc = 0;
          for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) acc += at4(x, n, c, h, w);
          out.data[i++] = acc / ((h1 - h0) * (w1 - w0));
        }
  return out;
}

/** Mean cross-entropy of logits [B, C] against integer labels. */
export function crossEntropy(logits: ND, labels: number[]): ND {
  const [B, C] = logits.shape;
  let total = 0;
  for (let b = 0; b < B; b++) {
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, logits.data[b * C + j]);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(logits.data[b * C + j] - m);
    total += m + Math.log(s) - logits.data[b * C + labels[b]];
  }
  return nd([], [total / B]);
}

/** x [B, in] @ w[out, in]^T + b. */
export function linear(x: ND, w: ND, b?: ND): ND {
  const [B, I] = x.shape;
  const O = w.shape[0];
  const out = nd([B, O]);
  for (let i = 0; i < B; i++)
    for (let o = 0; o < O; o++) {
      let acc = b ? b.data[o] : 0;
      for (let k = 0; k < I; k++) acc += x.data[i * I + k] * w.data[o * I + k];
      out.data[i * O + o] = acc;
    }
  return out;
}

/** torch.optim.SGD's update of one parameter (arrays updated in place; buf null before the first step). */
export function sgdUpdate(
  p: number[], g: number[], buf: number[] | null,
  { lr, momentum = 0, weightDecay = 0, nesterov = false, dampening = 0 }: { lr: number; momentum?: number; weightDecay?: number; nesterov?: boolean; dampening?: number },
): number[] | null {
  const d = g.map((gi, i) => gi + weightDecay * p[i]);
  if (momentum !== 0) {
    if (!buf) buf = [...d];
    else for (let i = 0; i < d.length; i++) buf[i] = momentum * buf[i] + (1 - dampening) * d[i];
    for (let i = 0; i < d.length; i++) d[i] = nesterov ? d[i] + momentum * buf[i] : buf[i];
  }
  for (let i = 0; i < p.length; i++) p[i] -= lr * d[i];
  return buf;
}
