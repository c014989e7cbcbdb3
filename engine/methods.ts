// Tensor methods (`x.add(y)`, `x.reshape([2, 3])`, `x.softmax()`, ...): `x.name(...args)` is
// `name(x, ...args)`. The elementwise methods come from the elementwise op table itself
// (`elementwiseFunctions`, engine/ops/elementwise_table.ts), so adding a row there adds its method and
// its type; the other ops are listed below. The types come from the same tables (declaration merging
// on Tensor).

import { Tensor } from './tensor.js';
import { elementwiseFunctions } from './ops/elementwise.js';
import type { PlainBinaryName, PlainUnaryName, ScalarName } from './ops/elementwise_table.js';
import { sum, mean, max } from './ops/reduce.js';
import { reshape, flatten, permute, transpose, slice, expandTo, contiguous, clone } from './ops/views.js';
import { matmul } from './ops/matmul.js';
import { softmax, logSoftmax } from './ops/softmax.js';
import { argmax, topk } from './ops/topk.js';
import { dropout } from './ops/dropout.js';
import { cast, half, float } from './ops/cast.js';

/** The elementwise functions by name, typed by the table's rows. */
type ElementwiseTable = { [K in PlainUnaryName]: (x: Tensor) => Tensor } & { [K in ScalarName]: (x: Tensor, s: number) => Tensor } & {
  [K in PlainBinaryName]: (a: Tensor, b: Tensor | number) => Tensor;
};

const elementwise = Object.fromEntries(elementwiseFunctions.map((f) => [f.name, f.fn])) as ElementwiseTable;

/** The methods of Tensor: method name -> function of (tensor, ...args). */
export const tensorMethods = {
  ...elementwise,
  sum, mean, max,
  reshape, flatten, permute, transpose, slice, expand: expandTo, contiguous, clone,
  matmul,
  softmax, logSoftmax, argmax, topk,
  dropout,
  to: cast, half, float,
};

type MethodTable = typeof tensorMethods;
/** Each table entry as a method: the tensor argument becomes `this`. */
export type TensorMethods = {
  [K in keyof MethodTable]: MethodTable[K] extends (x: Tensor, ...args: infer A) => infer R ? (...args: A) => R : never;
};

declare module './tensor.js' {
  interface Tensor extends TensorMethods {}
}

for (const [name, fn] of Object.entries(tensorMethods) as Array<[string, (x: Tensor, ...args: unknown[]) => unknown]>) {
  if (name in Tensor.prototype) throw new Error(`tensor methods: Tensor already has a member named '${name}'`);
  Object.defineProperty(Tensor.prototype, name, {
    value: function (this: Tensor, ...args: unknown[]) {
      return fn(this, ...args);
    },
    writable: true,
    configurable: true,
  });
}
