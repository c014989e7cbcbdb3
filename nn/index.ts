// densenet-webgpu/nn: PyTorch-shaped layers, initialisers, optimisers (SGD, Adam, AdamW), learning-rate schedules, dynamic loss scaling (GradScaler), losses and safetensors I/O.
export { Module, type StateDict } from './module.js';
export {
  Conv2d, LazyConv2d, BatchNorm2d, LazyBatchNorm2d, Linear, LazyLinear, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten,
  Sequential, initCnn, type Conv2dOptions, type BatchNormOptions, type PoolOptions,
} from './layers.js';
export { xavierUniform_, kaimingNormal_, constant_, zeros_, ones_, kaimingUniformDefault, uniformBias } from './init.js';
export { Optimizer, SGD, Adam, AdamW, type SGDOptions, type AdamOptions, type ParamGroup, type ParamGroupSpec, type ParamState, type OptimizerStateDict, type StepOptions } from './optim.js';
export { GradScaler, MAX_OPTIMIZERS, type GradScalerOptions, type GradScalerState } from './grad_scaler.js';
export { crossEntropy } from '../engine/index.js';
// The half conversions moved to the engine (engine/dtype.ts); still exported here, where exports were first.
export { floatToHalfBits, floatToBfloat16Bits } from '../engine/index.js';
export { Dropout } from './dropout.js';
export {
  loadSafetensors, saveSafetensors, decodeSafetensors, encodeSafetensors, toHostTensors, writeFileAtomic, crc32, CRC_KEY, type HostTensor, type SaveDtype, type SaveOptions,
} from './safetensors.js';
export { countFlops, recordFlops, recordLayer, recordLayers, type FlopCount, type LayerCall } from './flops.js';
export { optimizerStateToTensors, optimizerStateFromTensors, type FlatOptimizerState } from './optim_state.js';
export { LRScheduler, StepLR, MultiStepLR, CosineAnnealingLR, LinearLR, SequentialLR, type SchedulerState } from './lr_scheduler.js';
