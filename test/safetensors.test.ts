import { describe, expect, test } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import * as nn from '../nn/index.js';
import { useEngine } from './helpers.js';

useEngine();

/** A safetensors file written by hand (as a script in another language would). */
function handWritten(entries: Array<{ key: string; dtype: string; shape: number[]; bytes: Uint8Array }>, pad = true): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const e of entries) {
    header[e.key] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const e of entries) {
    out.set(e.bytes, at);
    at += e.bytes.length;
  }
  return out;
}

const f32 = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

describe('safetensors', () => {
  test('round trip of a model: save, load into a fresh model, identical outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    const make = () => new nn.Sequential(new nn.Conv2d(2, 3, 3, { padding: 1 }), new nn.BatchNorm2d(3), new nn.ReLU(), new nn.Flatten(), new nn.Linear(3 * 4 * 4, 5));
    const a = make();
    const x = E.randn([2, 2, 4, 4]);
    a(x); // a training step moves the BN running statistics
    a.eval();
    const ya = await a(x).data();
    const path = join(dir, 'model.safetensors');
    await nn.saveSafetensors(path, a.stateDict());
    expect(readdirSync(dir)).toEqual(['model.safetensors']); // no temporary file left
    const b = make();
    b.loadStateDict(await nn.loadSafetensors(path));
    b.eval();
    expect(Array.from(await b(x).data())).toEqual(Array.from(ya));
  });

  test('reads F16, BF16, I64 and F64 as float32; writes num_batches_tracked as I64', async () => {
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer); // 1, -2, ~0.333
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer); // 1, -3
    const i64 = new Uint8Array(new BigInt64Array([7n]).buffer);
    const f64 = new Uint8Array(new Float64Array([0.5, 1.5]).buffer);
    const bytes = handWritten([
      { key: 'a', dtype: 'F16', shape: [3], bytes: f16 },
      { key: 'b', dtype: 'BF16', shape: [2], bytes: bf16 },
      { key: 'n', dtype: 'I64', shape: [], bytes: i64 },
      { key: 'd', dtype: 'F64', shape: [2, 1], bytes: f64 },
    ]);
    const m = await nn.loadSafetensors(bytes);
    expect(Array.from(await m.get('a')!.data())[2]).toBeCloseTo(0.33325, 4);
    expect(Array.from(await m.get('b')!.data())).toEqual([1, -3]);
    expect(await m.get('n')!.item()).toBe(7);
    expect(m.get('d')!.shape).toEqual([2, 1]);
    const enc = nn.encodeSafetensors(await nn.toHostTensors({ 'bn.num_batches_tracked': E.tensor(3), w: E.tensor([1, 2]) }));
    const headerLen = Number(new DataView(enc.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(enc.subarray(8, 8 + headerLen)));
    expect(header['bn.num_batches_tracked'].dtype).toBe('I64');
    expect(header.w.dtype).toBe('F32');
  });

  test('bad files get errors that name the key and the problem', () => {
    const good = handWritten([{ key: 'w', dtype: 'F32', shape: [2], bytes: f32([1, 2]) }]);
    expect(() => nn.decodeSafetensors(good.subarray(0, 5))).toThrow(/truncated/);
    expect(() => nn.decodeSafetensors(good.subarray(0, good.length - 4))).toThrow(/'w': data_offsets \[0, 8\] run past the end/);
    const overlap = handWritten([
      { key: 'a', dtype: 'F32', shape: [2], bytes: f32([1, 2]) },
      { key: 'b', dtype: 'F32', shape: [2], bytes: f32([3, 4]) },
    ]);
    const text = new TextDecoder().decode(overlap).replace('"data_offsets":[8,16]', '"data_offsets":[4,12]');
    expect(() => nn.decodeSafetensors(new TextEncoder().encode(text))).toThrow(/'b' overlaps 'a'|'a' overlaps/);
    const badType = handWritten([{ key: 'w', dtype: 'C64', shape: [1], bytes: f32([1, 2]) }]);
    expect(() => nn.decodeSafetensors(badType)).toThrow(/'w': unsupported dtype "C64"/);
    const badShape = handWritten([{ key: 'w', dtype: 'F32', shape: [3], bytes: f32([1, 2]) }]);
    expect(() => nn.decodeSafetensors(badShape)).toThrow(/'w': shape \[3\] of F32 needs 12 bytes/);
  });

  test('a shape mismatch against the model names the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'st-'));
    const path = join(dir, 'bad.safetensors');
    writeFileSync(path, handWritten([
      { key: 'weight', dtype: 'F32', shape: [1, 2], bytes: f32([1, 2]) },
      { key: 'bias', dtype: 'F32', shape: [1], bytes: f32([0]) },
    ]));
    const lin = new nn.Linear(3, 1);
    await expect(nn.loadSafetensors(path).then((d) => lin.loadStateDict(d))).rejects.toThrow(/'weight' has shape \[1, 2\].*expects \[1, 3\]/);
    await expect(nn.loadSafetensors(join(dir, 'missing.safetensors'))).rejects.toThrow(/cannot read/);
  });

  test('edge cases of the header get errors naming the key, and exact numbers (issue 13, item 14)', () => {
    const raw = (header: unknown, data = new Uint8Array(0)) => {
      const hb = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + hb.length + data.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
      out.set(hb, 8);
      out.set(data, 8 + hb.length);
      return out;
    };
    expect(() => nn.decodeSafetensors(raw({ w: null }))).toThrow(/'w': expected an object \{ dtype, shape, data_offsets \}, got null/);
    expect(() => nn.decodeSafetensors(raw({ w: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }, f32([1])))).toThrow(/'w': unsupported dtype "constructor"/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 18446744073709551615n, true);
    expect(() => nn.decodeSafetensors(huge)).toThrow(/the header claims 18446744073709551615 bytes but only 8 follow/);
    const gap = raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32([1, 2, 3]));
    expect(() => nn.decodeSafetensors(gap, 'gap.safetensors')).toThrow(/safetensors: gap.safetensors: 'b': a gap of 4 bytes before its data_offsets \[8, 12\] \(after 'a'/);
    const lead = raw({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32([1, 2]));
    expect(() => nn.decodeSafetensors(lead)).toThrow(/'a': a gap of 4 bytes .*at the start of the data/);
    const tail = raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32([1, 2]));
    expect(() => nn.decodeSafetensors(tail)).toThrow(/4 bytes after the last tensor's data \('a' ends at 4\)/);
    expect(() => nn.encodeSafetensors(new Map([['n', { dtype: 'I64' as const, shape: [2], data: new Float32Array([1, NaN]) }]]))).toThrow(
      /safetensors: 'n': NaN at index 1 cannot be stored as I64/,
    );
  });

  test('a CRC32 of the data is written and checked: a flipped bit names the file', () => {
    const enc = nn.encodeSafetensors(new Map([['w', { dtype: 'F32' as const, shape: [3], data: new Float32Array([1, 2, 3]) }]]), { note: 'x' });
    const { metadata } = nn.decodeSafetensors(enc);
    expect(metadata.note).toBe('x');
    expect(metadata.data_crc32).toMatch(/^[0-9a-f]{8}$/);
    expect(nn.crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926); // the standard check value
    const flipped = enc.slice();
    flipped[flipped.length - 2] ^= 0x10;
    expect(() => nn.decodeSafetensors(flipped, 'ck.safetensors')).toThrow(/safetensors: ck.safetensors: the data section's CRC32 is [0-9a-f]{8} but the metadata records [0-9a-f]{8}/);
  });

  describe('F16 and BF16 exports', () => {
    // PyTorch 1.13's .half() / .bfloat16() bits of awkward float32 values (test/fixtures/make_half_fixtures.py).
    const fx = JSON.parse(readFileSync(join(__dirname, 'fixtures/half.json'), 'utf8')) as { f32: number[]; f16: number[]; bf16: number[] };
    const values = new Float32Array(new Uint32Array(fx.f32).buffer);
    const isNaNBits = (h: number, expMask: number, mantMask: number) => (h & expMask) === expMask && (h & mantMask) !== 0;

    test('the conversion gives PyTorch bits on a few hundred awkward values (NaNs stay NaN)', () => {
      expect(values.length).toBeGreaterThan(300);
      for (const [name, convert, want, exp, mant] of [
        ['F16', E.floatToHalfBits, fx.f16, 0x7c00, 0x3ff],
        ['BF16', E.floatToBfloat16Bits, fx.bf16, 0x7f80, 0x7f],
      ] as const) {
        values.forEach((v, i) => {
          const got = convert(v);
          const where = `${name} of float32 bits 0x${fx.f32[i].toString(16)} (${v})`;
          if (Number.isNaN(v)) expect(isNaNBits(got, exp, mant), where).toBe(true);
          else expect(got.toString(16), where).toBe(want[i].toString(16));
        });
      }
    });

    test('the conversions are exported from densenet-webgpu/nn (where they were first) and from the engine', () => {
      expect(nn.floatToHalfBits).toBe(E.floatToHalfBits);
      expect(nn.floatToBfloat16Bits).toBe(E.floatToBfloat16Bits);
    });

    test('edge values: ties to even, overflow to infinity, underflow to signed zero', () => {
      const h = E.floatToHalfBits;
      expect([h(65504), h(65519.99), h(65520), h(-1e6), h(Infinity), h(-Infinity)]).toEqual([0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x7c00, 0xfc00]);
      expect([h(1 + 2 ** -11), h(1 + 3 * 2 ** -11), h(2 ** -25), h(1.5 * 2 ** -25), h(-(2 ** -26))]).toEqual([0x3c00, 0x3c02, 0x0000, 0x0001, 0x8000]);
      const b = E.floatToBfloat16Bits;
      expect([b(1 + 2 ** -8), b(1 + 3 * 2 ** -8), b(3.4e38), b(-Infinity)]).toEqual([0x3f80, 0x3f82, 0x7f80, 0xff80]);
      expect(b(NaN) & 0x7fff).toBe(0x7fc0);
    });

    test('encode then decode: the loader reads back the rounded values; counters stay I64; the file halves', () => {
      const data = values.filter((v) => !Number.isNaN(v));
      const t = new Map<string, nn.HostTensor>([
        ['w', { dtype: 'F32', shape: [data.length], data }],
        ['bn.num_batches_tracked', { dtype: 'I64', shape: [], data: new Float32Array([7]) }],
      ]);
      const f32Size = nn.encodeSafetensors(t).length;
      for (const [dtype, want] of [['F16', fx.f16], ['BF16', fx.bf16]] as const) {
        const bytes = nn.encodeSafetensors(t, { note: 'x' }, { dtype });
        expect(bytes.length).toBeLessThan(f32Size - 2 * data.length + 64);
        const back = nn.decodeSafetensors(bytes);
        expect(back.metadata.note).toBe('x');
        expect(back.tensors.get('bn.num_batches_tracked')).toEqual({ dtype: 'I64', shape: [], data: new Float32Array([7]) });
        const w = back.tensors.get('w')!;
        const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)))));
        expect(header.w.dtype).toBe(dtype);
        // Each value read back is exactly the PyTorch-rounded value (as float32 bits).
        const wantBits = [...values.keys()].filter((i) => !Number.isNaN(values[i])).map((i) => want[i]);
        const asF32 = (hb: number) => (dtype === 'BF16' ? hb << 16 : new Uint32Array(new Float32Array([halfBitsToNumber(hb)]).buffer)[0]) >>> 0;
        w.data.forEach((v, i) => expect(new Uint32Array(new Float32Array([v]).buffer)[0], `${dtype} value ${i}`).toBe(asF32(wantBits[i])));
      }
      expect(() => nn.encodeSafetensors(t, {}, { dtype: 'F8' as 'F16' })).toThrow(/safetensors: unsupported dtype "F8" for writing \(expected 'F32', 'F16' or 'BF16'\)/);
    });

    test('saveSafetensors with { dtype: "F16" } then loadSafetensors gives the rounded tensors', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'st16-'));
      const x = E.tensor([1 / 3, -2.5, 70000, 1e-8], [2, 2]);
      await nn.saveSafetensors(join(dir, 'h.safetensors'), { x }, {}, { dtype: 'F16' });
      const back = await nn.loadSafetensors(join(dir, 'h.safetensors'));
      expect([...(await back.get('x')!.data())]).toEqual([0.333251953125, -2.5, Infinity, 0]);
      expect(back.get('x')!.shape).toEqual([2, 2]);
      x.dispose();
      back.get('x')!.dispose();
    });

    test('float16 tensors (and a float16 view at an odd offset) export with their values, as F32 or F16', async (ctx) => {
      if (!E.gpu().features.shaderF16) ctx.skip();
      const h = E.tensor([1 / 3, -2.5, 65504, 1e-8, 7, 0.1], [2, 3]).half();
      const col = E.slice(E.transpose(h, 0, 1), 0, 1, 3); // [[-2.5, 7], [65504, 0.1]] from element offset 1
      const want = { h: Array.from(E.roundToHalf([1 / 3, -2.5, 65504, 1e-8, 7, 0.1])), col: Array.from(E.roundToHalf([-2.5, 7, 65504, 0.1])) };
      for (const dtype of ['F32', 'F16'] as const) {
        const back = nn.decodeSafetensors(nn.encodeSafetensors(await nn.toHostTensors({ h, col }), {}, { dtype })).tensors;
        expect(Array.from(back.get('h')!.data), dtype).toEqual(want.h);
        expect(back.get('col')!.shape).toEqual([2, 2]);
        expect(Array.from(back.get('col')!.data), dtype).toEqual(want.col);
      }
      col.dispose();
      h.dispose();
    });
  });
});

/** The value of binary16 bits (a plain reference, independent of the loader's decoder). */
function halfBitsToNumber(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}
