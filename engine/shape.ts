// Shape arithmetic shared by the ops: strides, broadcasting, axis checks, dimension collapsing.

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A size given as one number or as [height, width], as [height, width]. */
export function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

export function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: invalid shape ${fmt(shape)}: dimensions must be non-negative integers`);
  }
}

/** numpy/PyTorch broadcasting of two shapes; throws naming the op and both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides for viewing a tensor of `shape`/`strides` as `target` by broadcasting (stride 0 on expanded dims). */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const off = target.length - shape.length;
  return target.map((d, i) => {
    const j = i - off;
    if (j < 0) return 0;
    return shape[j] === 1 && d !== 1 ? 0 : strides[j];
  });
}

/** Normalises a possibly negative axis; throws naming the op, the shape and the valid range. */
export function normAxis(op: string, axis: number, ndim: number, shape?: Shape): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    const what = shape ? `a tensor of shape ${fmt(shape)}` : `${ndim} dimensions`;
    throw new Error(`${op}: axis ${axis} is out of range for ${what} (expected an integer in [${-ndim}, ${ndim - 1}])`);
  }
  return axis < 0 ? axis + ndim : axis;
}

/**
 * Merges adjacent dimensions that every stride list walks contiguously, and drops size-1 dimensions,
 * so kernels do fewer index divisions. Returns the collapsed shape and one stride list per input.
 */
export function collapse(shape: Shape, strideLists: ReadonlyArray<readonly number[]>): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  const strides: number[][] = strideLists.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const k = dims.length - 1;
    const mergeable =
      k >= 0 && strideLists.every((s, j) => strides[j][k] === s[i] * shape[i]);
    if (mergeable) {
      dims[k] *= shape[i];
      strideLists.forEach((s, j) => (strides[j][k] = s[i]));
    } else {
      dims.push(shape[i]);
      strideLists.forEach((s, j) => strides[j].push(s[i]));
    }
  }
  return { shape: dims, strides };
}

export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== acc) return false;
    acc *= shape[i];
  }
  return true;
}
