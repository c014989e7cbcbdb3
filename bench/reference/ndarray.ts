// The CPU reference: plain loops over float64 arrays, written to be obviously correct, not fast.
// Every GPU kernel is tested against these functions (test/ imports them through test/reference/), and the
// demo page's self-checks (bench/web/selfcheck.ts) run some of them in the browser. They import nothing
// from the engine.

export interface ND {
  shape: number[];
  data: Float64Array;
}

export function nd(shape: number[], data?: ArrayLike<number>): ND {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float64Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`nd: ${data.length} values for shape [${shape}]`);
    d.set(data);
  }
  return { shape: [...shape], data: d };
}

export function stridesOf(shape: number[]): number[] {
  const s: number[] = new Array(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Calls f with the coordinates of every element of `shape`, in row-major order. */
export function forEachIndex(shape: number[], f: (idx: number[], flat: number) => void): void {
  const n = shape.reduce((a, b) => a * b, 1);
  const idx = new Array(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    f(idx, flat);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

export function get(a: ND, idx: number[]): number {
  const st = stridesOf(a.shape);
  let o = 0;
  for (let i = 0; i < idx.length; i++) o += idx[i] * st[i];
  return a.data[o];
}

export function broadcastShape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error('reference: not broadcastable');
    out.push(Math.max(da, db));
  }
  return out;
}

/** Element of `a` at output coordinates `idx` under broadcasting. */
function bget(a: ND, idx: number[]): number {
  const off = idx.length - a.shape.length;
  const st = stridesOf(a.shape);
  let o = 0;
  for (let i = 0; i < a.shape.length; i++) o += (a.shape[i] === 1 ? 0 : idx[off + i]) * st[i];
  return a.data[o];
}

export function map(a: ND, f: (x: number) => number): ND {
  const out = nd(a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[i] = f(a.data[i]);
  return out;
}

export function zip(a: ND, b: ND, f: (x: number, y: number) => number): ND {
  const shape = broadcastShape(a.shape, b.shape);
  const out = nd(shape);
  forEachIndex(shape, (idx, flat) => (out.data[flat] = f(bget(a, idx), bget(b, idx))));
  return out;
}

/** Sum (or another fold) over the given axes. */
export function reduce(a: ND, axes: number[], keepdims: boolean, init: number, f: (acc: number, x: number) => number): ND {
  const keptShape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = nd(keptShape);
  out.data.fill(init);
  const st = stridesOf(keptShape);
  forEachIndex(a.shape, (idx, flat) => {
    let o = 0;
    for (let i = 0; i < idx.length; i++) if (!axes.includes(i)) o += idx[i] * st[i];
    out.data[o] = f(out.data[o], a.data[flat]);
  });
  if (!keepdims) out.shape = a.shape.filter((_, i) => !axes.includes(i));
  return out;
}

export const sum = (a: ND, axes: number[], keepdims = false) => reduce(a, axes, keepdims, 0, (s, x) => s + x);

/** Batched matmul of [..., M, K] x [..., K, N] with broadcast batch dims. */
export function matmul(a: ND, b: ND): ND {
  const M = a.shape[a.shape.length - 2];
  const K = a.shape[a.shape.length - 1];
  const N = b.shape[b.shape.length - 1];
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = nd([...batch, M, N]);
  let at = 0;
  forEachIndex(batch, (bi) => {
    // the start of this batch entry's matrices in a and b (broadcast batch dims repeat)
    const aOff = bOffset(a, bi) * M * K;
    const bOff = bOffset(b, bi) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a.data[aOff + m * K + k] * b.data[bOff + k * N + n];
        out.data[at++] = acc;
      }
    }
  });
  return out;
}

/** Index of the batch entry `bi` (of the broadcast batch shape) within x's own batch dims. */
function bOffset(x: ND, bi: number[]): number {
  const xb = x.shape.slice(0, -2);
  const off = bi.length - xb.length;
  let o = 0;
  for (let i = 0; i < xb.length; i++) o = o * xb[i] + (xb[i] === 1 ? 0 : bi[off + i]);
  return o;
}

export function transpose(a: ND, perm: number[]): ND {
  const shape = perm.map((p) => a.shape[p]);
  const out = nd(shape);
  forEachIndex(shape, (idx, flat) => {
    const src = new Array(idx.length);
    perm.forEach((p, i) => (src[p] = idx[i]));
    out.data[flat] = get(a, src);
  });
  return out;
}

/** Elements [start, end) along axis. */
export function slice(a: ND, axis: number, start: number, end: number): ND {
  const shape = [...a.shape];
  shape[axis] = end - start;
  const out = nd(shape);
  forEachIndex(shape, (idx, flat) => {
    const src = [...idx];
    src[axis] += start;
    out.data[flat] = get(a, src);
  });
  return out;
}

export function cat(xs: ND[], axis: number): ND {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const out = nd(shape);
  forEachIndex(shape, (idx, flat) => {
    let i = idx[axis];
    for (const x of xs) {
      if (i < x.shape[axis]) {
        const src = [...idx];
        src[axis] = i;
        out.data[flat] = get(x, src);
        return;
      }
      i -= x.shape[axis];
    }
  });
  return out;
}
