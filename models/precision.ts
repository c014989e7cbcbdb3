// The models' `precision` option (engine/precision.ts): under 'mixed' a model casts its input to
// float16 once, every activation after it is stored as float16 (the dense blocks' buffers included),
// and nn's Linear casts its input back to float32, so the classifier and the loss run in float32.

import { cast, activationDtype, checkPrecision, defaultPrecision, type Precision, type Tensor } from '../engine/index.js';
import { Module } from '../nn/index.js';

/** A model with a precision: its forward calls `this.activations(x)` first. */
export abstract class PrecisionModel extends Module {
  #precision: Precision;

  constructor(name: string, precision: Precision | undefined) {
    super();
    this.#precision = checkPrecision(name, precision ?? defaultPrecision());
  }

  /** 'fp32' or 'mixed' (float16 activations); settable between steps. */
  get precision(): Precision {
    return this.#precision;
  }
  set precision(p: Precision) {
    this.#precision = checkPrecision(`${this.constructor.name}.precision`, p);
  }

  /** The input in the activations' storage type. */
  protected activations(x: Tensor): Tensor {
    return cast(x, activationDtype(this.#precision));
  }
}
