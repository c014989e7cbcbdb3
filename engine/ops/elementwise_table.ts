// The elementwise op table: one row per op, and everything else is generated from it.
//   - The op codes: a row's position in its table (unaryCode, binaryCode, gradCode below).
//   - The WGSL: elementwiseWgsl() writes one function per row and the unary_fn / binary_fn switches;
//     engine/shaders.ts appends them to unary.wgsl and binary.wgsl when the shaders are loaded.
//   - The differentiable functions: engine/ops/elementwise.ts makes one op per row (forward + backward)
//     and exports them; `elementwiseFunctions` lists them with their arity (for Tensor methods).
// Adding an op with its gradient is one row here plus its test in test/elementwise.test.ts.
//
// Each `wgsl` and `grad` is an f32 expression:
//   unary forward:     x (the input), s (the scalar operand of scalar rows);
//   unary derivative:  dL/dx from g (the output's gradient), x, y (the output), s;
//   binary forward:    a, b (broadcast to a common shape);
//   binary derivative: [dL/da, dL/db] from g, a, b; summed back to each operand's shape afterwards.
// A derivative of exactly 'g' hands the gradient on without a kernel; a row without `grad` has none.
// Every derivative runs as one dispatch of binary.wgsl (x, y and g are its three operands).
// NaN goes through every op as in PyTorch (relu(NaN) is NaN).

/** Rows of the unary table: y = f(x) or, for scalar rows, y = f(x, s). */
export const UNARY = {
  /** Kernel only (copies, contiguous()); no exported function. */
  copy: { wgsl: 'x', internal: true },
  neg: { wgsl: '-x', grad: '-g' },
  // NOTE: not max(x, 0.0): WGSL leaves max() with a NaN operand to the implementation.
  relu: { wgsl: 'select(x, 0.0, x <= 0.0)', grad: 'select(0.0, g, x > 0.0)' },
  exp: { wgsl: 'exp(x)', grad: 'g * y' },
  log: { wgsl: 'log(x)', grad: 'g / x' },
  sqrt: { wgsl: 'sqrt(x)', grad: 'g / (2.0 * y)' },
  square: { wgsl: 'x * x', grad: 'g * (2.0 * x)' },
  addScalar: { wgsl: 'x + s', grad: 'g', scalar: 'finite' },
  mulScalar: { wgsl: 'x * s', grad: 'g * s', scalar: 'finite' },
  divScalar: { wgsl: 'x / s', grad: 'g / s', scalar: 'nonzero' },
} as const satisfies Record<string, UnaryRow>;

/** Rows of the binary table: y = f(a, b) with broadcasting; `scalar` names the row used when b is a number. */
export const BINARY = {
  add: { wgsl: 'a + b', grad: ['g', 'g'], scalar: { op: 'addScalar', negate: false } },
  sub: { wgsl: 'a - b', grad: ['g', '-g'], scalar: { op: 'addScalar', negate: true } },
  mul: { wgsl: 'a * b', grad: ['g * b', 'g * a'], scalar: { op: 'mulScalar', negate: false } },
  // PyTorch's div backward: -g * ((a / b) / b).
  div: { wgsl: 'a / b', grad: ['g / b', '-g * ((a / b) / b)'], scalar: { op: 'divScalar', negate: false } },
  /** Kernel only: out = b, for assigning into a view (cat, slices, dense blocks). */
  assign: { wgsl: 'b', internal: true },
} as const satisfies Record<string, BinaryRow>;

export interface UnaryRow {
  wgsl: string;
  grad?: string;
  /** Scalar rows take (x, s); 'nonzero' also rejects s = 0. */
  scalar?: 'finite' | 'nonzero';
  internal?: boolean;
}

export interface BinaryRow {
  wgsl: string;
  grad?: readonly [string | null, string | null];
  scalar?: { op: ScalarName; negate: boolean };
  internal?: boolean;
}

export type UnaryName = keyof typeof UNARY;
export type BinaryName = keyof typeof BINARY;
type Rows<T, P> = { [K in keyof T]: T[K] extends P ? K : never }[keyof T];
/** Unary rows with a scalar operand: functions (x, s). */
export type ScalarName = Rows<typeof UNARY, { scalar: string }>;
/** Exported one-argument functions (x). */
export type PlainUnaryName = Exclude<UnaryName, ScalarName | Rows<typeof UNARY, { internal: true }>>;
/** Exported broadcasting two-argument functions (a, b). */
export type PlainBinaryName = Exclude<BinaryName, Rows<typeof BINARY, { internal: true }>>;

const unaryNames = Object.keys(UNARY) as UnaryName[];
const binaryNames = Object.keys(BINARY) as BinaryName[];

/** Cases of binary_fn after the binary rows: each derivative, as [function name, parameters, expression]. */
const gradCases: Array<[string, string]> = [
  ...binaryNames.flatMap((n) => {
    const g = (BINARY[n] as BinaryRow).grad;
    return g ? g.map((e, i): [string, string] => [`${n}_grad${'ab'[i]}`, e ?? '0.0']) : [];
  }),
  ...unaryNames.flatMap((n): Array<[string, string]> => {
    const g = (UNARY[n] as UnaryRow).grad;
    return g ? [[`${n}_grad`, g]] : [];
  }),
];

/** The override OP of unary.wgsl for a row. */
export function unaryCode(name: UnaryName): number {
  return unaryNames.indexOf(name);
}

/** The override OP of binary.wgsl for a row. */
export function binaryCode(name: BinaryName): number {
  return binaryNames.indexOf(name);
}

/** The override OP of binary.wgsl that computes a derivative: a unary row's (x, y, g), or a binary row's for operand 0 or 1 (a, b, g). */
export function gradCode(name: UnaryName | BinaryName, operand: 0 | 1 = 0): number {
  const key = name in BINARY ? `${name}_grad${'ab'[operand]}` : `${name}_grad`;
  const i = gradCases.findIndex(([k]) => k === key);
  if (i < 0) throw new Error(`elementwise table: '${name}' has no derivative for operand ${operand}`);
  return binaryNames.length + i;
}

/** The WGSL generated from the tables: one function per row and derivative, and the two switches. */
export function elementwiseWgsl(): string {
  const fn = (name: string, params: string, expr: string) => `fn ew_${name}(${params}) -> f32 { return ${expr}; }`;
  const cases = (names: string[], call: (n: string) => string) =>
    names.map((n, i) => `    case ${i}u: { return ${call(n)}; }`).join('\n');
  const grads = gradCases.map(([k]) => k);
  return [
    '// ---- generated from engine/ops/elementwise_table.ts (elementwiseWgsl) ----',
    ...unaryNames.map((n) => fn(n, 'x: f32, s: f32', UNARY[n].wgsl)),
    ...binaryNames.map((n) => fn(n, 'a: f32, b: f32', BINARY[n].wgsl)),
    ...gradCases.map(([k, e]) => (k.endsWith('_grad') ? fn(k, 'x: f32, y: f32, g: f32, s: f32', e) : fn(k, 'a: f32, b: f32, g: f32, s: f32', e))),
    'fn unary_fn(op: u32, x: f32, s: f32) -> f32 {',
    '  switch op {',
    cases(unaryNames, (n) => `ew_${n}(x, s)`),
    '    default: { return x; }',
    '  }',
    '}',
    '// Binary rows (a, b), then derivatives (x or a, y or b, g = c).',
    'fn binary_fn(op: u32, a: f32, b: f32, c: f32, s: f32) -> f32 {',
    '  switch op {',
    cases(binaryNames, (n) => `ew_${n}(a, b)`),
    grads.map((k, i) => `    case ${binaryNames.length + i}u: { return ew_${k}(a, b, c, s); }`).join('\n'),
    '    default: { return a; }',
    '  }',
    '}',
    '',
  ].join('\n');
}
