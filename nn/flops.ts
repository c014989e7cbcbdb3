// Exact FLOP counts from the layers: while countFlops() runs a forward pass, every Conv2d and Linear
// reports its multiply-adds (2 FLOPs each) for the forward pass and for the backward pass (the weight
// gradient always, the input gradient only when the input needs one). Elementwise work (BN, ReLU,
// pooling, bias) is counted separately as `otherFlops` (one FLOP per output element per operation).

export interface FlopCount {
  /** Convolution and linear multiply-adds x 2 in the forward pass. */
  forward: number;
  /** The same for the backward pass. */
  backward: number;
  /** Elementwise work of the forward pass (normalisation, activation, pooling, bias). */
  otherForward: number;
}

/** One layer call seen during countFlops(), with its shapes (the kernel benchmark replays these). */
export interface LayerCall {
  kind: 'conv' | 'linear' | 'batchnorm' | 'relu' | 'maxpool' | 'avgpool' | 'adaptiveavgpool';
  input: number[];
  output: number[];
  weight?: number[];
  stride?: number;
  padding?: number;
  kernel?: [number, number];
}

let active: FlopCount | null = null;
let calls: LayerCall[] | null = null;

export function recordLayer(call: LayerCall): void {
  calls?.push(call);
}

/** Runs fn (a forward pass) and returns every layer call it made, in order. */
export function recordLayers(fn: () => void): LayerCall[] {
  const prev = calls;
  calls = [];
  try {
    fn();
    return calls;
  } finally {
    calls = prev;
  }
}

export function recordFlops(forward: number, backward: number, otherForward = 0): void {
  if (!active) return;
  active.forward += forward;
  active.backward += backward;
  active.otherForward += otherForward;
}

/** Runs fn (a forward pass) and returns the FLOPs its layers reported. */
export function countFlops(fn: () => void): FlopCount {
  const prev = active;
  active = { forward: 0, backward: 0, otherForward: 0 };
  try {
    fn();
    return active;
  } finally {
    active = prev;
  }
}
