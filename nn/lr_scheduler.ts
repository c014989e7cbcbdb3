// Learning-rate schedules with torch.optim.lr_scheduler's semantics (PyTorch 1.13): StepLR,
// MultiStepLR, CosineAnnealingLR, LinearLR and SequentialLR.
//
// A scheduler sets `lr` of each of its optimiser's parameter groups. Constructing one records each
// group's `initialLr` (the base rate) and takes the first step (lastEpoch 0); call `scheduler.step()`
// after `optimizer.step()`, once per epoch or per iteration as the schedule is meant. Each step
// computes the new rate from the group's current one (PyTorch's chainable form, so two schedulers can
// act on one optimiser); `step(epoch)` jumps to an epoch with the closed form (SequentialLR uses it).
// Stepping the scheduler before the optimiser has ever stepped skips the schedule's first value, as
// in PyTorch: it warns once (console.warn), as PyTorch does.

import type { Optimizer } from './optim.js';

type AnyOptimizer = Optimizer<any>;

/** A scheduler's state: plain JSON values with PyTorch's attribute names. */
export type SchedulerState = Record<string, unknown>;

const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

function checkPositive(where: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: ${name} must be a finite number > 0, got ${v}`);
}

export abstract class LRScheduler {
  /** The number of steps taken (0 after construction). */
  lastEpoch: number;
  /** Each group's initial learning rate. */
  baseLrs: number[];
  /** The learning rates set by the last step. */
  lastLr: number[] = [];
  protected stepCount = 0;
  private optimizerStepsAtStart = 0;
  private warned = false;

  constructor(
    readonly optimizer: AnyOptimizer,
    lastEpoch = -1,
  ) {
    const where = this.constructor.name;
    if (!optimizer || !Array.isArray(optimizer.paramGroups)) throw new Error(`${where}: expected an optimiser (SGD, Adam, AdamW), got ${optimizer === null ? 'null' : typeof optimizer}`);
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) throw new Error(`${where}: lastEpoch must be an integer >= -1, got ${lastEpoch}`);
    optimizer.paramGroups.forEach((g, i) => {
      if (lastEpoch === -1) g.initialLr ??= g.lr;
      else if (g.initialLr === undefined) throw new Error(`${where}: parameter group ${i} has no initialLr; resuming with lastEpoch ${lastEpoch} needs the optimiser's state dict loaded first`);
    });
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  /** Takes the first step (subclasses call this at the end of their constructor, as PyTorch does; SequentialLR again). */
  initialStep(): void {
    this.optimizerStepsAtStart = this.optimizer.stepCount;
    this.stepCount = 0;
    this.step();
  }

  /** The learning rates for lastEpoch, from the groups' current rates (PyTorch's get_lr). */
  protected abstract getLr(): number[];
  /** The learning rates for lastEpoch from the base rates alone (PyTorch's _get_closed_form_lr). */
  protected closedFormLr(): number[] {
    return this.getLr();
  }

  /** Advances the schedule by one step; `epoch` jumps to that step with the closed form. */
  step(epoch?: number): void {
    if (this.stepCount === 1 && this.optimizer.stepCount === this.optimizerStepsAtStart && !this.warned) {
      this.warned = true;
      console.warn(
        `${this.constructor.name}.step() was called before optimizer.step(): call optimizer.step() first, then scheduler.step(); ` +
          `otherwise the first learning rate of the schedule (${this.lastLr.join(', ')}) is skipped (as in PyTorch)`,
      );
    }
    this.stepCount++;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      if (!isInt(epoch, 0)) throw new Error(`${this.constructor.name}.step: epoch must be an integer >= 0, got ${epoch}`);
      this.lastEpoch = epoch;
      values = this.closedFormLr();
    }
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = values[i]));
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The learning rates set by the last step (PyTorch's get_last_lr()). */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** The schedule's numeric settings in its state dict: PyTorch's attribute name -> this scheduler's property. */
  protected readonly numericSettings: Readonly<Record<string, string>> = {};

  /** Settings specific to the schedule (PyTorch's attribute names), for stateDict(). */
  protected settings(): SchedulerState {
    const self = this as unknown as Record<string, number>;
    return Object.fromEntries(Object.entries(this.numericSettings).map(([key, prop]) => [key, self[prop]]));
  }

  protected loadSettings(s: SchedulerState): void {
    const self = this as unknown as Record<string, number>;
    for (const [key, prop] of Object.entries(this.numericSettings)) {
      const v = s[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${this.constructor.name}.loadStateDict: '${key}' must be a finite number, got ${JSON.stringify(v)}`);
      self[prop] = v;
    }
  }

  /** The schedule's state (JSON values; PyTorch's attribute names). */
  stateDict(): SchedulerState {
    return { ...this.settings(), base_lrs: [...this.baseLrs], last_epoch: this.lastEpoch, _step_count: this.stepCount, _last_lr: [...this.lastLr] };
  }

  /** Restores a state from stateDict() (the optimiser's learning rates come from its own state dict). */
  loadStateDict(s: SchedulerState): void {
    const where = `${this.constructor.name}.loadStateDict`;
    if (!s || typeof s !== 'object') throw new Error(`${where}: expected an object from stateDict()`);
    if (!isInt(s.last_epoch, -1)) throw new Error(`${where}: last_epoch must be an integer >= -1, got ${s.last_epoch}`);
    if (!Array.isArray(s.base_lrs) || s.base_lrs.length !== this.optimizer.paramGroups.length) {
      throw new Error(`${where}: base_lrs has ${Array.isArray(s.base_lrs) ? s.base_lrs.length : 'no'} entries for ${this.optimizer.paramGroups.length} parameter groups`);
    }
    this.loadSettings(s);
    this.lastEpoch = s.last_epoch;
    this.baseLrs = [...(s.base_lrs as number[])];
    this.stepCount = isInt(s._step_count, 0) ? s._step_count : 1;
    this.lastLr = Array.isArray(s._last_lr) ? [...(s._last_lr as number[])] : this.optimizer.paramGroups.map((g) => g.lr);
  }

  protected get groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }
}

/** Multiplies the rate by gamma every stepSize steps. */
export class StepLR extends LRScheduler {
  constructor(
    optimizer: AnyOptimizer,
    public stepSize: number,
    public gamma = 0.1,
    lastEpoch = -1,
  ) {
    super(optimizer, lastEpoch);
    if (!isInt(stepSize, 1)) throw new Error(`StepLR: stepSize must be an integer >= 1, got ${stepSize}`);
    checkPositive('StepLR', 'gamma', gamma);
    this.initialStep();
  }
  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groupLrs;
    return this.groupLrs.map((lr) => lr * this.gamma);
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
  protected override readonly numericSettings = { step_size: 'stepSize', gamma: 'gamma' };
}

/** Multiplies the rate by gamma at each milestone (a milestone listed twice multiplies twice). */
export class MultiStepLR extends LRScheduler {
  milestones: number[];
  constructor(
    optimizer: AnyOptimizer,
    milestones: readonly number[],
    public gamma = 0.1,
    lastEpoch = -1,
  ) {
    super(optimizer, lastEpoch);
    if (!Array.isArray(milestones) || milestones.some((m, i) => !isInt(m, 0) || (i > 0 && m < milestones[i - 1]))) {
      throw new Error(`MultiStepLR: milestones must be a non-decreasing list of integers >= 0, got [${milestones}]`);
    }
    checkPositive('MultiStepLR', 'gamma', gamma);
    this.milestones = [...milestones];
    this.initialStep();
  }
  protected getLr(): number[] {
    const n = this.milestones.filter((m) => m === this.lastEpoch).length;
    return n ? this.groupLrs.map((lr) => lr * this.gamma ** n) : this.groupLrs;
  }
  protected override closedFormLr(): number[] {
    const passed = this.milestones.filter((m) => m <= this.lastEpoch).length;
    return this.baseLrs.map((b) => b * this.gamma ** passed);
  }
  protected override readonly numericSettings = { gamma: 'gamma' };
  protected override settings(): SchedulerState {
    // PyTorch stores a Counter {milestone: count}; a list keeps repeats and order as JSON.
    return { ...super.settings(), milestones: [...this.milestones] };
  }
  protected override loadSettings(s: SchedulerState): void {
    super.loadSettings(s);
    if (!Array.isArray(s.milestones) || s.milestones.some((m) => !isInt(m, 0))) throw new Error(`MultiStepLR.loadStateDict: 'milestones' must be a list of integers >= 0, got ${JSON.stringify(s.milestones)}`);
    this.milestones = [...(s.milestones as number[])];
  }
}

/** Cosine annealing from the base rate to etaMin over tMax steps (then back up, as PyTorch's recursion does). */
export class CosineAnnealingLR extends LRScheduler {
  constructor(
    optimizer: AnyOptimizer,
    public tMax: number,
    public etaMin = 0,
    lastEpoch = -1,
  ) {
    super(optimizer, lastEpoch);
    if (!isInt(tMax, 1)) throw new Error(`CosineAnnealingLR: tMax must be an integer >= 1, got ${tMax}`);
    if (typeof etaMin !== 'number' || !Number.isFinite(etaMin) || etaMin < 0) throw new Error(`CosineAnnealingLR: etaMin must be a finite number >= 0, got ${etaMin}`);
    this.initialStep();
  }
  protected getLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    if (e === 0) return this.groupLrs;
    if (this.stepCount === 1 && e > 0) return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    if ((e - 1 - T) % (2 * T) === 0) return this.groupLrs.map((lr, i) => lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    return this.groupLrs.map((lr) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - etaMin) + etaMin);
  }
  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.tMax))) / 2);
  }
  protected override readonly numericSettings = { T_max: 'tMax', eta_min: 'etaMin' };
}

/** Scales the rate linearly from startFactor to endFactor over totalIters steps (a warm-up). */
export class LinearLR extends LRScheduler {
  constructor(
    optimizer: AnyOptimizer,
    public startFactor = 1 / 3,
    public endFactor = 1,
    public totalIters = 5,
    lastEpoch = -1,
  ) {
    super(optimizer, lastEpoch);
    if (typeof startFactor !== 'number' || !(startFactor > 0 && startFactor <= 1)) throw new Error(`LinearLR: startFactor must be in (0, 1], got ${startFactor}`);
    if (typeof endFactor !== 'number' || !(endFactor >= 0 && endFactor <= 1)) throw new Error(`LinearLR: endFactor must be in [0, 1], got ${endFactor}`);
    if (!isInt(totalIters, 1)) throw new Error(`LinearLR: totalIters must be an integer >= 1, got ${totalIters}`);
    this.initialStep();
  }
  protected getLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    if (e === 0) return this.groupLrs.map((lr) => lr * s);
    if (e > n) return this.groupLrs;
    return this.groupLrs.map((lr) => lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }
  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: f, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((f - s) * Math.min(n, this.lastEpoch)) / n));
  }
  protected override readonly numericSettings = { start_factor: 'startFactor', end_factor: 'endFactor', total_iters: 'totalIters' };
}

/** Runs schedulers one after another, switching at the milestones (e.g. LinearLR warm-up, then cosine). */
export class SequentialLR extends LRScheduler {
  readonly schedulers: LRScheduler[];
  readonly milestones: number[];
  constructor(optimizer: AnyOptimizer, schedulers: readonly LRScheduler[], milestones: readonly number[], lastEpoch = -1) {
    super(optimizer, lastEpoch);
    if (!Array.isArray(schedulers) || !schedulers.length) throw new Error('SequentialLR: expected a non-empty list of schedulers');
    schedulers.forEach((s, i) => {
      if (!(s instanceof LRScheduler)) throw new Error(`SequentialLR: schedulers[${i}] is not a scheduler`);
      if (s.optimizer !== optimizer) throw new Error(`SequentialLR: schedulers[${i}] (${s.constructor.name}) belongs to another optimiser than the one given`);
    });
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1) {
      throw new Error(`SequentialLR: expected ${schedulers.length - 1} milestones for ${schedulers.length} schedulers, got ${Array.isArray(milestones) ? milestones.length : milestones}`);
    }
    if (milestones.some((m, i) => !isInt(m, 1) || (i > 0 && m <= milestones[i - 1]))) throw new Error(`SequentialLR: milestones must be increasing integers >= 1, got [${milestones}]`);
    this.schedulers = [...schedulers];
    this.milestones = [...milestones];
    this.lastEpoch = lastEpoch + 1;
    optimizer.paramGroups.forEach((g) => (g.lr = g.initialLr!));
    for (const s of this.schedulers) s.lastEpoch--;
    this.schedulers[0].initialStep();
    this.lastLr = this.schedulers[0].getLastLr();
  }
  protected getLr(): number[] {
    throw new Error('SequentialLR: getLr is not used');
  }
  override step(): void {
    this.lastEpoch++;
    const idx = this.milestones.filter((m) => m <= this.lastEpoch).length;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLr = s.getLastLr();
  }
  protected override settings(): SchedulerState {
    return { _milestones: [...this.milestones], _schedulers: this.schedulers.map((s) => s.stateDict()) };
  }
  protected override loadSettings(s: SchedulerState): void {
    const subs = s._schedulers;
    if (!Array.isArray(subs) || subs.length !== this.schedulers.length) throw new Error(`SequentialLR.loadStateDict: expected ${this.schedulers.length} scheduler states`);
    subs.forEach((sub, i) => this.schedulers[i].loadStateDict(sub as SchedulerState));
  }
  override stateDict(): SchedulerState {
    return { ...this.settings(), last_epoch: this.lastEpoch, _last_lr: [...this.lastLr], base_lrs: [...this.baseLrs] };
  }
}
