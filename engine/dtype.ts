// Element types of tensors. Compute is always float32; a tensor's storage is float32, or float16 for
// activations under mixed precision (half the bytes). A kernel reads and writes storage through the
// element types of its bindings, which the runtime checks against the buffers it is given (a float16
// buffer bound where a kernel reads float32 is an error, never a silent reinterpretation).
// Host conversions between float32 and the 16-bit formats live here too (round to nearest, ties to
// even, as PyTorch's `.half()`): tensors' uploads and read-backs, safetensors export, CPU references.

export type DType = 'float32' | 'float16';

export const DTYPES: readonly DType[] = ['float32', 'float16'];

/** Bytes per element. */
export function itemBytes(dtype: DType): number {
  return dtype === 'float16' ? 2 : 4;
}

/** The dtype of a result computed from these inputs: float16 when every one is, else float32 (PyTorch's promotion). */
export function resultDtype(inputs: readonly DType[]): DType {
  return inputs.every((d) => d === 'float16') ? 'float16' : 'float32';
}

/** Throws a clear error unless `d` names a dtype. */
export function checkDtype(where: string, d: unknown): DType {
  if (d !== 'float32' && d !== 'float16') throw new Error(`${where}: unknown dtype ${JSON.stringify(d)} (expected 'float32' or 'float16')`);
  return d;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The IEEE binary16 bits nearest to a float32 value (round to nearest, ties to even). */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // the binary16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  // Normal: keep 10 of the 23 mantissa bits. Subnormal: the value in units of 2^-24 is m * 2^(exp - 126).
  const m = e > 0 ? mant : mant | 0x800000;
  const shift = e > 0 ? 13 : 126 - exp;
  if (exp === 0 || shift > 24) return sign; // below 2^-25 (a tie at exactly 2^-25 goes to the even 0)
  let h = (e > 0 ? e << 10 : 0) | (m >>> shift);
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // A carry out of the mantissa moves to the next exponent (or to infinity), as it should.
  if (rest > half || (rest === half && h & 1)) h++;
  return sign | h;
}

/** The bfloat16 bits nearest to a float32 value (round to nearest, ties to even). */
export function floatToBfloat16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return ((b >>> 16) & 0x8000) | 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float32 value of IEEE binary16 bits. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}


/** float32 values rounded to float16 and back (what a float16 store keeps), in a new array. */
export function roundToHalf(a: ArrayLike<number>): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = halfToFloat(floatToHalfBits(a[i]));
  return out;
}
