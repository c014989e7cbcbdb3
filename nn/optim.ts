// Optimisers with PyTorch's update rules, names and state-dict layout: SGD, Adam, AdamW.
//
// Parameters come as a list or as parameter groups (`[{ params, weightDecay: 0 }, { params }]`, each
// group's options overriding the defaults), as in torch.optim. Each group's state (momentum buffers,
// Adam's moments) lives in one flat buffer per kind, every parameter at a fixed element offset, so a
// step is one multi-tensor kernel dispatch per group (engine/ops/optim.ts): the parameters and
// gradients are packed into flat scratch tensors by buffer copies, updated in one dispatch, and the
// parameters copied back. Parameters that have no gradient are skipped (their state does not advance),
// which can split a group's range into a few dispatches.
//
// `step({ skipIf })` takes a 1-element flag tensor (GradScaler's found-inf flag) that the kernels read on
// the GPU: when it is not 0 they write nothing, so parameters and state stay as they were, as if step()
// had not been called. Whether a step was skipped is then known only on the GPU, so from the first such
// step a group counts its skipped steps there: each parameter belongs to a class of parameters that
// took the same steps (same host step count, same skips), and a small buffer holds each class's
// skipped steps; a kernel's step number (Adam's bias corrections, SGD's first momentum step) is the host
// count minus its class's skips. Classes split when only some of their parameters have gradients.
// `await syncSteps()` reads the counts back once and folds them into the host counts (stateDict()
// needs that first, and says so).
//
// `stateDict()` has PyTorch's layout: `state` maps a parameter's index (counted over the groups in
// order) to its state (`momentum_buffer`; `step`, `exp_avg`, `exp_avg_sq`), and `param_groups` lists
// each group's options with PyTorch's keys and the indices of its parameters. nn/optim_state.ts turns
// it into flat named tensors for a safetensors checkpoint.

import {
  Tensor, adamUpdate, contiguous, copyInto, empty, fmt, keep, noGrad, packInto, reshape, sameShape, scope, sgdUpdate, slice, unpackFrom, zeros, copySkipCount, type SkipStep,
} from '../engine/index.js';

// The flag of steps without one, in groups that count skipped steps on the GPU (a 0).
let zeroFlag: Tensor | null = null;
const noSkip = () => (zeroFlag ??= keep(noGrad(() => zeros([1]))));

/** A parameter group as given to an optimiser: its parameters and options overriding the defaults. */
export type ParamGroupSpec<O> = { params: Iterable<Tensor> } & Partial<O>;

/** A parameter group held by an optimiser; schedulers change `lr` (and record `initialLr`). */
export type ParamGroup<O> = O & { params: Tensor[]; initialLr?: number };

/** One parameter's optimiser state: tensors (views of the optimiser's buffers) and numbers. */
export type ParamState = Record<string, Tensor | number>;

/** The optimiser state in PyTorch's layout (see the header). Tensors are the optimiser's own: do not dispose them. */
export interface OptimizerStateDict {
  state: Map<number, ParamState>;
  param_groups: Array<Record<string, unknown> & { params: number[] }>;
}

interface Pack {
  /** Element offset of each parameter of the group in the flat buffers. */
  offsets: number[];
  total: number;
  /** One flat buffer per state kind (null until the group's first step). */
  flats: Tensor[] | null;
  /** Steps taken by each parameter (0: no state yet). */
  steps: number[];
  /** Kept views of the flat buffers, per parameter and state kind (made on demand). */
  views: Array<Tensor[] | null>;
  /** Skipped steps counted on the GPU (see the header), from the first step with a skip flag to syncSteps(). */
  gpu: { skipped: Tensor; cls: number[] } | null;
}

export interface StepOptions {
  /** A 1-element tensor (GradScaler's found-inf flag): the step changes nothing when its value is not 0. */
  skipIf?: Tensor;
}

interface BaseOptions {
  lr: number;
  weightDecay: number;
}

/** The base of SGD, Adam and AdamW. */
export abstract class Optimizer<O extends BaseOptions> {
  readonly paramGroups: Array<ParamGroup<O>> = [];
  /** Number of step() calls (a scheduler checks that the optimiser stepped first). */
  stepCount = 0;
  protected readonly packs: Pack[] = [];
  /** Names of the per-parameter state tensors, in PyTorch's spelling. */
  protected abstract readonly stateNames: readonly string[];

  constructor(
    readonly name: string,
    params: Iterable<Tensor> | Iterable<ParamGroupSpec<O>>,
    readonly defaults: O,
  ) {
    const list = [...(params as Iterable<Tensor | ParamGroupSpec<O>>)];
    const specs: Array<ParamGroupSpec<O>> = list.length && !(list[0] instanceof Tensor) ? (list as Array<ParamGroupSpec<O>>) : [{ params: list as Tensor[] } as unknown as ParamGroupSpec<O>];
    const seen = new Map<Tensor, string>();
    specs.forEach((spec, gi) => {
      if (!spec || typeof spec !== 'object' || !spec.params) throw new Error(`${name}: parameter group ${gi} must be an object with a 'params' list`);
      const ps = [...spec.params];
      ps.forEach((p, pi) => {
        const where = `parameter ${pi} of group ${gi}`;
        if (!(p instanceof Tensor)) throw new Error(`${name}: ${where} is not a Tensor (got ${p === null ? 'null' : typeof p})`);
        if (p.disposed) throw new Error(`${name}: ${where} (${p}) was disposed`);
        if (!p.requiresGrad) throw new Error(`${name}: ${where} (${p}) has requiresGrad = false (a frozen parameter); leave it out of the optimiser, or set requiresGrad = true`);
        if (p.node) throw new Error(`${name}: ${where} (${p}) is not a leaf tensor (it was computed by ${p.node.op}); an optimiser updates leaves`);
        if (!p.isContiguous) throw new Error(`${name}: ${where} (${p}) is not contiguous`);
        const before = seen.get(p);
        if (before) throw new Error(`${name}: ${where} (${p}) is also ${before}; a parameter may appear only once`);
        seen.set(p, where);
      });
      const group = { ...defaults, ...spec, params: ps } as ParamGroup<O>;
      this.checkOptions(group, `group ${gi}`);
      this.paramGroups.push(group);
      let total = 0;
      const offsets = ps.map((p) => ((total += p.size), total - p.size));
      this.packs.push({ offsets, total, flats: null, steps: ps.map(() => 0), views: ps.map(() => null), gpu: null });
    });
  }

  /** Throws on an invalid option of a group (`where` names the group). */
  protected checkOptions(o: ParamGroup<O>, where: string): void {
    for (const [k, v] of [['lr', o.lr], ['weightDecay', o.weightDecay]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${this.name}: ${k} must be a finite number >= 0, got ${v} (${where})`);
    }
  }

  /** The kernel update of one packed range of a group (`skip`: see the header). */
  protected abstract update(group: ParamGroup<O>, flats: Tensor[], P: Tensor, G: Tensor, start: number, count: number, stepAfter: number, skip: SkipStep | null): void;
  /** Options of a group with PyTorch's keys, for stateDict(). */
  protected abstract groupToTorch(g: ParamGroup<O>): Record<string, unknown>;
  /** Options from PyTorch's keys, for loadStateDict(). */
  protected abstract groupFromTorch(g: Record<string, unknown>): Partial<O>;
  /** Whether parameters with different step counts can share one dispatch (no step-dependent term). */
  protected abstract runKey(group: ParamGroup<O>, steps: number): number;

  /** Updates every parameter that has a gradient, in place (`skipIf`: see StepOptions and the header). */
  step(options: StepOptions = {}): void {
    const flag = options.skipIf;
    if (flag !== undefined) {
      if (!(flag instanceof Tensor)) throw new Error(`${this.name}.step: skipIf must be a 1-element Tensor, got ${flag === null ? 'null' : typeof flag}`);
      flag.assertAlive(`${this.name}.step (skipIf)`);
      if (flag.size !== 1) throw new Error(`${this.name}.step: skipIf must be a 1-element Tensor, got shape ${fmt(flag.shape)}`);
    }
    // Every group's options and every parameter are checked before the step counts or changes anything.
    this.paramGroups.forEach((group, gi) => {
      this.checkOptions(group, `group ${gi}`);
      group.params.forEach((p, i) => {
        p.assertAlive(`${this.name}.step (parameter ${i} of group ${gi})`);
        if (!p.grad) return;
        p.grad.assertAlive(`${this.name}.step (the gradient of parameter ${i} of group ${gi})`);
        if (!sameShape(p.grad.shape, p.shape)) throw new Error(`${this.name}.step: parameter ${i} of group ${gi} (${p}) has a gradient of shape ${fmt(p.grad.shape)}`);
      });
    });
    this.stepCount++;
    this.beforeStep();
    this.paramGroups.forEach((group, gi) => {
      const pack = this.packs[gi];
      const active = group.params.flatMap((p, i) => (p.grad ? [i] : []));
      if (!active.length) return;
      const flats = this.hasState(group) ? this.ensureFlats(pack) : [];
      if (flag && !pack.gpu) this.startGpuSteps(pack);
      if (pack.gpu) this.splitClasses(pack, active);
      const counted = new Set<number>();
      scope(() =>
        noGrad(() => {
          const P = empty([pack.total], 'optim-pack');
          const G = empty([pack.total], 'optim-pack');
          const ps = active.map((i) => group.params[i]);
          const offs = active.map((i) => pack.offsets[i]);
          packInto(P, ps, offs);
          packInto(G, active.map((i) => contiguous(group.params[i].grad!)), offs);
          // Runs of consecutive active parameters that one dispatch can update together.
          let r = 0;
          while (r < active.length) {
            let e = r + 1;
            const keyOf = (i: number) => (pack.gpu ? pack.gpu.cls[i] : this.runKey(group, pack.steps[i]));
            const key = keyOf(active[r]);
            while (e < active.length && active[e] === active[e - 1] + 1 && keyOf(active[e]) === key) e++;
            const start = pack.offsets[active[r]];
            const last = active[e - 1];
            let skip: SkipStep | null = null;
            if (pack.gpu) {
              skip = { flag: flag ?? noSkip(), skipped: pack.gpu.skipped, slot: key, count: !counted.has(key) };
              counted.add(key);
            }
            this.update(group, flats, P, G, start, pack.offsets[last] + group.params[last].size - start, pack.steps[active[r]] + 1, skip);
            r = e;
          }
          for (const i of active) pack.steps[i]++;
          unpackFrom(P, ps, offs);
        }),
      );
    });
    this.afterStep();
  }

  /** Starts counting a group's skipped steps on the GPU: one class per host step count, no skips yet. */
  private startGpuSteps(pack: Pack): void {
    const ids = new Map<number, number>();
    const cls = pack.steps.map((s) => ids.get(s) ?? ids.set(s, ids.size).get(s)!);
    pack.gpu = { skipped: keep(noGrad(() => zeros([Math.max(cls.length, 1)]))), cls };
  }

  /** Moves the active parameters of a class that also has inactive ones to a new class (copying its count). */
  private splitClasses(pack: Pack, active: number[]): void {
    const { cls, skipped } = pack.gpu!;
    const isActive = new Set(active);
    const inactiveClasses = new Set(cls.filter((_, i) => !isActive.has(i)));
    const moved = new Map<number, number>();
    for (const i of active) {
      const c = cls[i];
      if (!inactiveClasses.has(c)) continue;
      let to = moved.get(c);
      if (to === undefined) {
        const used = new Set(cls);
        to = 0;
        while (used.has(to)) to++;
        moved.set(c, to);
        copySkipCount(skipped, c, to);
      }
      cls[i] = to;
    }
  }

  /** Whether steps with a skip flag left counts on the GPU that syncSteps() has not read yet. */
  get stepsPending(): boolean {
    return this.packs.some((p) => p.gpu !== null);
  }

  /**
   * Reads the skipped-step counts from the GPU (one read-back per group that has them) and folds them
   * into the host step counts, so that stateDict() reports the steps actually taken. Returns, per
   * group, the most steps any of its parameters had skipped since counting began.
   */
  async syncSteps(): Promise<number[]> {
    const out: number[] = [];
    for (const pack of this.packs) {
      const gpu = pack.gpu;
      if (!gpu) {
        out.push(0);
        continue;
      }
      const counts = await gpu.skipped.data();
      gpu.cls.forEach((c, i) => (pack.steps[i] -= counts[c]));
      out.push(Math.max(0, ...gpu.cls.map((c) => counts[c])));
      gpu.skipped.dispose();
      pack.gpu = null;
    }
    return out;
  }

  private stopGpuSteps(): void {
    for (const pack of this.packs) {
      pack.gpu?.skipped.dispose();
      pack.gpu = null;
    }
  }

  /** Whether a group keeps per-parameter state (SGD without momentum does not). */
  protected hasState(_group: ParamGroup<O>): boolean {
    return true;
  }

  /** Hooks for SGD's `state` array. */
  protected beforeStep(): void {}
  protected afterStep(): void {}

  private ensureFlats(pack: Pack): Tensor[] {
    if (!pack.flats) pack.flats = this.stateNames.map(() => keep(noGrad(() => zeros([Math.max(pack.total, 1)]))));
    return pack.flats;
  }

  /** Kept views of the flat state buffers for parameter i of group gi. */
  protected stateViews(gi: number, i: number): Tensor[] {
    const pack = this.packs[gi];
    const flats = this.ensureFlats(pack);
    if (!pack.views[i]) {
      const p = this.paramGroups[gi].params[i];
      const off = pack.offsets[i];
      pack.views[i] = flats.map((f) =>
        noGrad(() => {
          const s = slice(f, 0, off, off + p.size);
          const v = keep(reshape(s, p.shape));
          s.dispose();
          return v;
        }),
      );
    }
    return pack.views[i]!;
  }

  /** Frees every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /** Per-parameter state to export (PyTorch's names); parameters without state are left out. */
  protected exportState(gi: number, i: number): ParamState | null {
    const steps = this.packs[gi].steps[i];
    if (!steps) return null;
    const out: ParamState = {};
    this.stateViews(gi, i).forEach((v, k) => (out[this.stateNames[k]] = v));
    return out;
  }

  /** The optimiser's state in PyTorch's layout (see the header). */
  stateDict(): OptimizerStateDict {
    if (this.stepsPending) throw new Error(`${this.name}.stateDict: steps taken with a skip flag (GradScaler) have their skip counts on the GPU; await optimizer.syncSteps() first`);
    const state = new Map<number, ParamState>();
    let index = 0;
    const param_groups = this.paramGroups.map((g, gi) => {
      const params = g.params.map((_, i) => {
        const s = this.exportState(gi, i);
        if (s) state.set(index, s);
        return index++;
      });
      const out: Record<string, unknown> & { params: number[] } = { ...this.groupToTorch(g), params };
      if (g.initialLr !== undefined) out.initial_lr = g.initialLr;
      return out;
    });
    return { state, param_groups };
  }

  /** Loads a state dict from stateDict() (values are copied; group sizes must match). */
  loadStateDict(sd: OptimizerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    if (!sd || !Array.isArray(sd.param_groups) || !(sd.state instanceof Map)) throw new Error(`${where}: expected { state: Map, param_groups: [...] }`);
    if (sd.param_groups.length !== this.paramGroups.length) throw new Error(`${where}: the state dict has ${sd.param_groups.length} parameter groups, this optimiser ${this.paramGroups.length}`);
    sd.param_groups.forEach((g, gi) => {
      const n = this.paramGroups[gi].params.length;
      if (!Array.isArray(g.params) || g.params.length !== n) throw new Error(`${where}: group ${gi} has ${g.params?.length} parameters in the state dict, ${n} in this optimiser`);
    });
    const index = new Map<number, [number, number]>();
    sd.param_groups.forEach((g, gi) => g.params.forEach((id, i) => index.set(id, [gi, i])));
    for (const id of sd.state.keys()) if (!index.has(id)) throw new Error(`${where}: state for parameter ${id}, which no group lists`);
    // Everything is checked before anything is changed: a bad entry leaves the optimiser as it was.
    const options = sd.param_groups.map((g, gi) => {
      const o = this.groupFromTorch(g);
      this.checkOptions({ ...this.paramGroups[gi], ...o }, `group ${gi} of the state dict`);
      return o;
    });
    const loads: Array<{ gi: number; i: number; tensors: Tensor[]; step: number }> = [];
    for (const [id, st] of sd.state) {
      const [gi, i] = index.get(id)!;
      const p = this.paramGroups[gi].params[i];
      const tensors = this.stateNames.map((name) => {
        const t = st[name];
        if (!(t instanceof Tensor)) throw new Error(`${where}: state of parameter ${id} has no tensor '${name}'`);
        t.assertAlive(`${where} ('${name}' of parameter ${id})`);
        if (!sameShape(t.shape, p.shape)) throw new Error(`${where}: '${name}' of parameter ${id} has shape ${fmt(t.shape)}, the parameter ${fmt(p.shape)}`);
        return t;
      });
      const step = st.step ?? 1;
      if (step instanceof Tensor) throw new Error(`${where}: 'step' of parameter ${id} must be a number (read a tensor's value with await t.item())`);
      if (!Number.isInteger(step) || step < 1) throw new Error(`${where}: 'step' of parameter ${id} is ${step}; expected an integer >= 1`);
      loads.push({ gi, i, tensors, step });
    }
    sd.param_groups.forEach((g, gi) => {
      const group = this.paramGroups[gi];
      Object.assign(group, options[gi]);
      if (typeof g.initial_lr === 'number') group.initialLr = g.initial_lr;
    });
    this.stopGpuSteps();
    // As in PyTorch, the state dict replaces the whole state: a parameter it leaves out starts afresh.
    // (The loaded tensors may be views of this optimiser's own buffers: only the others are zeroed.)
    const loaded = new Set(loads.map(({ gi, i }) => `${gi}/${i}`));
    this.packs.forEach((pack, gi) =>
      pack.steps.forEach((_, i) => {
        if (loaded.has(`${gi}/${i}`)) return;
        pack.steps[i] = 0;
        if (pack.flats) for (const v of this.stateViews(gi, i)) noGrad(() => scope(() => copyInto(v, zeros(v.shape))));
      }),
    );
    for (const { gi, i, tensors, step } of loads) {
      const views = this.stateViews(gi, i);
      tensors.forEach((t, k) => noGrad(() => copyInto(views[k], t)));
      this.packs[gi].steps[i] = step;
    }
  }

  /** Frees the optimiser's state buffers. */
  dispose(): void {
    this.stopGpuSteps();
    for (const pack of this.packs) {
      for (const vs of pack.views) vs?.forEach((v) => v.dispose());
      pack.views.fill(null);
      pack.flats?.forEach((f) => f.dispose());
      pack.flats = null;
      pack.steps.fill(0);
    }
  }
}

const checkNumber = (opt: string, k: string, v: unknown, where: string, max = Infinity): void => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v >= max) {
    throw new Error(`${opt}: ${k} must be a finite number >= 0${max < Infinity ? ` and < ${max}` : ''}, got ${v} (${where})`);
  }
};

// ---- SGD ---------------------------------------------------------------------------------------

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}
type SGDGroup = Required<SGDOptions>;

/** torch.optim.SGD: momentum, dampening, weight decay and Nesterov momentum as in PyTorch. */
export class SGD extends Optimizer<SGDGroup> {
  protected readonly stateNames = ['momentum_buffer'] as const;
  /**
   * The momentum buffer of each parameter (counted over the groups), null before its first step or
   * without momentum. A tensor assigned here is loaded at the next step (and then owned and disposed
   * by the optimiser).
   */
  readonly state: Array<Tensor | null>;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupSpec<SGDGroup>>, { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false }: SGDOptions) {
    super('SGD', params, { lr, momentum, dampening, weightDecay, nesterov });
    this.state = this.paramGroups.flatMap((g) => g.params.map(() => null));
  }

  protected override checkOptions(g: ParamGroup<SGDGroup>, where: string): void {
    super.checkOptions(g, where);
    checkNumber('SGD', 'momentum', g.momentum, where);
    checkNumber('SGD', 'dampening', g.dampening, where);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new Error(`SGD: Nesterov momentum requires a momentum > 0 and zero dampening (${where})`);
  }

  protected runKey(g: ParamGroup<SGDGroup>, steps: number): number {
    return g.momentum !== 0 && steps === 0 ? 1 : 0;
  }

  protected override hasState(g: ParamGroup<SGDGroup>): boolean {
    return g.momentum !== 0;
  }

  protected update(g: ParamGroup<SGDGroup>, [buf]: Tensor[], P: Tensor, G: Tensor, start: number, count: number, stepAfter: number, skip: SkipStep | null): void {
    sgdUpdate(P, G, g.momentum !== 0 ? buf : null, { start, count }, { ...g, first: stepAfter === 1 }, skip, stepAfter);
  }

  protected override exportState(gi: number, i: number): ParamState | null {
    return this.paramGroups[gi].momentum !== 0 ? super.exportState(gi, i) : null;
  }

  protected groupToTorch(g: ParamGroup<SGDGroup>): Record<string, unknown> {
    return { lr: g.lr, momentum: g.momentum, dampening: g.dampening, weight_decay: g.weightDecay, nesterov: g.nesterov, maximize: false, foreach: null, differentiable: false };
  }

  protected groupFromTorch(g: Record<string, unknown>): Partial<SGDGroup> {
    if (g.maximize) throw new Error('SGD.loadStateDict: maximize = true is not supported');
    return { lr: g.lr as number, momentum: g.momentum as number, dampening: g.dampening as number, weightDecay: g.weight_decay as number, nesterov: !!g.nesterov };
  }

  /** Global parameter index -> [group, index in group]. */
  private *indices(): Generator<[number, number, number]> {
    let k = 0;
    for (let gi = 0; gi < this.paramGroups.length; gi++) for (let i = 0; i < this.paramGroups[gi].params.length; i++) yield [k++, gi, i];
  }

  protected override beforeStep(): void {
    for (const [k, gi, i] of this.indices()) {
      const t = this.state[k];
      if (!t || this.packs[gi].views[i]?.[0] === t) continue;
      const p = this.paramGroups[gi].params[i];
      if (!sameShape(t.shape, p.shape)) throw new Error(`SGD.step: the momentum buffer assigned to state[${k}] has shape ${fmt(t.shape)}, its parameter ${fmt(p.shape)}`);
      if (this.packs[gi].gpu) throw new Error(`SGD.step: a momentum buffer was assigned to state[${k}] while skipped-step counts are on the GPU (GradScaler); await optimizer.syncSteps() before assigning`);
      noGrad(() => copyInto(this.stateViews(gi, i)[0], t));
      this.packs[gi].steps[i] = Math.max(1, this.packs[gi].steps[i]);
      t.dispose();
      this.state[k] = null; // afterStep() puts the loaded buffer's view here (when there is momentum)
    }
  }

  protected override afterStep(): void {
    for (const [k, gi, i] of this.indices()) {
      if (this.paramGroups[gi].momentum !== 0 && this.packs[gi].steps[i]) this.state[k] = this.stateViews(gi, i)[0];
    }
  }

  override loadStateDict(sd: OptimizerStateDict): void {
    super.loadStateDict(sd);
    // The views of parameters the state dict left out (they start afresh); afterStep() puts back the rest.
    for (const [k, gi, i] of this.indices()) if (this.state[k] && this.packs[gi].views[i]?.[0] === this.state[k]) this.state[k] = null;
    this.afterStep();
  }

  override dispose(): void {
    super.dispose();
    this.state.fill(null);
  }
}

// ---- Adam and AdamW ----------------------------------------------------------------------------

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}
type AdamGroup = Required<Omit<AdamOptions, 'amsgrad'>>;

abstract class AdamBase extends Optimizer<AdamGroup> {
  protected readonly stateNames = ['exp_avg', 'exp_avg_sq'] as const;
  protected abstract readonly decoupled: boolean;

  protected override checkOptions(g: ParamGroup<AdamGroup>, where: string): void {
    super.checkOptions(g, where);
    if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new Error(`${this.name}: betas must be a pair [beta1, beta2], got ${g.betas} (${where})`);
    checkNumber(this.name, 'betas[0]', g.betas[0], where, 1);
    checkNumber(this.name, 'betas[1]', g.betas[1], where, 1);
    checkNumber(this.name, 'eps', g.eps, where);
  }

  protected runKey(_g: ParamGroup<AdamGroup>, steps: number): number {
    return steps;
  }

  protected update(g: ParamGroup<AdamGroup>, [m, v]: Tensor[], P: Tensor, G: Tensor, start: number, count: number, stepAfter: number, skip: SkipStep | null): void {
    adamUpdate(P, G, m, v, { start, count }, { lr: g.lr, beta1: g.betas[0], beta2: g.betas[1], eps: g.eps, weightDecay: g.weightDecay, decoupled: this.decoupled, step: stepAfter }, skip);
  }

  protected override exportState(gi: number, i: number): ParamState | null {
    const s = super.exportState(gi, i);
    return s && { step: this.packs[gi].steps[i], ...s };
  }

  protected groupToTorch(g: ParamGroup<AdamGroup>): Record<string, unknown> {
    return { lr: g.lr, betas: [...g.betas], eps: g.eps, weight_decay: g.weightDecay, amsgrad: false, maximize: false, foreach: null, capturable: false, differentiable: false, fused: false };
  }

  protected groupFromTorch(g: Record<string, unknown>): Partial<AdamGroup> {
    if (g.amsgrad || g.maximize) throw new Error(`${this.name}.loadStateDict: amsgrad and maximize are not supported`);
    return { lr: g.lr as number, betas: g.betas as [number, number], eps: g.eps as number, weightDecay: g.weight_decay as number };
  }
}

function adamDefaults(name: string, o: AdamOptions, weightDecay: number): AdamGroup {
  if (o.amsgrad) throw new Error(`${name}: amsgrad is not supported`);
  return { lr: o.lr ?? 1e-3, betas: o.betas ?? [0.9, 0.999], eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? weightDecay };
}

/** torch.optim.Adam (defaults lr 1e-3, betas [0.9, 0.999], eps 1e-8, weight decay 0 added to the gradient). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupSpec<AdamGroup>>, options: AdamOptions = {}) {
    super('Adam', params, adamDefaults('Adam', options, 0));
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2): p *= 1 - lr * weightDecay. */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupSpec<AdamGroup>>, options: AdamOptions = {}) {
    super('AdamW', params, adamDefaults('AdamW', options, 1e-2));
  }
}
