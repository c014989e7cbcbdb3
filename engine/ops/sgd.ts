// The SGD update (torch.optim.SGD's rule), in place on the GPU: one dispatch per parameter, no autograd.
// nn's SGD class keeps the momentum buffers and calls sgdStep() once per step.

import { dispatch, f32bits, grid1d, PARAM_WORDS, type KernelSource } from '../runtime.js';
import { fmt, sameShape } from '../shape.js';
import { empty, keep, type Tensor } from '../tensor.js';
import { unaryMap } from './map.js';
import sgdSrc from '../../shaders/sgd.wgsl';

const sgdShader: KernelSource = { file: 'sgd.wgsl', source: sgdSrc };
/** Every WGSL file of this module (tests compile each one). */

export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
  dampening?: number;
}

// Bound as the momentum buffer when there is none (a binding needs some buffer).
let dummy: Tensor | null = null;

/**
 * p -= lr * d for every parameter with a gradient, where d = g + weightDecay * p, and with momentum
 * buf = d on the first step (momentumBufs[i] null: the buffer is created, kept, and stored in the
 * array), else buf = momentum * buf + (1 - dampening) * d; then d = d + momentum * buf (nesterov) or buf.
 * Parameters whose gradient is null are skipped. Returns momentumBufs.
 */
export function sgdStep(
  params: readonly Tensor[], grads: ReadonlyArray<Tensor | null>, momentumBufs: Array<Tensor | null>,
  { lr, momentum = 0, weightDecay = 0, nesterov = false, dampening = 0 }: SgdOptions,
): Array<Tensor | null> {
  const op = 'sgdStep';
  if (params.length !== grads.length || params.length !== momentumBufs.length) {
    throw new Error(`${op}: ${params.length} parameters, ${grads.length} gradients and ${momentumBufs.length} momentum buffers`);
  }
  for (const [v, name] of [[lr, 'lr'], [momentum, 'momentum'], [weightDecay, 'weightDecay'], [dampening, 'dampening']] as const) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`${op}: ${name} must be a finite number >= 0, got ${v}`);
  }
  if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error(`${op}: nesterov momentum requires a momentum and zero dampening`);
  params.forEach((p, i) => {
    const g0 = grads[i];
    if (!g0) return;
    p.assertAlive(op, `parameter ${i}`);
    g0.assertAlive(op, `gradient ${i}`);
    momentumBufs[i]?.assertAlive(op, `momentum buffer ${i}`);
    if (!p.isContiguous) throw new Error(`${op}: parameter ${i} (${p}) must be contiguous`);
    if (!sameShape(p.shape, g0.shape)) throw new Error(`${op}: parameter ${i} has shape ${fmt(p.shape)} but its gradient ${fmt(g0.shape)}`);
    if (g0.storage === p.storage) throw new Error(`${op}: parameter ${i} and its gradient share storage`);
    const g = g0.isContiguous ? g0 : unaryMap('copy', g0);
    let buf = momentumBufs[i];
    const first = momentum !== 0 && !buf;
    if (momentum !== 0) {
      if (!buf) momentumBufs[i] = buf = keep(empty(p.shape, 'sgd-momentum'));
      else if (!sameShape(buf.shape, p.shape) || !buf.isContiguous) throw new Error(`${op}: momentum buffer ${i} has shape ${fmt(buf.shape)}, expected a contiguous ${fmt(p.shape)}`);
    }
    const b = momentum !== 0 ? buf! : (dummy ??= keep(empty([1], 'sgd-momentum')));
    const pr = new Uint32Array(PARAM_WORDS);
    const flags = (momentum !== 0 ? 1 : 0) | (first ? 2 : 0) | (nesterov ? 4 : 0);
    pr.set([p.size, p.offset, g.offset, b.offset, f32bits(lr), f32bits(momentum), f32bits(dampening), f32bits(weightDecay), flags]);
    if (p.size) dispatch({ shader: sgdShader, entry: 'sgd_step' }, { params: pr, buffers: [g.buffer, p.buffer, b.buffer], workgroups: grid1d(Math.ceil(p.size / 1024)) });
    if (g !== g0) g.dispose();
  });
  return momentumBufs;
}
