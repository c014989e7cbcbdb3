// Casting between storage types (engine/dtype.ts): float32 <-> float16, differentiable (the gradient is
// cast back to the input's type). One dispatch of unary.wgsl's copy composed with both storage types;
// float16 rounds to nearest, ties to even, overflow becomes +-inf (shaders/half_store.wgsl).

import { defineOp } from '../autograd.js';
import { checkDtype, type DType } from '../dtype.js';
import { empty, type Tensor } from '../tensor.js';
import { unaryMap } from './map.js';

function castRaw(x: Tensor, dtype: DType): Tensor {
  return unaryMap('copy', x, 0, empty(x.shape, 'tensor', dtype));
}

const castOp = defineOp<DType>({
  name: 'cast',
  forward: ([x], dtype) => castRaw(x, dtype),
  backward: ({ inputs: [x] }, g) => [g.dtype === x.dtype ? g : castRaw(g, x.dtype)],
});

/** x with its elements stored as `dtype` (x itself when it already is; as PyTorch's `x.to(dtype)`). */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkDtype('cast', dtype);
  return x.dtype === dtype ? x : castOp([x], dtype);
}

/** x stored as float16 (PyTorch's `x.half()`). */
export function half(x: Tensor): Tensor {
  return cast(x, 'float16');
}

/** x stored as float32 (PyTorch's `x.float()`). */
export function float(x: Tensor): Tensor {
  return cast(x, 'float32');
}
