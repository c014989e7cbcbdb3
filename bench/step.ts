// One training step of a benchmark model, as a user would write it: SGD, and under mixed precision
// the GradScaler (loss scaled, gradients unscaled and checked for inf/NaN on the GPU, the step skipped
// on an overflow, the scale updated), so fp32 and mixed rows time the same work a user would run.

import * as E from '../engine/index.js';
import { GradScaler, SGD, crossEntropy, type Module } from '../nn/index.js';

export interface TrainStep {
  step: () => void;
  dispose: () => void;
}

export function trainStep(model: Module, x: E.Tensor, labels: E.Tensor, precision: E.Precision, lr = 0.1): TrainStep {
  const opt = new SGD(model.parameters(), { lr });
  const scaler = precision === 'mixed' ? new GradScaler() : null;
  // The optimiser runs after the scope that made the graph: the step's activations are freed by then,
  // so its temporaries (the packed parameters and gradients) never add to them.
  const step = () => {
    E.scope(() => {
      opt.zeroGrad();
      const loss = crossEntropy(model(x), labels);
      (scaler ? scaler.scale(loss) : loss).backward();
    });
    if (!scaler) return opt.step();
    scaler.step(opt);
    scaler.update();
  };
  const dispose = () => {
    opt.zeroGrad();
    opt.dispose();
    scaler?.dispose();
  };
  return { step, dispose };
}
