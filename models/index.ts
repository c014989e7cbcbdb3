// densenet-webgpu/models: the seed's d2l DenseNet and torchvision's DenseNet-BC family.
export { convBlock, ConvBlock, DenseBlock, transitionBlock, DenseNet, type D2lDenseNetOptions, type DenseBlockOptions } from './d2l.js';
export {
  DenseLayer, DenseBlockBC, Transition, DenseNetBC, densenet121, densenet169, densenet201, densenet264, type DenseNetBCOptions,
} from './densenet_bc.js';
export { FusableDenseBlock, setMemoryEfficient, type StageModules, type DenseLayerModules } from './dense_block.js';
