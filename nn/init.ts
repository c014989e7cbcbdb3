// Initialisers, as torch.nn.init: each fills a tensor in place from the default generator (seed it
// with manualSeed). Random numbers are drawn on the CPU and uploaded (initialisation is not hot).

import { Tensor, copyInto, defaultGenerator, fmt, keep, noGrad, rand, tensor, type Generator } from '../engine/index.js';

function fans(t: Tensor): [number, number] {
  if (t.ndim < 2) throw new Error(`init: fan in and fan out need a tensor with at least 2 dims, got ${fmt(t.shape)}`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

function fillFrom(t: Tensor, f: () => number): Tensor {
  const data = new Float32Array(t.size);
  for (let i = 0; i < data.length; i++) data[i] = f();
  noGrad(() => {
    const src = tensor(data, t.shape);
    copyInto(t, src);
    src.dispose();
  });
  return t;
}

/** U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)), as torch.nn.init.xavier_uniform_. */
export function xavierUniform_(t: Tensor, gain = 1, g: Generator = defaultGenerator): Tensor {
  const [fi, fo] = fans(t);
  const a = gain * Math.sqrt(6 / (fi + fo));
  return fillFrom(t, () => (2 * g.uniform() - 1) * a);
}

/** N(0, std^2) with std = gain / sqrt(fan), gain sqrt(2) for relu, as torch.nn.init.kaiming_normal_. */
export function kaimingNormal_(t: Tensor, { mode = 'fan_in', generator = defaultGenerator }: { mode?: 'fan_in' | 'fan_out'; generator?: Generator } = {}): Tensor {
  const [fi, fo] = fans(t);
  const std = Math.SQRT2 / Math.sqrt(mode === 'fan_in' ? fi : fo);
  return fillFrom(t, () => std * generator.normal());
}

export function constant_(t: Tensor, value: number): Tensor {
  return fillFrom(t, () => value);
}
export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

/** PyTorch's default weight init for Conv2d/Linear: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export function kaimingUniformDefault(shape: number[], fanIn: number): Tensor {
  const b = 1 / Math.sqrt(fanIn);
  return keep(rand(shape, { low: -b, high: b }));
}

/** PyTorch's default bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export function uniformBias(shape: number[], fanIn: number): Tensor {
  const b = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return keep(rand(shape, { low: -b, high: b }));
}
