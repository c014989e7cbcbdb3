// The models' `precision` option (engine/precision.ts): under 'mixed' the stem convolution reads the
// float32 image and writes float16, every activation after it is stored as float16 (the dense blocks'
// buffers included), and nn's Linear casts its input back to float32, so the classifier and the loss
// run in float32. The image itself is not copied to float16 (no extra memory, no rounding of the input).

import { activationDtype, checkPrecision, defaultPrecision, type Precision } from '../engine/index.js';
import { Module, type Conv2d } from '../nn/index.js';

/** A model with a precision: subclasses name their stem convolution and call applyPrecision() once built. */
export abstract class PrecisionModel extends Module {
  #precision: Precision;

  constructor(name: string, precision: Precision | undefined) {
    super();
    this.#precision = checkPrecision(name, precision ?? defaultPrecision());
  }

  /** The convolution that reads the model's input. */
  protected abstract stemConv(): Conv2d;

  /** 'fp32' or 'mixed' (float16 activations); settable between steps. */
  get precision(): Precision {
    return this.#precision;
  }
  set precision(p: Precision) {
    this.#precision = checkPrecision(`${this.constructor.name}.precision`, p);
    this.applyPrecision();
  }

  /** Sets the stem's output storage type from the precision. */
  protected applyPrecision(): void {
    this.stemConv().outputDtype = activationDtype(this.#precision);
  }
}
