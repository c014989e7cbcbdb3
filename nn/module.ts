// Module: the base of every layer, shaped like torch.nn.Module.
//
// A module registers its parameters, buffers (state that is not trained, like batch-norm running
// statistics) and child modules by name; names compose with dots into PyTorch's state-dict keys
// (`net.dense_blk1.net.0.0.weight`). Modules are callable: `m(x)` runs `m.forward(x)`.
// Parameters and buffers are kept tensors (no scope frees them); `dispose()` frees them.
// Lazy layers (LazyConv2d, ...) register their parameters as `null` until their first forward call
// infers the input size; reading them earlier is an error that says so.

import { Tensor, clone, copyInto, fmt, keep, noGrad, sameShape, scope } from '../engine/index.js';

export type StateDict = Map<string, Tensor>;

export interface Module {
  /** Runs forward(). */
  (...args: Tensor[]): Tensor;
}

export abstract class Module {
  // NOTE: the constructor returns a function object (so modules are callable), and a base class's
  // field initialisers would run on the discarded `this`: Module's own fields are set on the function.
  /** train() / eval() switch this; batch norm reads it. */
  declare training: boolean;
  declare private readonly _parameters: Map<string, Tensor | null>;
  declare private readonly _buffers: Map<string, Tensor | null>;
  declare private readonly _modules: Map<string, Module>;
  /** Dotted path of this module inside the model it was last named in (for error messages). */
  declare path: string;

  constructor() {
    // A function object with this class's prototype, so that `m(x)` works like PyTorch's `m(x)`.
    const callable = function (this: unknown, ...args: Tensor[]) {
      return (callable as unknown as Module).forward(...args);
    } as unknown as Module;
    Object.setPrototypeOf(callable, new.target.prototype);
    Object.assign(callable, { training: true, _parameters: new Map(), _buffers: new Map(), _modules: new Map(), path: '' });
    return callable;
  }

  abstract forward(...args: Tensor[]): Tensor;

  /**
   * This module and the first `consumed` of `following` (the modules after it in a Sequential) as one
   * fused computation, computing what running them in order would; null (the default) when this module
   * has no fusion with what follows, and then nothing was run. Sequential asks each child before running
   * it on its own.
   */
  fuseForward(x: Tensor, following: readonly Module[]): { y: Tensor; consumed: number } | null {
    void x;
    void following;
    return null;
  }

  /** The layer's type and settings, for printing. */
  describe(): string {
    return this.constructor.name;
  }

  // ---- registration ----

  /** Registers a parameter (a trainable, kept tensor with requiresGrad) or a lazy placeholder (null). */
  registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (t) {
      keep(t);
      t.requiresGrad = true;
      t.name = name;
    }
    this._parameters.set(name, t);
    return t;
  }

  /** Registers a buffer (state saved in the state dict but not trained). */
  registerBuffer(name: string, t: Tensor | null): Tensor | null {
    if (t) keep(t);
    this._buffers.set(name, t);
    return t;
  }

  /** Adds a child module under `name`, like PyTorch's add_module. */
  addModule<M extends Module>(name: string, m: M): M {
    if (!(m instanceof Module)) throw new Error(`addModule('${name}'): expected a Module`);
    if (name.includes('.') || name === '') throw new Error(`addModule: invalid module name '${name}'`);
    this._modules.set(name, m);
    return m;
  }

  protected param(name: string): Tensor {
    const t = this._parameters.get(name);
    if (t === undefined) throw new Error(`${this.where()}: no parameter named '${name}'`);
    if (t === null) {
      throw new Error(`${this.where()}: parameter '${name}' is not initialised yet: a lazy layer infers its input size at its first forward call`);
    }
    return t;
  }

  protected buffer(name: string): Tensor | null {
    return this._buffers.get(name) ?? null;
  }

  where(): string {
    return `${this.describe()}${this.path ? ` at '${this.path}'` : ''}`;
  }

  // ---- traversal ----

  children(): Module[] {
    return [...this._modules.values()];
  }

  namedChildren(): Array<[string, Module]> {
    return [...this._modules.entries()];
  }

  /** This module and every descendant with their dotted names ('' for this one), in PyTorch's order. */
  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    for (const [n, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Sets `path` on every module from its dotted name (called by the models; used in errors). */
  nameModules(prefix = ''): this {
    for (const [n, m] of this.namedModules(prefix)) m.path = n;
    return this;
  }

  /** Parameters with their state-dict names. Throws for lazy parameters that are not initialised. */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._parameters) {
        const key = mp ? `${mp}.${n}` : n;
        if (t === null) throw new Error(`${m.where()}: parameter '${key}' is not initialised yet: run a forward pass first (lazy layers infer their input size)`);
        out.push([key, t]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._buffers) if (t) out.push([mp ? `${mp}.${n}` : n, t]);
    }
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Calls fn on every descendant and then on this module (PyTorch's order). */
  apply(fn: (m: Module) => void): this {
    for (const m of this._modules.values()) m.apply(fn);
    fn(this);
    return this;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter's gradient. */
  zeroGrad(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m._parameters.values()) {
        if (t?.grad) {
          t.grad.dispose();
          t.grad = null;
        }
      }
    }
  }

  // ---- state dicts ----

  /** Parameters and buffers by PyTorch key: each module's own parameters, then its buffers, then its children. */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [mp, m] of this.namedModules()) {
      for (const [n, t] of m._parameters) {
        const key = mp ? `${mp}.${n}` : n;
        if (t === null) throw new Error(`${m.where()}: parameter '${key}' is not initialised yet: run a forward pass first`);
        out.set(key, t);
      }
      for (const [n, t] of m._buffers) if (t) out.set(mp ? `${mp}.${n}` : n, t);
    }
    return out;
  }

  /**
   * Copies tensors into this module's parameters and buffers. With `strict` (the default), missing and
   * unexpected keys are errors; a shape mismatch always is. Lazy parameters take the loaded shape.
   */
  loadStateDict(dict: Map<string, Tensor> | Record<string, Tensor>, { strict = true } = {}): { missing: string[]; unexpected: string[] } {
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const missing: string[] = [];
    const seen = new Set<string>();
    const slots: Array<{ key: string; m: Module; kind: 'param' | 'buffer'; name: string; t: Tensor | null }> = [];
    for (const [mp, m] of this.namedModules()) {
      for (const [n, t] of m._parameters) slots.push({ key: mp ? `${mp}.${n}` : n, m, kind: 'param', name: n, t });
      for (const [n, t] of m._buffers) slots.push({ key: mp ? `${mp}.${n}` : n, m, kind: 'buffer', name: n, t });
    }
    for (const s of slots) {
      const v = src.get(s.key);
      if (!v) {
        missing.push(s.key);
        continue;
      }
      seen.add(s.key);
      if (s.t && !sameShape(s.t.shape, v.shape)) {
        throw new Error(`loadStateDict: '${s.key}' has shape ${fmt(v.shape)} in the state dict, but the model's ${s.m.describe()} expects ${fmt(s.t.shape)}`);
      }
    }
    const unexpected = [...src.keys()].filter((k) => !seen.has(k));
    // Counters PyTorch writes that the model does not keep are not an error.
    const unexpectedReal = unexpected.filter((k) => !k.endsWith('num_batches_tracked'));
    const missingReal = missing.filter((k) => !k.endsWith('num_batches_tracked'));
    if (strict && (missingReal.length || unexpectedReal.length)) {
      const parts: string[] = [];
      if (missingReal.length) parts.push(`missing keys: ${missingReal.slice(0, 10).join(', ')}${missingReal.length > 10 ? ` (+${missingReal.length - 10} more)` : ''}`);
      if (unexpectedReal.length) parts.push(`unexpected keys: ${unexpectedReal.slice(0, 10).join(', ')}${unexpectedReal.length > 10 ? ` (+${unexpectedReal.length - 10} more)` : ''}`);
      throw new Error(`loadStateDict: the state dict does not match the model (${parts.join('; ')})`);
    }
    noGrad(() => {
      for (const s of slots) {
        const v = src.get(s.key);
        if (!v) continue;
        if (s.t) copyInto(s.t, v);
        else s.m.materialize(s.kind, s.name, v);
      }
    });
    return { missing, unexpected };
  }

  /** Lazy modules override this to build their parameters from a loaded tensor's shape. */
  protected inferFrom(_name: string, _v: Tensor): void {}

  /** Loads a tensor into a parameter or buffer that did not exist when loading started. */
  private materialize(kind: 'param' | 'buffer', name: string, v: Tensor): void {
    this.inferFrom(name, v);
    const map = kind === 'param' ? this._parameters : this._buffers;
    const cur = map.get(name);
    if (cur) {
      if (!sameShape(cur.shape, v.shape)) throw new Error(`loadStateDict: '${name}' of ${this.where()} has shape ${fmt(v.shape)}, expected ${fmt(cur.shape)}`);
      copyInto(cur, v);
    } else if (kind === 'param') this.registerParameter(name, clone(v));
    else this.registerBuffer(name, clone(v));
  }

  /** Frees every parameter and buffer of this module tree. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m._parameters.values()) t?.dispose();
      for (const t of m._buffers.values()) t?.dispose();
    }
  }

  /** The output in eval mode without recording gradients; the previous mode is restored. */
  predict(...args: Tensor[]): Tensor {
    const was = this.training;
    this.eval();
    try {
      // The scope frees the intermediates (under noGrad no graph holds them; the caller could not reach them).
      return scope(() => noGrad(() => this.forward(...args)));
    } finally {
      this.train(was);
    }
  }

  /** Number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  toString(): string {
    const lines = [`${this.describe()}`];
    for (const [n, m] of this._modules) lines.push(`  (${n}): ${m.toString().split('\n').join('\n  ')}`);
    return lines.join('\n');
  }
}
