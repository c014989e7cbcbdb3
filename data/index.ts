// densenet-webgpu/data: datasets, the DataLoader and GPU batch transforms. No Node imports (it runs in
// browsers from ArrayBuffers); data/node.ts reads dataset files from disk.
export { parseIdx, decodeIdx, gunzip, imageSet, type IdxArray, type ImageSet } from './idx.js';
export { TensorDataset, IdxDataset, FashionMNIST, FASHION_MNIST_CLASSES, type Dataset, type Field, type HostArray } from './dataset.js';
export { DataLoader, type DataLoaderOptions } from './loader.js';
export { resize, normalize, randomCrop, randomHorizontalFlip, type Transform } from './transforms.js';
