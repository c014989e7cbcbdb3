// Every WGSL file in shaders/, imported as text (see shaders/wgsl.d.ts), named for error messages.
import type { KernelSource } from './runtime.js';
import unary from '../shaders/unary.wgsl';
import binary from '../shaders/binary.wgsl';
import fill from '../shaders/fill.wgsl';
import reduce from '../shaders/reduce.wgsl';

const src = (file: string, source: string): KernelSource => ({ file, source });

export const shaders = {
  unary: src('unary.wgsl', unary),
  binary: src('binary.wgsl', binary),
  fill: src('fill.wgsl', fill),
  reduce: src('reduce.wgsl', reduce),
} as const;
