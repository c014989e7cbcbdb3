// Elementwise ops with autograd, generated from the table in engine/ops/elementwise_table.ts: one op per
// row, whose forward is the row's kernel and whose backward is the row's derivative kernel (one dispatch)
// or, for a derivative of exactly 'g', the gradient itself. Binary ops broadcast, and their derivatives
// are summed back to each operand's shape.

import { defineOp } from '../autograd.js';
import { broadcastShapes, broadcastStrides, fmt, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { checkScalar, checkTensor } from './check.js';
import { binaryCode, gradCode, BINARY, UNARY, type BinaryName, type BinaryRow, type PlainBinaryName, type PlainUnaryName, type ScalarName, type UnaryName, type UnaryRow } from './elementwise_table.js';
import { binaryMap, unaryMap, type Operand } from './map.js';
import { sumTo } from './reduce_kernel.js';

const at = (t: Tensor, shape: Shape): Operand => ({ t, strides: broadcastStrides(t.shape, t.strides, shape) });

/** A unary row's derivative at x (output y, incoming gradient g). */
function unaryGrad(name: UnaryName, x: Tensor, y: Tensor, g: Tensor, s: number): Tensor {
  if ((UNARY[name] as UnaryRow).grad === 'g') return g;
  const shape = broadcastShapes(`${name} backward`, x.shape, g.shape);
  return binaryMap(gradCode(name), shape, at(x, shape), at(y, shape), at(g, shape), s);
}

function unaryFunction(name: UnaryName) {
  const row: UnaryRow = UNARY[name];
  const op = defineOp<{ s: number }>({
    name,
    forward: ([x], { s }) => unaryMap(name, x, s),
    backward: row.grad ? ({ inputs: [x], output, attrs: { s } }, g) => [unaryGrad(name, x, output, g, s)] : undefined,
  });
  if (!row.scalar) {
    return (x: Tensor): Tensor => {
      checkTensor(name, 'the input', x);
      return op([x], { s: 0 });
    };
  }
  return (x: Tensor, s: number): Tensor => {
    checkTensor(name, 'the input', x);
    checkScalar(name, s);
    if (row.scalar === 'nonzero' && s === 0) throw new Error(`${name}: division of ${fmt(x.shape)} by zero`);
    return op([x], { s });
  };
}

function binaryFunction(name: BinaryName, scalarFns: Record<ScalarName, (x: Tensor, s: number) => Tensor>) {
  const row: BinaryRow = BINARY[name];
  const op = defineOp<null>({
    name,
    forward: ([a, b]) => {
      const shape = broadcastShapes(name, a.shape, b.shape);
      return binaryMap(binaryCode(name), shape, at(a, shape), at(b, shape));
    },
    backward: row.grad
      ? ({ inputs: [a, b] }, g) =>
          [a, b].map((t, i) => {
            const expr = row.grad![i];
            if (!t.requiresGrad || expr === null) return null;
            const d = expr === 'g' ? g : binaryMap(gradCode(name, i as 0 | 1), g.shape, at(a, g.shape), at(b, g.shape), at(g, g.shape));
            return sumTo(d, t.shape);
          })
      : undefined,
  });
  return (a: Tensor, b: Tensor | number): Tensor => {
    checkTensor(name, 'the first operand', a);
    if (typeof b === 'number') {
      if (!row.scalar) throw new Error(`${name}: the second operand must be a Tensor, got a number`);
      return scalarFns[row.scalar.op](a, row.scalar.negate ? -b : b);
    }
    checkTensor(name, 'the second operand', b);
    broadcastShapes(name, a.shape, b.shape); // throws with the op's name
    return op([a, b], null);
  };
}

type UnaryFunctions = { [K in PlainUnaryName]: (x: Tensor) => Tensor } & { [K in ScalarName]: (x: Tensor, s: number) => Tensor };
type BinaryFunctions = { [K in PlainBinaryName]: (a: Tensor, b: Tensor | number) => Tensor };

/** An exported elementwise function with its arity (arguments including the tensor). */
export type ElementwiseFunction =
  | { name: PlainUnaryName; arity: 1; fn: (x: Tensor) => Tensor }
  | { name: ScalarName; arity: 2; fn: (x: Tensor, s: number) => Tensor }
  | { name: PlainBinaryName; arity: 2; fn: (a: Tensor, b: Tensor | number) => Tensor };

/** Every exported elementwise function, in table order (for generating Tensor methods). */
export const elementwiseFunctions: ElementwiseFunction[] = [];

const unaryFunctions = {} as UnaryFunctions;
for (const name of Object.keys(UNARY) as UnaryName[]) {
  const row: UnaryRow = UNARY[name];
  if (row.internal) continue;
  const fn = unaryFunction(name);
  Object.assign(unaryFunctions, { [name]: fn });
  elementwiseFunctions.push((row.scalar ? { name, arity: 2, fn } : { name, arity: 1, fn }) as ElementwiseFunction);
}
const binaryFunctions = {} as BinaryFunctions;
for (const name of Object.keys(BINARY) as BinaryName[]) {
  if ((BINARY[name] as BinaryRow).internal) continue;
  const fn = binaryFunction(name, unaryFunctions);
  Object.assign(binaryFunctions, { [name]: fn });
  elementwiseFunctions.push({ name: name as PlainBinaryName, arity: 2, fn });
}

// One name per row of the table (a new row adds its name here).
export const { neg, relu, exp, log, sqrt, square, addScalar, mulScalar, divScalar } = unaryFunctions;
export const { add, sub, mul, div } = binaryFunctions;

/** g where x > 0, else 0: relu's derivative kernel. */
export function reluBackward(x: Tensor, g: Tensor): Tensor {
  return unaryGrad('relu', x, x, g, 0);
}
