// densenet-webgpu: the engine's public API.
// Initialise once with `await init()`; then create tensors, run ops, call `loss.backward()`, and read
// results with `await t.data()`. Memory follows the ownership rule in engine/tensor.ts: `scope(fn)`
// frees what fn created and did not return; `t.dispose()` frees one tensor.

import { runBackward } from './autograd.js';
import { Tensor } from './tensor.js';
import { onesLike } from './ops/creation.js';
import { add } from './ops/elementwise.js';
import { clone } from './ops/views.js';

export { init, gpu, isInitialised, NO_WEBGPU_HINT, type Gpu, type GpuFeatures, type InitOptions, type AdapterSummary } from './gpu.js';
export { memory, pool, formatBytes, type PoolStats } from './pool.js';
export { sync, flush, dispatches } from './runtime.js';
export { Tensor, scope, keep, empty } from './tensor.js';
export { noGrad, isGradEnabled, defineOp, registry, type OpDef, type OpContext } from './autograd.js';
export { Generator, manualSeed, defaultGenerator } from './random.js';
export * from './shape.js';
export { tensor, full, zeros, ones, zerosLike, onesLike, rand, randn } from './ops/creation.js';
export { add, sub, mul, div, neg, relu, exp, log, sqrt, square, addScalar, mulScalar, divScalar, reluBackward } from './ops/elementwise.js';
export { sum, mean, max, sumTo } from './ops/reduce.js';
export { reshape, flatten, permute, transpose, slice, expandTo, contiguous, clone, cat, copyInto } from './ops/views.js';
export { matmul, chooseMatmulKernel, forceMatmulKernel, matmulKernelSupported, type MatmulKernel } from './ops/matmul.js';
export {
  batchNorm2d, batchNormStats, batchNormApplyRaw, batchNormEvalStats, batchNormGradSums, batchNormBackwardDxRaw, updateRunningStats, batchNormPrologue, type RunningStats, chooseBnStatsKernel, forceBnStatsKernel, type BnStatsKernel,
} from './ops/batchnorm.js';
export {
  conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, chooseConvKernel, forceConvKernel, type ConvKernel, type ConvPrologue,
} from './ops/conv.js';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d, type Pool2dOptions } from './ops/pool2d.js';
export { crossEntropy } from './ops/loss.js';
export { linear } from './ops/linear.js';
export { sgdStep } from './ops/sgd.js';
export { resizeBilinear } from './ops/resize.js';
export { denseBlock, type BnParams, type DenseLayerParams, type DenseBlockOptions } from './ops/dense_block.js';

/** Back-propagates from `t` (a scalar, or with an explicit gradient of its shape) into leaves' `.grad`. */
export function backward(t: Tensor, grad?: Tensor): void {
  runBackward(t, grad, { onesLike, add, clone });
}

declare module './tensor.js' {
  interface Tensor {
    /** Back-propagates from this tensor (see backward()). */
    backward(grad?: Tensor): void;
  }
}
Tensor.prototype.backward = function (this: Tensor, grad?: Tensor) {
  backward(this, grad);
};
