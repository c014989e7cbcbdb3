// A small, strict argument parser: known flags only, typed values, one-line errors (exit code 2).

export class UsageError extends Error {}

export type FlagSpec = Record<string, 'string' | 'int' | 'number' | 'bool'>;

export function parseFlags<S extends FlagSpec>(argv: string[], spec: S, command: string): Partial<Record<keyof S, string | number | boolean>> {
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
    const kind = spec[name];
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
      if (!Number.isInteger(v) || v < 0) throw new UsageError(`${command}: --${name} needs a non-negative integer, got '${value}'`);
      out[name] = v;
    } else if (kind === 'number') {
      const v = Number(value);
      if (!Number.isFinite(v)) throw new UsageError(`${command}: --${name} needs a number, got '${value}'`);
      out[name] = v;
    } else out[name] = value;
  }
  return out as Partial<Record<keyof S, string | number | boolean>>;
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
