// The element-map and reduction WGSL files, imported as text (see shaders/wgsl.d.ts), named for error
// messages. unary.wgsl and binary.wgsl get the functions generated from the elementwise op table appended.
import type { KernelSource } from './runtime.js';
import { elementwiseWgsl } from './ops/elementwise_table.js';
import unary from '../shaders/unary.wgsl';
import binary from '../shaders/binary.wgsl';
import fill from '../shaders/fill.wgsl';
import reduce from '../shaders/reduce.wgsl';

const src = (file: string, source: string): KernelSource => ({ file, source });

export const shaders = {
  unary: src('unary.wgsl', `${unary}\n${elementwiseWgsl()}`),
  binary: src('binary.wgsl', `${binary}\n${elementwiseWgsl()}`),
  fill: src('fill.wgsl', fill),
  reduce: src('reduce.wgsl', reduce),
} as const;
