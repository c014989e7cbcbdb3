// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// ({ key: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }), then the data.
// Reading accepts F32, F16, BF16, F64, I64, I32 (all converted to float32, as the engine has one
// dtype); writing produces F32, or F16 / BF16 for inference exports (the `dtype` option), and I64 for
// `num_batches_tracked` counters, as PyTorch writes them.
// Every check failure names the key (and the file, when given) and what is wrong; as the format requires,
// the tensors' data_offsets must cover the data section exactly, without gaps or overlaps. Writing
// stores a CRC32 of the data section in the metadata (`data_crc32`), and reading checks it when present,
// so bit flips in the data are caught. Saving writes a temporary file and renames it.
// Node-only file access is behind dynamic imports so browser bundles can use the byte-level functions.

import { Tensor, fmt, tensor, floatToHalfBits, floatToBfloat16Bits, halfToFloat } from '../engine/index.js';

export interface HostTensor {
  dtype: 'F32' | 'I64';
  shape: number[];
  data: Float32Array;
}

/** The storage type of the floating-point tensors in a written file (I64 counters stay I64). */
export type SaveDtype = 'F32' | 'F16' | 'BF16';

export interface SaveOptions {
  /**
   * 'F16' or 'BF16' halve the file (for inference exports; training state wants F32). Each float32 is
   * rounded to the nearest representable value, ties to even (as PyTorch's `.half()` / `.bfloat16()`);
   * infinities keep their sign, NaNs stay NaN (canonical quiet NaN, sign kept); finite values beyond the
   * format's range (|x| >= 65520 for F16, about 3.39e38 for BF16) become +-Infinity, and values below
   * half the smallest subnormal become +-0.
   */
  dtype?: SaveDtype;
}

const ITEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1 };

function fail(msg: string, name?: string): never {
  throw new Error(`safetensors: ${name ? `${name}: ` : ''}${msg}`);
}

/** The metadata key under which the data section's CRC32 is stored (8 lowercase hex digits). */
export const CRC_KEY = 'data_crc32';

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3, as zlib and PNG compute it) of the bytes. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/**
 * Parses safetensors bytes into host arrays (float32), validating the header against the data.
 * `name` (a file name) is put in every error message.
 */
export function decodeSafetensors(bytes: Uint8Array, name?: string): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const bad = (msg: string): never => fail(msg, name);
  if (bytes.byteLength < 8) bad(`the file is truncated: ${bytes.byteLength} bytes, a header needs at least 8`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nBig = dv.getBigUint64(0, true);
  if (nBig > BigInt(bytes.byteLength - 8)) bad(`the file is truncated: the header claims ${nBig} bytes but only ${bytes.byteLength - 8} follow`);
  const n = Number(nBig);
  let header: Record<string, unknown> = {};
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    bad(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) bad('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;
  const metaRaw = header.__metadata__ ?? {};
  if (!metaRaw || typeof metaRaw !== 'object' || Array.isArray(metaRaw)) bad(`__metadata__ must be an object of strings, got ${JSON.stringify(metaRaw)}`);
  const metadata = metaRaw as Record<string, string>;
  const ranges: Array<[number, number, string]> = [];
  const tensors = new Map<string, HostTensor>();
  for (const [key, v] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    if (!v || typeof v !== 'object' || Array.isArray(v)) bad(`'${key}': expected an object { dtype, shape, data_offsets }, got ${JSON.stringify(v)}`);
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEM, dtype)) bad(`'${key}': unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM).join(', ')})`);
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`'${key}': invalid shape ${JSON.stringify(info.shape)}`);
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1]) {
      bad(`'${key}': invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [b, e] = off as number[];
    if (e > dataLen) bad(`'${key}': data_offsets [${b}, ${e}] run past the end of the data (${dataLen} bytes): the file is truncated or corrupt`);
    const shape = info.shape as number[];
    const count = shape.reduce((a, d) => a * d, 1);
    const item = ITEM[dtype as string];
    if (e - b !== count * item) bad(`'${key}': shape ${fmt(shape)} of ${dtype} needs ${count * item} bytes, data_offsets give ${e - b}`);
    ranges.push([b, e, key]);
    const data = new Float32Array(count);
    const base = dataStart + b;
    for (let i = 0; i < count; i++) {
      const at = base + i * item;
      switch (dtype) {
        case 'F32': data[i] = dv.getFloat32(at, true); break;
        case 'F64': data[i] = dv.getFloat64(at, true); break;
        case 'F16': data[i] = halfToFloat(dv.getUint16(at, true)); break;
        case 'BF16': data[i] = new Float32Array(new Uint32Array([dv.getUint16(at, true) << 16]).buffer)[0]; break;
        case 'I64': data[i] = Number(dv.getBigInt64(at, true)); break;
        case 'I32': data[i] = dv.getInt32(at, true); break;
        case 'U8': data[i] = dv.getUint8(at); break;
      }
    }
    tensors.set(key, { dtype: dtype === 'I64' ? 'I64' : 'F32', shape, data });
  }
  // The data section must be covered exactly: sorted by offset, each tensor starts where the previous
  // one ends, the first at 0 and the last at the end of the file.
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let end = 0;
  let prev = '';
  for (const [b, e, key] of ranges) {
    if (b < end) bad(`'${key}' overlaps '${prev}' (data_offsets [${b}, ${e}] start before ${end})`);
    if (b > end) bad(`'${key}': a gap of ${b - end} bytes before its data_offsets [${b}, ${e}] (${prev ? `after '${prev}', which ends at ${end}` : 'at the start of the data'}): the data section must be fully covered`);
    end = e;
    prev = key;
  }
  if (end < dataLen) bad(`${dataLen - end} bytes after the last tensor's data${prev ? ` ('${prev}' ends at ${end})` : ''}: the data section must be fully covered`);
  const stored = metadata[CRC_KEY];
  if (stored !== undefined) {
    const actual = hex8(crc32(bytes.subarray(dataStart)));
    if (String(stored).toLowerCase() !== actual) bad(`the data section's CRC32 is ${actual} but the metadata records ${stored}: the tensor data is corrupt`);
  }
  return { tensors, metadata };
}

/**
 * Serialises host tensors; keys keep their insertion order, the header is padded to 8 bytes.
 * `options.dtype` stores the F32 tensors as F16 or BF16 (see SaveOptions for the rounding).
 */
export function encodeSafetensors(tensors: Map<string, HostTensor>, metadata: Record<string, string> = {}, options: SaveOptions = {}): Uint8Array {
  const floatType = options.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(floatType)) fail(`unsupported dtype ${JSON.stringify(floatType)} for writing (expected 'F32', 'F16' or 'BF16')`);
  const stored = (t: HostTensor) => (t.dtype === 'I64' ? 'I64' : floatType);
  // __metadata__ goes first in the header; its CRC32 is filled in once the data is written.
  const header: Record<string, unknown> = { __metadata__: null };
  let off = 0;
  for (const [key, t] of tensors) {
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) fail(`'${key}': ${t.data.length} values for shape ${fmt(t.shape)}`);
    const size = count * ITEM[stored(t)];
    header[key] = { dtype: stored(t), shape: t.shape, data_offsets: [off, off + size] };
    off += size;
  }
  const data = new Uint8Array(off);
  const dv = new DataView(data.buffer);
  let at = 0;
  for (const [key, t] of tensors) {
    const type = stored(t);
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i];
      if (type === 'I64') {
        if (!Number.isFinite(v)) fail(`'${key}': ${v} at index ${i} cannot be stored as I64 (an integer counter)`);
        dv.setBigInt64(at, BigInt(Math.round(v)), true);
      } else if (type === 'F32') dv.setFloat32(at, v, true);
      else dv.setUint16(at, type === 'F16' ? floatToHalfBits(v) : floatToBfloat16Bits(v), true);
      at += ITEM[type];
    }
  }
  header.__metadata__ = { ...metadata, [CRC_KEY]: hex8(crc32(data)) };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

/** Reads a safetensors file (a path in Node, or the bytes) into GPU tensors by key. */
export async function loadSafetensors(source: string | Uint8Array | ArrayBuffer): Promise<Map<string, Tensor>> {
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    const fs = await import('node:fs/promises');
    try {
      bytes = new Uint8Array(await fs.readFile(source));
    } catch (e) {
      fail(`cannot read '${source}': ${(e as Error).message}`);
    }
  } else bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  const { tensors } = decodeSafetensors(bytes, typeof source === 'string' ? source : undefined);
  const out = new Map<string, Tensor>();
  for (const [k, t] of tensors) out.set(k, tensor(t.data, t.shape));
  return out;
}

/** Reads GPU tensors back to the host for saving (`num_batches_tracked` as I64, as PyTorch has it). */
export async function toHostTensors(tensors: Map<string, Tensor> | Record<string, Tensor>): Promise<Map<string, HostTensor>> {
  const src = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const out = new Map<string, HostTensor>();
  for (const [k, t] of src) {
    out.set(k, { dtype: k.endsWith('num_batches_tracked') ? 'I64' : 'F32', shape: [...t.shape], data: await t.data() });
  }
  return out;
}

/**
 * Writes tensors to a safetensors file atomically (a temporary file, then a rename). Node only.
 * `{ dtype: 'F16' | 'BF16' }` writes a half-size file for inference (see SaveOptions for the rounding).
 */
export async function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}, options: SaveOptions = {}): Promise<void> {
  const bytes = encodeSafetensors(await toHostTensors(tensors), metadata, options);
  await writeFileAtomic(path, bytes);
}

/** Writes bytes to `path` through a temporary file in the same folder and a rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const fs = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    fail(`cannot write '${path}': ${(e as Error).message}`);
  }
}
