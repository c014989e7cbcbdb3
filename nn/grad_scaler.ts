// GradScaler: dynamic loss scaling with the semantics of PyTorch's torch.cuda.amp.GradScaler, and no
// read-back inside a step.
//
//   const scaler = new GradScaler();
//   scaler.scale(loss).backward();   // loss * scale
//   scaler.unscale_(opt);            // optional (e.g. to clip gradients); step() does it otherwise
//   scaler.step(opt);                // skipped, on the GPU, when a gradient is inf or NaN
//   scaler.update();                 // scale * 0.5 after an overflow, * 2 after 2000 clean steps
//
// The scale, the growth tracker, a count of skipped steps and one found-inf flag per optimiser live in
// one small GPU buffer (words in AMP_WORDS, engine/ops/optim.ts). unscale_() packs an optimiser's
// gradients into one flat buffer and runs one dispatch that multiplies them by 1 / scale and raises
// the optimiser's flag on an inf or NaN; step() passes that flag to the optimiser's kernels, which then
// leave parameters and optimiser state untouched (nn/optim.ts: their step counts do not advance
// either); update() runs one single-invocation dispatch that moves the scale and the tracker and clears
// the flags. Only getScale(), skippedSteps() and stateDict() read the GPU, and each says so by being
// async. Differences from PyTorch: getScale() and stateDict() return promises; the scaler serves at
// most MAX_OPTIMIZERS optimisers; and skippedSteps() is an addition.

import { AMP_WORDS, Tensor, ampUnscale, ampUpdateScale, contiguous, copyInto, empty, keep, mul, noGrad, packInto, reshape, scope, slice, tensor, unpackFrom } from '../engine/index.js';
import type { Optimizer } from './optim.js';

export interface GradScalerOptions {
  /** Initial scale (default 2^16). */
  initScale?: number;
  /** Factor applied to the scale after growthInterval consecutive clean steps (default 2). */
  growthFactor?: number;
  /** Factor applied to the scale after a step with inf or NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Consecutive clean steps before the scale grows (default 2000). */
  growthInterval?: number;
  /** When false, every method is a pass-through (scale() returns the loss, step() calls opt.step()). */
  enabled?: boolean;
}

/** PyTorch's GradScaler.state_dict() layout. */
export interface GradScalerState {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

/** Optimisers one scaler can serve (one found-inf flag word each). */
export const MAX_OPTIMIZERS = 8;

type Stage = 'ready' | 'unscaled' | 'stepped';
type AnyOptimizer = Optimizer<any>;

export class GradScaler {
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private readonly enabled: boolean;
  /** The scale and tracker to write when the state buffer is made (constructor or loadStateDict()). */
  private initScale: number;
  private initTracker = 0;
  private state: Tensor | null = null;
  private scaleView: Tensor | null = null;
  private readonly optimizers = new Map<AnyOptimizer, { flag: Tensor; word: number; stage: Stage }>();

  constructor({ initScale = 2 ** 16, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000, enabled = true }: GradScalerOptions = {}) {
    const positive = (k: string, v: number) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`GradScaler: ${k} must be a finite number > 0, got ${v}`);
    };
    positive('initScale', initScale);
    positive('growthFactor', growthFactor);
    positive('backoffFactor', backoffFactor);
    if (growthFactor <= 1) throw new Error(`GradScaler: growthFactor must be > 1, got ${growthFactor}`);
    if (backoffFactor >= 1) throw new Error(`GradScaler: backoffFactor must be < 1, got ${backoffFactor}`);
    if (!Number.isInteger(growthInterval) || growthInterval < 1 || growthInterval > 2 ** 24) throw new Error(`GradScaler: growthInterval must be an integer in [1, 2^24], got ${growthInterval}`);
    this.initScale = initScale;
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
    this.enabled = enabled;
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  /** The state buffer, made on first use (the engine must be initialised by then). */
  private buffer(): Tensor {
    if (!this.state) {
      const words = new Float32Array(AMP_WORDS.firstFlag + MAX_OPTIMIZERS);
      words[AMP_WORDS.scale] = this.initScale;
      words[AMP_WORDS.growthTracker] = this.initTracker;
      this.state = keep(tensor(words, [words.length]));
      this.scaleView = noGrad(() => {
        const s = slice(this.state!, 0, AMP_WORDS.scale, AMP_WORDS.scale + 1);
        const v = keep(reshape(s, []));
        s.dispose();
        return v;
      });
    }
    return this.state;
  }

  private entry(opt: AnyOptimizer, where: string) {
    let e = this.optimizers.get(opt);
    if (!e) {
      if (this.optimizers.size === MAX_OPTIMIZERS) throw new Error(`GradScaler.${where}: one scaler serves at most ${MAX_OPTIMIZERS} optimisers`);
      const word = AMP_WORDS.firstFlag + this.optimizers.size;
      const state = this.buffer();
      const flag = keep(noGrad(() => slice(state, 0, word, word + 1)));
      e = { flag, word, stage: 'ready' };
      this.optimizers.set(opt, e);
    }
    return e;
  }

  /** The loss multiplied by the current scale (on the GPU; gradients flow through). */
  scale(loss: Tensor): Tensor {
    if (!(loss instanceof Tensor)) throw new Error(`GradScaler.scale: expected a Tensor, got ${loss === null ? 'null' : typeof loss}`);
    if (!this.enabled) return loss;
    this.buffer();
    return mul(loss, this.scaleView!);
  }

  /**
   * Divides the optimiser's gradients by the scale in place (one dispatch for all of them) and records
   * on the GPU whether any is inf or NaN. At most once per optimiser between update() calls.
   */
  unscale_(opt: AnyOptimizer): void {
    if (!this.enabled) return;
    const e = this.entry(opt, 'unscale_');
    if (e.stage === 'unscaled') throw new Error('GradScaler.unscale_: unscale_() has already been called on this optimizer since the last update()');
    if (e.stage === 'stepped') throw new Error('GradScaler.unscale_: unscale_() is being called after step()');
    const ps = opt.paramGroups.flatMap((g) => g.params).filter((p) => p.grad);
    if (!ps.length) throw new Error(`GradScaler.unscale_: no inf checks were recorded for this optimizer (none of its parameters has a gradient)`);
    for (const p of ps) {
      p.grad!.assertAlive('GradScaler.unscale_ (a gradient)');
      if (!p.grad!.isContiguous) {
        const g = p.grad!;
        p.grad = keep(noGrad(() => contiguous(g)));
        g.dispose();
      }
    }
    const grads = ps.map((p) => p.grad!);
    let total = 0;
    const offsets = grads.map((g) => ((total += g.size), total - g.size));
    const state = this.buffer();
    scope(() =>
      noGrad(() => {
        const flat = empty([total], 'amp-unscale');
        packInto(flat, grads, offsets);
        ampUnscale(flat, total, state, e.word);
        unpackFrom(flat, grads, offsets);
      }),
    );
    e.stage = 'unscaled';
  }

  /** Unscales (unless unscale_() was called) and steps the optimiser, skipped on the GPU after an inf or NaN. */
  step(opt: AnyOptimizer): void {
    if (!this.enabled) return opt.step();
    const e = this.entry(opt, 'step');
    if (e.stage === 'stepped') throw new Error('GradScaler.step: step() has already been called since the last update()');
    if (e.stage === 'ready') this.unscale_(opt);
    opt.step({ skipIf: e.flag });
    e.stage = 'stepped';
  }

  /**
   * Updates the scale on the GPU: backoffFactor after an inf or NaN in any optimiser's gradients since
   * the last update() (that step was skipped; it is counted), growthFactor after growthInterval clean
   * steps in a row. `newScale` sets the scale instead (the growth tracker is left as it is, as in PyTorch).
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    const state = this.buffer();
    if (newScale !== undefined) {
      if (typeof newScale !== 'number' || !Number.isFinite(newScale) || newScale <= 0) throw new Error(`GradScaler.update: newScale must be a finite number > 0, got ${newScale}`);
      const words = tensor(new Float32Array([newScale]), [1]);
      noGrad(() => {
        const s = slice(state, 0, AMP_WORDS.scale, AMP_WORDS.scale + 1);
        copyInto(s, words);
        s.dispose();
      });
      words.dispose();
      // The flags of this iteration are dropped.
      for (const e of this.optimizers.values()) noGrad(() => copyInto(e.flag, zeroWord()));
    } else {
      if (![...this.optimizers.values()].some((e) => e.stage !== 'ready')) throw new Error('GradScaler.update: no inf checks were recorded prior to update() (call step() or unscale_() first)');
      ampUpdateScale(state, { flags: this.optimizers.size, growthFactor: this.growthFactor, backoffFactor: this.backoffFactor, growthInterval: this.growthInterval });
    }
    for (const e of this.optimizers.values()) e.stage = 'ready';
  }

  /** The current scale (reads the GPU; 1 when disabled, as PyTorch). */
  async getScale(): Promise<number> {
    if (!this.enabled) return 1;
    return (await this.words())[AMP_WORDS.scale];
  }

  /** How many update() calls found an inf or NaN gradient, i.e. iterations whose step was skipped (reads the GPU). */
  async skippedSteps(): Promise<number> {
    if (!this.enabled) return 0;
    return (await this.words())[AMP_WORDS.skipped];
  }

  private async words(): Promise<Float32Array> {
    return this.buffer().data();
  }

  /** PyTorch's state_dict() (reads the GPU); {} when disabled. */
  async stateDict(): Promise<GradScalerState | Record<string, never>> {
    if (!this.enabled) return {};
    const w = await this.words();
    return { scale: w[AMP_WORDS.scale], growth_factor: this.growthFactor, backoff_factor: this.backoffFactor, growth_interval: this.growthInterval, _growth_tracker: w[AMP_WORDS.growthTracker] };
  }

  /** Loads a state dict from stateDict() or from PyTorch's GradScaler.state_dict(). */
  loadStateDict(sd: GradScalerState): void {
    if (!this.enabled) return;
    if (!sd || typeof sd !== 'object' || !Object.keys(sd).length) throw new Error('GradScaler.loadStateDict: the state dict is empty, possibly because it was saved from a disabled GradScaler');
    for (const k of ['scale', 'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker'] as const) {
      if (typeof sd[k] !== 'number' || !Number.isFinite(sd[k])) throw new Error(`GradScaler.loadStateDict: '${k}' must be a finite number, got ${JSON.stringify(sd[k])}`);
    }
    const checked = new GradScaler({ initScale: sd.scale, growthFactor: sd.growth_factor, backoffFactor: sd.backoff_factor, growthInterval: sd.growth_interval });
    if (!Number.isInteger(sd._growth_tracker) || sd._growth_tracker < 0) throw new Error(`GradScaler.loadStateDict: '_growth_tracker' must be an integer >= 0, got ${sd._growth_tracker}`);
    this.growthFactor = checked.growthFactor;
    this.backoffFactor = checked.backoffFactor;
    this.growthInterval = checked.growthInterval;
    this.initScale = sd.scale;
    this.initTracker = sd._growth_tracker;
    if (this.state) {
      const words = tensor(new Float32Array([sd.scale, sd._growth_tracker]), [2]);
      noGrad(() => {
        const s = slice(this.state!, 0, AMP_WORDS.scale, AMP_WORDS.growthTracker + 1);
        copyInto(s, words);
        s.dispose();
      });
      words.dispose();
    }
  }

  /** Frees the scaler's GPU buffer. */
  dispose(): void {
    for (const e of this.optimizers.values()) e.flag.dispose();
    this.optimizers.clear();
    this.scaleView?.dispose();
    this.scaleView = null;
    this.state?.dispose();
    this.state = null;
  }
}

let zero: Tensor | null = null;
const zeroWord = () => (zero ??= keep(tensor(new Float32Array(1), [1])));
