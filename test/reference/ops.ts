// CPU references for softmax, log-softmax, topk/argmax, dropout and label-smoothed cross-entropy: plain
// float64 loops along one axis, written to be obviously correct.

import { forEachIndex, nd, stridesOf, type ND } from './ndarray.js';

/** Calls f with the flat indices of every line of `shape` along `axis`. */
function lines(shape: number[], axis: number, f: (idx: number[]) => void): void {
  const st = stridesOf(shape);
  const outer = shape.map((d, i) => (i === axis ? 1 : d));
  forEachIndex(outer, (c) => {
    const base = c.reduce((a, v, i) => a + v * st[i], 0);
    f(Array.from({ length: shape[axis] }, (_, j) => base + j * st[axis]));
  });
}

export function softmax(x: ND, axis: number, log = false): ND {
  const out = nd(x.shape);
  lines(x.shape, axis, (idx) => {
    const v = idx.map((i) => x.data[i]);
    const m = v.some(Number.isNaN) ? NaN : Math.max(...v);
    const s = v.reduce((a, t) => a + Math.exp(t - m), 0);
    idx.forEach((i, j) => (out.data[i] = log ? v[j] - m - Math.log(s) : Math.exp(v[j] - m) / s));
  });
  return out;
}

/** The k largest along the axis, largest first; NaN is largest; ties keep the lower index first. */
export function topk(x: ND, k: number, axis: number): { values: ND; indices: ND } {
  const shape = x.shape.map((d, i) => (i === axis ? k : d));
  const values = nd(shape);
  const indices = nd(shape);
  const outLines: number[][] = [];
  lines(shape, axis, (idx) => outLines.push(idx));
  let n = 0;
  lines(x.shape, axis, (idx) => {
    const order = idx.map((i, j) => ({ v: x.data[i], j }));
    const rank = (t: { v: number }) => (Number.isNaN(t.v) ? Infinity : t.v);
    order.sort((a, b) => (Number.isNaN(a.v) !== Number.isNaN(b.v) ? (Number.isNaN(a.v) ? -1 : 1) : rank(b) - rank(a) || a.j - b.j));
    outLines[n++].forEach((o, t) => {
      values.data[o] = order[t].v;
      indices.data[o] = order[t].j;
    });
  });
  return { values, indices };
}

function pcg(x: number): number {
  const s = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** Whether element i is kept by dropout with this seed and p (shaders/dropout.wgsl's hash). */
export function dropoutKeeps(seed: number, i: number, p: number): boolean {
  return (pcg((i ^ pcg(seed)) >>> 0) >>> 8) / 16777216 >= p;
}

export function dropout(x: ND, p: number, seed: number): ND {
  const out = nd(x.shape);
  for (let i = 0; i < x.data.length; i++) out.data[i] = x.data[i] * (dropoutKeeps(seed, i, p) ? 1 / (1 - p) : 0);
  return out;
}

/** torch.nn.functional.cross_entropy(logits, labels, label_smoothing=e), mean over the batch. */
export function crossEntropySmoothed(logits: ND, labels: number[], e: number): ND {
  const [B, C] = logits.shape;
  const ls = softmax(logits, 1, true);
  let total = 0;
  for (let b = 0; b < B; b++) {
    let row = 0;
    for (let j = 0; j < C; j++) row -= ((j === labels[b] ? 1 - e : 0) + e / C) * ls.data[b * C + j];
    total += row;
  }
  return nd([], [total / B]);
}
