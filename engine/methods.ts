// Tensor methods (`x.add(y)`, `x.reshape([2, 3])`, `x.softmax()`, ...), generated from one table of
// functions whose first argument is the tensor: `x.name(...args)` is `name(x, ...args)`. The types come
// from the same table (declaration merging on Tensor), so adding an op to the table adds its method.
// To add a method, add the function here; nothing else changes.

import { Tensor } from './tensor.js';
import { add, sub, mul, div, neg, relu, exp, log, sqrt, square, addScalar, mulScalar, divScalar } from './ops/elementwise.js';
import { sum, mean, max } from './ops/reduce.js';
import { reshape, flatten, permute, transpose, slice, expandTo, contiguous, clone } from './ops/views.js';
import { matmul } from './ops/matmul.js';
import { softmax, logSoftmax } from './ops/softmax.js';
import { argmax, topk } from './ops/topk.js';
import { dropout } from './ops/dropout.js';

/** The methods of Tensor: method name -> function of (tensor, ...args). */
export const tensorMethods = {
  add, sub, mul, div, neg, relu, exp, log, sqrt, square, addScalar, mulScalar, divScalar,
  sum, mean, max,
  reshape, flatten, permute, transpose, slice, expand: expandTo, contiguous, clone,
  matmul,
  softmax, logSoftmax, argmax, topk,
  dropout,
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
