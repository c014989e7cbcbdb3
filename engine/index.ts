// densenet-webgpu: the engine's public API.
// Initialise once with `await init()`; then create tensors, run ops, call `loss.backward()`, and read
// results with `await t.data()`. Memory follows the ownership rule in engine/tensor.ts: `scope(fn)`
// frees what fn created and did not return; `t.dispose()` frees one tensor.

import './methods.js';
import { init as initGpu, type Gpu, type InitOptions as GpuInitOptions } from './gpu.js';
import { setTuneMode, type TuneMode } from './tuner.js';
import { setDefaultPrecision, type Precision } from './precision.js';

export { gpu, isInitialised, NO_WEBGPU_HINT, type Gpu, type GpuFeatures, type AdapterSummary } from './gpu.js';
export {
  allVariants, supportedVariants, heuristicVariant, missingFor, checkRunnable, forceVariant, describeVariant, assumeHardwareRules, rulesAssumeHardware, FAMILIES, type Family, type VariantName, type Caps,
} from './variants.js';
export { setTuneMode, tuneMode, setTuneStore, settleTuning, tuneRecords, resetTuning, lastVariant, takeDeferred, ENGINE_VERSION, type TuneMode, type TuneRecord } from './tuner.js';
export { memoryTuneStore, defaultTuneStore, type TuneStore } from './tune_store.js';
export { memory, pool, formatBytes, type PoolStats } from './pool.js';
export { sync, flush, dispatches, readbacks, bindGroupsCreated } from './runtime.js';
export { canProfile, startProfile, stopProfile, type KernelTime } from './profiler.js';
export { Tensor, scope, keep, empty, type GradNode } from './tensor.js';
export { floatToHalfBits, floatToBfloat16Bits, halfToFloat, roundToHalf, itemBytes, DTYPES, type DType } from './dtype.js';
export { storageTypes, typed, type StorageTypes } from './storage.js';
export { checkPrecision, setDefaultPrecision, defaultPrecision, mixedSupported, activationDtype, PRECISIONS, type Precision } from './precision.js';
export { tensorMethods, type TensorMethods } from './methods.js';
export { noGrad, isGradEnabled, defineOp, registry, type OpDef, type OpContext } from './autograd.js';
export { backward, type BackwardOptions } from './backward.js';
export { Generator, manualSeed, defaultGenerator } from './random.js';
export * from './shape.js';
export { tensor, full, zeros, ones, zerosLike, onesLike, rand, randn } from './ops/creation.js';
export { add, sub, mul, div, neg, relu, exp, log, sqrt, square, addScalar, mulScalar, divScalar, reluBackward, elementwiseFunctions, type ElementwiseFunction } from './ops/elementwise.js';
export { UNARY, BINARY, type UnaryName, type BinaryName, type ScalarName, type PlainUnaryName, type PlainBinaryName } from './ops/elementwise_table.js';
export { sum, mean, max, sumTo } from './ops/reduce.js';
export { reshape, flatten, permute, transpose, slice, expandTo, contiguous, clone, cat, copyInto } from './ops/views.js';
export { matmul, chooseMatmulKernel, forceMatmulKernel, matmulKernelSupported, type MatmulKernel } from './ops/matmul.js';
export {
  batchNorm2d, batchNormRelu2d, batchNormReluMaxPool2d, batchNormStats, batchNormApplyRaw, batchNormEvalStats, batchNormBackwardRaw, type BnBackwardOptions, updateRunningStats, batchNormPrologue, type RunningStats, chooseBnStatsKernel, forceBnStatsKernel, type BnStatsKernel,
} from './ops/batchnorm.js';
export {
  conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, chooseConvKernel, forceConvKernel, type ConvKernel, type ConvPrologue,
} from './ops/conv.js';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d, type Pool2dOptions } from './ops/pool2d.js';
export { crossEntropy, type CrossEntropyOptions } from './ops/loss.js';
export { softmax, logSoftmax } from './ops/softmax.js';
export { argmax, topk } from './ops/topk.js';
export { dropout, type DropoutOptions } from './ops/dropout.js';
export { cropFlip, type CropFlip } from './ops/augment.js';
export { linear } from './ops/linear.js';
export { cast, half, float } from './ops/cast.js';
export {
  sgdUpdate, adamUpdate, packInto, unpackFrom, ampUnscale, ampUpdateScale, copySkipCount, AMP_WORDS, type SgdUpdate, type AdamUpdate, type PackedRange, type SkipStep, type ScaleUpdate,
} from './ops/optim.js';
export { resizeBilinear } from './ops/resize.js';
export { denseBlock, type BnParams, type DenseStage, type DenseLayerParams, type DenseBlockOptions } from './ops/dense_block.js';

export interface InitOptions extends GpuInitOptions {
  /**
   * Kernel tuning (engine/tuner.ts): 'off' (the heuristic, deterministic), 'cached' (earlier
   * measurements only) or 'on' (measure each new shape once). Default: $DENSENET_TUNE, else 'off'.
   */
  tune?: TuneMode;
  /**
   * Models' default precision (engine/precision.ts): 'fp32' (the default) or 'mixed' (float16
   * activations); 'mixed' on an adapter without shader-f16 falls back to 'fp32' with one notice.
   */
  precision?: Precision;
}

/** Initialise the engine once per process; later calls return the same device (and may change `tune`, `precision`). */
export async function init(options: InitOptions = {}): Promise<Gpu> {
  if (options.tune !== undefined) setTuneMode(options.tune);
  const g = await initGpu(options);
  if (options.precision !== undefined) setDefaultPrecision(options.precision);
  return g;
}
