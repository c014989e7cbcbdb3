// linear(x, w, b) = x @ w^T + b (torch.nn.functional.linear), composed of matmul and a broadcasting add,
// so autograd comes from those ops (w^T is a free transposed view).

import { fmt } from '../shape.js';
import { Tensor } from '../tensor.js';
import { checkFloat32 } from './check.js';
import { add } from './elementwise.js';
import { matmul } from './matmul.js';
import { transpose } from './views.js';

/** x [B, in] times w [out, in] transposed, plus b [out] when given: [B, out]. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  const op = 'linear';
  if (!(x instanceof Tensor) || !(w instanceof Tensor)) throw new Error(`${op}: x and w must be Tensors`);
  if (x.ndim !== 2 || w.ndim !== 2) throw new Error(`${op}: expected x [B, in] and w [out, in], got ${fmt(x.shape)} and ${fmt(w.shape)}`);
  if (x.shape[1] !== w.shape[1]) throw new Error(`${op}: x ${fmt(x.shape)} has ${x.shape[1]} features but w ${fmt(w.shape)} expects ${w.shape[1]}`);
  checkFloat32(op, 'x', x);
  checkFloat32(op, 'w', w);
  if (b) checkFloat32(op, 'the bias', b);
  if (b && (b.ndim !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`${op}: bias has shape ${fmt(b.shape)}, expected [${w.shape[0]}] for w ${fmt(w.shape)}`);
  const wt = transpose(w);
  const y = matmul(x, wt);
  if (!b) return y;
  const out = add(y, b);
  return out;
}
