// The models the benchmark can build, by name, with their default input.

import { DenseNet, densenet121, densenet169, densenet201, densenet264 } from '../models/index.js';
import type { Module } from '../nn/index.js';
import type { Precision } from '../engine/index.js';

export const MODEL_NAMES = ['d2l', 'densenet121', 'densenet169', 'densenet201', 'densenet264'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface BuiltModel {
  model: Module & { setMemoryEfficient(on: boolean): unknown };
  channels: number;
  numClasses: number;
}

export function defaultChannels(name: ModelName): number {
  return name === 'd2l' ? 1 : 3;
}

export function buildModel(name: ModelName, channels: number, memoryEfficient: boolean, numClasses = 10, precision: Precision = 'fp32'): BuiltModel {
  let model: BuiltModel['model'];
  switch (name) {
    case 'd2l':
      model = new DenseNet({ numClasses, memoryEfficient, precision });
      break;
    case 'densenet121':
      model = densenet121({ inChannels: channels, numClasses, memoryEfficient, precision });
      break;
    case 'densenet169':
      model = densenet169({ inChannels: channels, numClasses, memoryEfficient, precision });
      break;
    case 'densenet201':
      model = densenet201({ inChannels: channels, numClasses, memoryEfficient, precision });
      break;
    case 'densenet264':
      model = densenet264({ inChannels: channels, numClasses, memoryEfficient, precision });
      break;
  }
  return { model, channels, numClasses };
}
