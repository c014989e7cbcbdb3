// Precision of a model's activations: 'fp32' (every tensor float32) or 'mixed' (activations stored as
// float16 (half the bytes); every kernel still computes and accumulates in float32; parameters,
// optimiser state, batch-norm statistics, the classifier and the loss stay float32). Models take a
// `precision` option; its default is the engine's, set by `init({ precision })` or setDefaultPrecision().
// Mixed needs the adapter feature 'shader-f16': a model asked for it explicitly on an adapter without
// it throws; an engine default of 'mixed' there falls back to 'fp32' with one notice.

import type { DType } from './dtype.js';
import { gpu, isInitialised } from './gpu.js';

export type Precision = 'fp32' | 'mixed';

export const PRECISIONS: readonly Precision[] = ['fp32', 'mixed'];

let current: Precision = 'fp32';
let noticed = false;

function valid(where: string, p: unknown): Precision {
  if (p !== 'fp32' && p !== 'mixed') throw new Error(`${where}: unknown precision ${JSON.stringify(p)} (expected 'fp32' or 'mixed')`);
  return p;
}

/** Whether this adapter can run mixed precision (float16 storage needs 'shader-f16'). */
export function mixedSupported(): boolean {
  return isInitialised() && gpu().features.shaderF16;
}

/**
 * `p` checked: an unknown name, or 'mixed' on an adapter without shader-f16, is an error naming `where`
 * and what to do.
 */
export function checkPrecision(where: string, p: unknown): Precision {
  const ok = valid(where, p);
  if (ok === 'mixed' && isInitialised() && !gpu().features.shaderF16) {
    throw new Error(
      `${where}: precision 'mixed' stores activations as float16, which needs the adapter feature 'shader-f16'; ` +
        `this adapter (${gpu().adapter.description || 'unknown'}) lacks it: use precision 'fp32'`,
    );
  }
  return ok;
}

/**
 * Sets the engine's default precision; 'mixed' on an adapter without shader-f16 becomes 'fp32' with one
 * notice (set before init(), once the adapter is known: see defaultPrecision()).
 */
export function setDefaultPrecision(p: Precision): void {
  valid('setDefaultPrecision', p);
  if (p === 'mixed' && isInitialised() && !gpu().features.shaderF16) {
    if (!noticed) console.warn(`densenet-webgpu: this adapter has no 'shader-f16'; the default precision 'mixed' falls back to 'fp32'`);
    noticed = true;
    current = 'fp32';
    return;
  }
  current = p;
}

/** The engine's default precision (see setDefaultPrecision). */
export function defaultPrecision(): Precision {
  // A 'mixed' default set before init() meets the adapter here.
  if (current === 'mixed') setDefaultPrecision('mixed');
  return current;
}

/** The storage type of activations under a precision. */
export function activationDtype(p: Precision): DType {
  return p === 'mixed' ? 'float16' : 'float32';
}
