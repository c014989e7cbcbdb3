// The IDX format of MNIST and Fashion-MNIST (`*-idx3-ubyte` images, `*-idx1-ubyte` labels), parsed
// from bytes (no Node imports: this file runs in browsers too). A file is: 2 zero bytes, a type byte
// (0x08 = unsigned byte), the number of dimensions, each dimension as a big-endian u32, then the data.
// gzipped files are decompressed by decodeIdx() with the platform's DecompressionStream (browsers,
// Node >= 18); data/node.ts reads files from disk. Every check names the file and what is wrong.

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/** Parses uncompressed IDX bytes; `name` appears in errors; `expectDims` checks the dimension count. */
export function parseIdx(bytes: Uint8Array, name: string, expectDims?: number): IdxArray {
  const b = bytes;
  if (isGzip(b)) throw new Error(`${name}: the data is gzipped; decompress it first (decodeIdx() does)`);
  if (b.length < 4) throw new Error(`${name}: truncated: ${b.length} bytes, an IDX header needs at least 4`);
  if (b[0] !== 0 || b[1] !== 0) throw new Error(`${name}: wrong magic number: the first two bytes are ${b[0]}, ${b[1]}, expected 0, 0 (not an IDX file)`);
  if (b[2] !== 0x08) throw new Error(`${name}: unsupported IDX element type 0x${b[2].toString(16)}; expected 0x08 (unsigned bytes)`);
  const ndim = b[3];
  if (expectDims !== undefined && ndim !== expectDims) {
    throw new Error(`${name}: wrong number of dimensions: the header says ${ndim}, expected ${expectDims} (${expectDims === 3 ? 'an images file, idx3' : 'a labels file, idx1'})`);
  }
  if (b.length < 4 + 4 * ndim) throw new Error(`${name}: truncated inside the header (${b.length} bytes)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(dv.getUint32(4 + 4 * i, false));
  const n = shape.reduce((x, y) => x * y, 1);
  const start = 4 + 4 * ndim;
  if (b.length - start < n) throw new Error(`${name}: truncated: the header promises ${n} bytes of data (shape [${shape}]), the file has ${b.length - start}`);
  if (b.length - start > n) throw new Error(`${name}: ${b.length - start - n} unexpected bytes after the data (shape [${shape}])`);
  return { shape, data: b.subarray(start, start + n) };
}

/** Decompresses gzip bytes with DecompressionStream. */
export async function gunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`${name}: the gzip stream is corrupt or truncated (${(e as Error).message})`);
  }
}

/** Parses IDX bytes, gzipped or not. */
export async function decodeIdx(bytes: Uint8Array | ArrayBuffer, name: string, expectDims?: number): Promise<IdxArray> {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return parseIdx(isGzip(b) ? await gunzip(b, name) : b, name, expectDims);
}

/** Images [N, H, W] and their labels, checked to agree. */
export interface ImageSet {
  /** Where the images came from (a file name), for messages. */
  source?: string;
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/** Pairs a parsed images file with its labels file: counts must agree and labels be < numClasses. */
export function imageSet(images: IdxArray, labels: IdxArray, names: [string, string], numClasses = 10): ImageSet {
  if (images.shape.length !== 3) throw new Error(`${names[0]}: expected images [N, H, W], got shape [${images.shape}]`);
  if (labels.shape.length !== 1) throw new Error(`${names[1]}: expected labels [N], got shape [${labels.shape}]`);
  if (images.shape[1] === 0 || images.shape[2] === 0) throw new Error(`${names[0]}: the images are ${images.shape[1]}x${images.shape[2]}; they need at least one pixel`);
  if (images.shape[0] !== labels.shape[0]) throw new Error(`${names[1]}: ${labels.shape[0]} labels, but ${names[0]} has ${images.shape[0]} images`);
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] >= numClasses) throw new Error(`${names[1]}: label ${labels.data[i]} at index ${i} is not a class 0-${numClasses - 1}`);
  }
  return { source: names[0], images: images.data, labels: labels.data, count: images.shape[0], height: images.shape[1], width: images.shape[2] };
}
