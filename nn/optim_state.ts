// Optimiser and scheduler state as flat named tensors plus string metadata, so one safetensors file
// (nn/safetensors.ts) holds a model and its training state:
//   tensors   `optimizer.state.<index>.<name>` (momentum_buffer, exp_avg, exp_avg_sq)
//   metadata  `optimizer.param_groups` (JSON of PyTorch's param_groups), `optimizer.steps` (JSON of
//             { index: step } for states that have a step), and `scheduler` (JSON of a scheduler's
//             stateDict()) when one is given.
// The prefix ('optimizer' above) is a parameter, so a file can hold more than one optimiser.

import { Tensor } from '../engine/index.js';
import type { OptimizerStateDict, ParamState } from './optim.js';

export interface FlatOptimizerState {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Flattens an optimiser's stateDict() (the tensors are the optimiser's own views, not copies). */
export function optimizerStateToTensors(sd: OptimizerStateDict, prefix = 'optimizer'): FlatOptimizerState {
  const tensors = new Map<string, Tensor>();
  const steps: Record<string, number> = {};
  for (const [id, st] of sd.state) {
    for (const [name, v] of Object.entries(st)) {
      if (v instanceof Tensor) tensors.set(`${prefix}.state.${id}.${name}`, v);
      else if (name === 'step') steps[id] = v;
      else throw new Error(`optimizerStateToTensors: state '${name}' of parameter ${id} is neither a tensor nor 'step'`);
    }
  }
  return { tensors, metadata: { [`${prefix}.param_groups`]: JSON.stringify(sd.param_groups), [`${prefix}.steps`]: JSON.stringify(steps) } };
}

/**
 * Rebuilds an optimiser state dict from flat tensors and metadata (keys of other prefixes, such as the
 * model's, are ignored). Throws, naming the key, when the metadata is missing or malformed.
 */
export function optimizerStateFromTensors(tensors: Map<string, Tensor>, metadata: Record<string, string>, prefix = 'optimizer'): OptimizerStateDict {
  const read = (key: string): unknown => {
    const s = metadata[key];
    if (s === undefined) throw new Error(`optimizerStateFromTensors: the metadata has no '${key}' (not a checkpoint with optimiser state)`);
    try {
      return JSON.parse(s);
    } catch {
      throw new Error(`optimizerStateFromTensors: metadata '${key}' is not valid JSON`);
    }
  };
  const groups = read(`${prefix}.param_groups`);
  const steps = read(`${prefix}.steps`) as Record<string, number>;
  if (!Array.isArray(groups)) throw new Error(`optimizerStateFromTensors: metadata '${prefix}.param_groups' is not a list`);
  if (!steps || typeof steps !== 'object' || Array.isArray(steps)) throw new Error(`optimizerStateFromTensors: metadata '${prefix}.steps' is not an object (parameter index -> step)`);
  const state = new Map<number, ParamState>();
  const head = `${prefix}.state.`;
  for (const [key, t] of tensors) {
    if (!key.startsWith(head)) continue;
    const [id, name, ...rest] = key.slice(head.length).split('.');
    if (!/^\d+$/.test(id) || !name || rest.length) throw new Error(`optimizerStateFromTensors: malformed key '${key}' (expected ${head}<index>.<name>)`);
    const st = state.get(Number(id)) ?? {};
    st[name] = t;
    state.set(Number(id), st);
  }
  for (const [id, step] of Object.entries(steps)) {
    const st = state.get(Number(id));
    if (!st) throw new Error(`optimizerStateFromTensors: a step is recorded for parameter ${id}, which has no state tensors`);
    st.step = step;
  }
  return { state, param_groups: groups };
}
