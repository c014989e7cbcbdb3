// The storage type of a kernel's activation bindings: one more parameter of the composed WGSL, so no
// kernel is written twice for float32 and float16.
//
// A kernel body names the element type of each activation binding by a role, e.g.
//   @group(0) @binding(1) var<storage, read> X: array<X_T>;
// loads with `f32(X[i])` (or `vec4<f32>(X4[i])`) and stores with `Y[i] = Y_st(v)` (`Y_st4` for vec4).
// `storageTypes({ X: 'float16', Y: 'float32' })` makes the snippet that defines X_T, Y_T and their store
// functions, plus the `enable f16;` directive when any role is float16. The runtime reads the aliases
// back when it checks buffers against bindings (engine/runtime.ts).

import { itemBytes, type DType } from './dtype.js';
import { gpu } from './gpu.js';
import { compose, type KernelSource } from './runtime.js';
import halfStore from '../shaders/half_store.wgsl';

export interface StorageTypes {
  /** The snippet defining each role's alias and store functions. */
  snippet: KernelSource;
  /** `f16` when some role is float16. */
  enables: string[];
  /** A short name for profiles and cache keys, e.g. 'X16.Y32'. */
  key: string;
}

const cache = new Map<string, StorageTypes>();

/** The snippet for these roles' element types (cached; the same roles and types give the same object). */
export function storageTypes(roles: Record<string, DType>): StorageTypes {
  const names = Object.keys(roles).sort();
  const key = names.map((r) => `${r}${itemBytes(roles[r]) * 8}`).join('.');
  let st = cache.get(key);
  if (st) return st;
  const half = names.some((r) => roles[r] === 'float16');
  if (half && !gpu().features.shaderF16) {
    throw new Error(
      `float16 storage (${key}) needs the adapter feature 'shader-f16', which this adapter (${gpu().adapter.description || 'unknown'}) lacks; use precision 'fp32'`,
    );
  }
  const lines = names.map((r) => {
    const t = roles[r] === 'float16' ? 'f16' : 'f32';
    const st1 = t === 'f16' ? 'to_half(v)' : 'v';
    const st4 = t === 'f16' ? 'vec4<f16>(to_half(v.x), to_half(v.y), to_half(v.z), to_half(v.w))' : 'v';
    return `alias ${r}_T = ${t};\nfn ${r}_st(v: f32) -> ${t} { return ${st1}; }\nfn ${r}_st4(v: vec4<f32>) -> vec4<${t}> { return ${st4}; }`;
  });
  const source = [`// storage types ${key} (engine/storage.ts)`, ...lines, ...(half ? [halfStore] : [])].join('\n');
  st = { snippet: { file: `storage[${key}]`, source }, enables: half ? ['f16'] : [], key };
  cache.set(key, st);
  return st;
}

const composed = new WeakMap<KernelSource, Map<string, KernelSource>>();

/**
 * `body` with the storage types of its roles (and any other snippets, e.g. how operands reach the
 * lanes, with their `enable` directives and variant name), composed once and cached.
 */
export function typed(body: KernelSource, roles: Record<string, DType>, o: { snippets?: KernelSource[]; enables?: string[]; variant?: string } = {}): KernelSource {
  const st = storageTypes(roles);
  const key = `${o.variant ?? ''}|${st.key}|${(o.snippets ?? []).map((s) => s.file).join(',')}`;
  let byKey = composed.get(body);
  if (!byKey) composed.set(body, (byKey = new Map()));
  let k = byKey.get(key);
  if (!k) {
    // Profiles name the storage types only where some are float16 (float32 is the default).
    const variant = st.enables.length ? (o.variant ? `${o.variant},${st.key}` : st.key) : o.variant;
    k = compose(body, [...(o.snippets ?? []), st.snippet], { enables: [...(o.enables ?? []), ...st.enables], variant });
    byKey.set(key, k);
  }
  return k;
}
