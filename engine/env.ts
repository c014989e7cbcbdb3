// Settings read from the environment (Node's process.env; a browser has none, so every read is null).

/**
 * The value of the environment variable `name` when it is one of `allowed`; null when it is unset or
 * empty, and null with one warning (naming the variable, the values it takes and what it got) otherwise.
 */
export function envChoice<T extends string>(name: string, allowed: readonly T[]): T | null {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
  if (v === undefined || v === '') return null;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  console.warn(`densenet-webgpu: ${name} must be one of ${allowed.join(', ')}, got '${v}'; ignoring it`);
  return null;
}
