// A small, strict argument parser: known flags only, typed values, one-line errors (exit code 2).
// Each command declares its flags once, in a table that both the parser and `--help` read, so the
// help text cannot list a flag the parser rejects, nor leave one out.

/** A mistake on the command line: one line, a hint to --help, exit code 2. */
export class UsageError extends Error {}

/** Input the command cannot use (data files, a checkpoint, an input too small for the model): exit code 2. */
export class InputError extends Error {}

export interface Flag {
  kind: 'string' | 'int' | 'number' | 'bool';
  /** One line for --help; a leading `VALUE:` part names the value (`'N: images per step'`). */
  help: string;
}

export type FlagSpec = Record<string, Flag>;

export type Flags = Partial<Record<string, string | number | boolean>>;

/** The flags every command takes. */
export const COMMON_FLAGS = {
  json: { kind: 'bool', help: 'one JSON object per line on stdout, each with "type" and "command" (progress stays on stderr)' },
  help: { kind: 'bool', help: "print this command's flags and exit" },
  'memory-budget': { kind: 'string', help: 'SIZE: cap on GPU memory, e.g. 2GiB, 512MiB or bytes; 0 for none (default: 3/4 of RAM on a software adapter, none on a GPU)' },
} as const satisfies FlagSpec;

export function parseFlags(argv: string[], spec: FlagSpec, command: string): Flags {
  const out: Record<string, string | number | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${a}'`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = Object.hasOwn(spec, name) ? spec[name].kind : undefined;
    if (!kind) throw new UsageError(`${command}: unknown flag --${name}`);
    if (kind === 'bool') {
      out[name] = value === undefined ? true : value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`${command}: --${name} needs a value`);
    }
    if (kind === 'int') {
      const v = Number(value);
      if (value.trim() === '' || !Number.isInteger(v) || v < 0) throw new UsageError(`${command}: --${name} needs a non-negative integer, got '${value}'`);
      out[name] = v;
    } else if (kind === 'number') {
      const v = Number(value);
      if (value.trim() === '' || !Number.isFinite(v)) throw new UsageError(`${command}: --${name} needs a number, got '${value}'`);
      out[name] = v;
    } else out[name] = value;
  }
  return out;
}

/** `--help` of one command, from its flag table. */
export function helpText(program: string, command: string, summary: string, spec: FlagSpec): string {
  const rows = Object.entries(spec).map(([name, f]) => {
    const colon = f.help.indexOf(': ');
    const hasValue = f.kind !== 'bool' && colon > 0 && !f.help.slice(0, colon).includes(' ');
    const value = f.kind === 'bool' ? '' : ` ${hasValue ? f.help.slice(0, colon) : f.kind === 'int' ? 'N' : f.kind === 'number' ? 'X' : 'VALUE'}`;
    return [`--${name}${value}`, hasValue ? f.help.slice(colon + 2) : f.help];
  });
  const w = Math.max(...rows.map(([l]) => l.length));
  return [`usage: ${program} ${command} [flags]`, summary, '', 'flags:', ...rows.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`)].join('\n');
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30 };

/** Parses a byte count such as '2GiB', '512MiB', '1.5g' or '1048576' (binary units). */
export function parseBytes(s: string, flag = '--memory-budget'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s.trim());
  const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${flag} needs a size such as 2GiB, 512MiB or a number of bytes, got '${s}'`);
  return Math.floor(Number(m[1]) * unit);
}

/** Parses 'HxW' or 'N' (square). */
export function parseSize(s: string, flag = '--size'): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(s);
  if (!m) throw new UsageError(`${flag} needs HxW or N, got '${s}'`);
  const h = Number(m[1]);
  const w = Number(m[2] ?? m[1]);
  if (h < 1 || w < 1) throw new UsageError(`${flag} must be positive, got '${s}'`);
  return [h, w];
}

export function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** An integer flag with a default and a lower bound. */
export function intFlag(f: Flags, name: string, dflt: number, min = 1): number {
  const v = (f[name] as number | undefined) ?? dflt;
  if (v < min) throw new UsageError(`--${name} must be at least ${min}, got ${v}`);
  return v;
}
