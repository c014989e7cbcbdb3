// Peak GPU bytes of one dense block's forward + backward, naive against memory-efficient: the figure
// behind `densenet-bench memory --vary depth` (bench/memory.ts) and the linear-growth test
// (test/dense_block.test.ts). It imports only the library, so the test does not pull in the CLI.

import * as E from '../engine/index.js';
import { DenseBlock, DenseBlockBC } from '../models/index.js';
import type { ModelName } from './models.js';

/**
 * Peak pool bytes above the starting live bytes during one forward + backward of a single dense block
 * (input 64 channels). With `trainParams` false the parameters are frozen, so the figure is the
 * activation memory alone (a DenseNet block's weights, and so their gradients, grow with the square of
 * its depth in any implementation).
 */
export async function blockStepPeak(
  model: ModelName, layers: number, batch: number, size: [number, number], memoryEfficient: boolean, trainParams = true, precision: E.Precision = 'fp32',
): Promise<number> {
  E.manualSeed(0);
  const c0 = 64;
  const block = model === 'd2l' ? new DenseBlock(layers, 32, { memoryEfficient }) : new DenseBlockBC(layers, c0, 4, 32, { memoryEfficient });
  // Mixed precision: the block's input (and so its buffers) float16.
  const x = E.keep(E.scope(() => E.noGrad(() => E.cast(E.randn([batch, c0, ...size]), E.activationDtype(precision)))));
  x.requiresGrad = true;
  E.scope(() => void E.noGrad(() => block(x))); // materialise lazy layers
  if (!trainParams) for (const p of block.parameters()) p.requiresGrad = false;
  const step = () =>
    E.scope(() => {
      block.zeroGrad();
      x.grad?.dispose();
      x.grad = null;
      E.mean(block(x)).backward();
    });
  step(); // materialise lazy layers, compile shaders
  await E.sync();
  const base = E.memory().liveBytes;
  E.pool.resetPeak();
  step();
  await E.sync();
  const peak = E.memory().peakBytes - base;
  block.dispose();
  x.dispose();
  await E.pool.trim();
  return peak;
}
