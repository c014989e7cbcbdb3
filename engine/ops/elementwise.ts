// Elementwise ops with autograd: broadcasting arithmetic, scalar arithmetic, relu, exp, log, sqrt.

import { defineOp } from '../autograd.js';
import { broadcastShapes, broadcastStrides, fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { B, binaryMap, U, unaryMap } from './map.js';
import { sumTo } from './reduce.js';

function checkTensor(op: string, v: unknown, which: string): asserts v is Tensor {
  if (!(v instanceof Tensor)) {
    const got = v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
    throw new Error(`${op}: ${which} must be a Tensor (float32), got ${got}`);
  }
}

function checkScalar(op: string, s: unknown): asserts s is number {
  if (typeof s !== 'number' || !Number.isFinite(s)) {
    throw new Error(`${op}: expected a finite number as the scalar operand, got ${typeof s === 'number' ? s : typeof s}`);
  }
}

// ---- binary, broadcasting ----

function binaryForward(code: number) {
  return ([a, b]: readonly Tensor[]) => {
    const shape = broadcastShapes('binary', a.shape, b.shape);
    return binaryMap(code, shape, a, broadcastStrides(a.shape, a.strides, shape), b, broadcastStrides(b.shape, b.strides, shape));
  };
}

const addOp = defineOp<null>({
  name: 'add',
  forward: binaryForward(B.add),
  backward: ({ inputs: [a, b] }, g) => [sumTo(g, a.shape), sumTo(g, b.shape)],
});
const subOp = defineOp<null>({
  name: 'sub',
  forward: binaryForward(B.sub),
  backward: ({ inputs: [a, b] }, g) => [sumTo(g, a.shape), b.requiresGrad ? sumTo(neg(g), b.shape) : null],
});
const mulOp = defineOp<null>({
  name: 'mul',
  forward: binaryForward(B.mul),
  backward: ({ inputs: [a, b] }, g) => [
    a.requiresGrad ? sumTo(mul(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(mul(g, a), b.shape) : null,
  ],
});
const divOp = defineOp<null>({
  name: 'div',
  forward: binaryForward(B.div),
  backward: ({ inputs: [a, b], output }, g) => [
    a.requiresGrad ? sumTo(div(g, b), a.shape) : null,
    // d(a/b)/db = -(a/b)/b
    b.requiresGrad ? sumTo(neg(div(mul(g, output), b)), b.shape) : null,
  ],
});

function binary(op: string, a: Tensor, b: Tensor | number, t: (x: readonly Tensor[], n: null) => Tensor, scalar: (x: Tensor, s: number) => Tensor): Tensor {
  checkTensor(op, a, 'the first operand');
  if (typeof b === 'number') return scalar(a, b);
  checkTensor(op, b, 'the second operand');
  broadcastShapes(op, a.shape, b.shape); // throws with the op's name
  return t([a, b], null);
}

/** a + b with broadcasting (b may be a number). */
export const add = (a: Tensor, b: Tensor | number): Tensor => binary('add', a, b, addOp, addScalar);
/** a - b with broadcasting (b may be a number). */
export const sub = (a: Tensor, b: Tensor | number): Tensor => binary('sub', a, b, subOp, (x, s) => addScalar(x, -s));
/** a * b with broadcasting (b may be a number). */
export const mul = (a: Tensor, b: Tensor | number): Tensor => binary('mul', a, b, mulOp, mulScalar);
/** a / b with broadcasting (b may be a number). */
export const div = (a: Tensor, b: Tensor | number): Tensor => binary('div', a, b, divOp, divScalar);

// ---- scalar ----

const addScalarOp = defineOp<{ s: number }>({
  name: 'addScalar',
  forward: ([x], { s }) => unaryMap(U.addScalar, x, s),
  backward: (_c, g) => [g],
});
const mulScalarOp = defineOp<{ s: number }>({
  name: 'mulScalar',
  forward: ([x], { s }) => unaryMap(U.mulScalar, x, s),
  backward: ({ attrs: { s } }, g) => [mulScalar(g, s)],
});
const divScalarOp = defineOp<{ s: number }>({
  name: 'divScalar',
  forward: ([x], { s }) => unaryMap(U.divScalar, x, s),
  backward: ({ attrs: { s } }, g) => [divScalar(g, s)],
});

export function addScalar(x: Tensor, s: number): Tensor {
  checkTensor('addScalar', x, 'the input');
  checkScalar('addScalar', s);
  return addScalarOp([x], { s });
}
export function mulScalar(x: Tensor, s: number): Tensor {
  checkTensor('mulScalar', x, 'the input');
  checkScalar('mulScalar', s);
  return mulScalarOp([x], { s });
}
export function divScalar(x: Tensor, s: number): Tensor {
  checkTensor('divScalar', x, 'the input');
  checkScalar('divScalar', s);
  if (s === 0) throw new Error(`divScalar: division of ${fmt(x.shape)} by zero`);
  return divScalarOp([x], { s });
}

// ---- unary ----

function unaryOp(name: string, code: number, grad: (x: Tensor, y: Tensor, g: Tensor) => Tensor) {
  const op = defineOp<null>({
    name,
    forward: ([x]) => unaryMap(code, x),
    backward: ({ inputs: [x], output }, g) => [grad(x, output, g)],
  });
  return (x: Tensor): Tensor => {
    checkTensor(name, x, 'the input');
    return op([x], null);
  };
}

/** -x */
export const neg = unaryOp('neg', U.neg, (_x, _y, g) => neg(g));
/** max(x, 0); the gradient at exactly 0 is 0, as in PyTorch. */
export const relu = unaryOp('relu', U.relu, (x, _y, g) => reluBackward(x, g));
/** e^x */
export const exp = unaryOp('exp', U.exp, (_x, y, g) => mul(g, y));
/** natural log */
export const log = unaryOp('log', U.log, (x, _y, g) => div(g, x));
/** square root */
export const sqrt = unaryOp('sqrt', U.sqrt, (_x, y, g) => div(g, mulScalar(y, 2)));
/** x^2 */
export const square = unaryOp('square', U.square, (x, _y, g) => mul(g, mulScalar(x, 2)));

/** g where x > 0, else 0 (relu's backward as one kernel). */
export function reluBackward(x: Tensor, g: Tensor): Tensor {
  const shape = broadcastShapes('reluBackward', x.shape, g.shape);
  return binaryMap(B.reluGrad, shape, x, broadcastStrides(x.shape, x.strides, shape), g, broadcastStrides(g.shape, g.strides, shape));
}
