// Glue between the nn layers and the engine's fused dense-block op.

import type { BnParams } from '../engine/index.js';
import type { BatchNorm2d } from '../nn/index.js';

export function bnParams(bn: BatchNorm2d): BnParams {
  return { gamma: bn.weight, beta: bn.bias, runningMean: bn.runningMean, runningVar: bn.runningVar, numBatchesTracked: bn.batchesTrackedBuffer };
}

/** What each BN layer's forward would have done besides normalising: count the batch (training). */
export function recordFusedBn(norms: BatchNorm2d[], training: boolean, shapeOf: (i: number) => number[]): void {
  norms.forEach((bn, i) => {
    if (bn.eps !== norms[0].eps || bn.momentum !== norms[0].momentum) {
      throw new Error(`${bn.where()}: the memory-efficient block needs the same eps and momentum in every batch norm`);
    }
    if (training) bn.countBatch(shapeOf(i));
  });
}
