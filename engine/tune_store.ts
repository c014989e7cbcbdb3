// Where the tuner keeps its measured choices between runs: in Node a JSON file under the user's cache
// directory ($XDG_CACHE_HOME or ~/.cache, densenet-webgpu/tune.json), replaced atomically (written to a
// temporary file, then renamed); in a browser localStorage. Node's modules are reached through
// `process.getBuiltinModule`, so nothing Node-only is imported and the browser bundle stays clean.
// Anyone may inject another store with `setTuneStore()` (tests use an in-memory one).

export interface TuneStore {
  /** Where the choices live, for messages (a path or 'localStorage'). */
  where: string;
  load(): string | null;
  save(text: string): void;
}

declare const __DENSENET_BROWSER__: boolean | undefined;
const BROWSER_BUILD = typeof __DENSENET_BROWSER__ !== 'undefined' && __DENSENET_BROWSER__ === true;

type Fs = typeof import('fs');
type Path = typeof import('path');
type Os = typeof import('os');

function nodeStore(): TuneStore | null {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  const getBuiltin = (proc as { getBuiltinModule?: (id: string) => unknown } | undefined)?.getBuiltinModule;
  if (!proc?.versions?.node || !getBuiltin) return null;
  const fs = getBuiltin('fs') as Fs;
  const path = getBuiltin('path') as Path;
  const os = getBuiltin('os') as Os;
  const base = proc.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const file = path.join(base, 'densenet-webgpu', 'tune.json');
  return {
    where: file,
    load() {
      try {
        return fs.readFileSync(file, 'utf8');
      } catch {
        return null;
      }
    },
    save(text) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${proc.pid}.tmp`;
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, file);
    },
  };
}

function browserStore(): TuneStore | null {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (!ls) return null;
  const key = 'densenet-webgpu:tune';
  return { where: 'localStorage', load: () => ls.getItem(key), save: (t) => ls.setItem(key, t) };
}

/** The platform's store: localStorage in a browser, the cache file in Node, else none. */
export function defaultTuneStore(): TuneStore | null {
  return browserStore() ?? (BROWSER_BUILD ? null : nodeStore());
}

/** A store that lives in memory only (tests). */
export function memoryTuneStore(initial: string | null = null): TuneStore & { text: string | null } {
  const s = {
    where: 'memory',
    text: initial,
    load: () => s.text,
    save: (t: string) => {
      s.text = t;
    },
  };
  return s;
}
