// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// ({ key: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }), then the data.
// Reading accepts F32, F16, BF16, F64, I64, I32 (all converted to float32, as the engine has one
// dtype); writing produces F32 (and I64 for `num_batches_tracked` counters, as PyTorch writes them).
// Every check failure names the key and what is wrong. Saving writes a temporary file and renames it.
// Node-only file access is behind dynamic imports so browser bundles can use the byte-level functions.

import { Tensor, fmt, tensor } from '../engine/index.js';

export interface HostTensor {
  dtype: 'F32' | 'I64';
  shape: number[];
  data: Float32Array;
}

const ITEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1 };

function fail(msg: string): never {
  throw new Error(`safetensors: ${msg}`);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Parses safetensors bytes into host arrays (float32), validating the header against the data. */
export function decodeSafetensors(bytes: Uint8Array): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  if (bytes.byteLength < 8) fail(`the file is truncated: ${bytes.byteLength} bytes, a header needs at least 8`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.byteLength - 8) fail(`the file is truncated: the header claims ${n} bytes but only ${bytes.byteLength - 8} follow`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const ranges: Array<[number, number, string]> = [];
  const tensors = new Map<string, HostTensor>();
  for (const [key, v] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info.dtype !== 'string' || !(info.dtype in ITEM)) fail(`'${key}': unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(ITEM).join(', ')})`);
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`'${key}': invalid shape ${JSON.stringify(info.shape)}`);
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1]) {
      fail(`'${key}': invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [b, e] = off as number[];
    if (e > dataLen) fail(`'${key}': data_offsets [${b}, ${e}] run past the end of the data (${dataLen} bytes): the file is truncated or corrupt`);
    const shape = info.shape as number[];
    const count = shape.reduce((a, d) => a * d, 1);
    const item = ITEM[info.dtype];
    if (e - b !== count * item) fail(`'${key}': shape ${fmt(shape)} of ${info.dtype} needs ${count * item} bytes, data_offsets give ${e - b}`);
    ranges.push([b, e, key]);
    const data = new Float32Array(count);
    const base = dataStart + b;
    for (let i = 0; i < count; i++) {
      const at = base + i * item;
      switch (info.dtype) {
        case 'F32': data[i] = dv.getFloat32(at, true); break;
        case 'F64': data[i] = dv.getFloat64(at, true); break;
        case 'F16': data[i] = halfToFloat(dv.getUint16(at, true)); break;
        case 'BF16': data[i] = new Float32Array(new Uint32Array([dv.getUint16(at, true) << 16]).buffer)[0]; break;
        case 'I64': data[i] = Number(dv.getBigInt64(at, true)); break;
        case 'I32': data[i] = dv.getInt32(at, true); break;
        case 'U8': data[i] = dv.getUint8(at); break;
      }
    }
    tensors.set(key, { dtype: info.dtype === 'I64' ? 'I64' : 'F32', shape, data });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) fail(`'${ranges[i][2]}' overlaps '${ranges[i - 1][2]}' (data_offsets [${ranges[i][0]}, ${ranges[i][1]}] and [${ranges[i - 1][0]}, ${ranges[i - 1][1]}])`);
  }
  return { tensors, metadata };
}

/** Serialises host tensors; keys keep their insertion order, the header is padded to 8 bytes. */
export function encodeSafetensors(tensors: Map<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const [key, t] of tensors) {
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) fail(`'${key}': ${t.data.length} values for shape ${fmt(t.shape)}`);
    const size = count * ITEM[t.dtype];
    header[key] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + size] };
    off += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const t of tensors.values()) {
    for (let i = 0; i < t.data.length; i++) {
      if (t.dtype === 'I64') {
        dv.setBigInt64(at, BigInt(Math.round(t.data[i])), true);
        at += 8;
      } else {
        dv.setFloat32(at, t.data[i], true);
        at += 4;
      }
    }
  }
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
  const { tensors } = decodeSafetensors(bytes);
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

/** Writes tensors to a safetensors file atomically (a temporary file, then a rename). Node only. */
export async function saveSafetensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  const bytes = encodeSafetensors(await toHostTensors(tensors), metadata);
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
