// densenet-webgpu for browsers: one ESM file (dist/browser/densenet-webgpu.js, built by
// scripts/build-browser.mjs) with the engine at the top level and nn and models as namespaces,
// the WGSL kernels inlined. `init()` uses navigator.gpu; nothing Node-only is in the bundle.
//
//   import { init, tensor, nn, models } from './densenet-webgpu.js';
//   await init();
//   const model = new models.DenseNet();
export * from '../engine/index.js';
export * as nn from '../nn/index.js';
export * as models from './index.js';
