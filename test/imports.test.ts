// The import graph of the library: no cycles, and the layers stack engine -> nn -> data -> models: each
// imports only from itself and the layers before it (side-effect imports such as `import './x.js'` count).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = join(__dirname, '..');
const LAYERS = ['engine', 'nn', 'data', 'models']; // each may import only from itself and the layers before it

function files(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/** file -> the repository files it imports (type-only and side-effect imports included), relative to the root. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of LAYERS.flatMap(files)) {
    const src = readFileSync(join(root, f), 'utf8');
    const specs = [...src.matchAll(/(?:^|\n)\s*(?:import|export)\s(?:[^;]*?from\s+)?'(\.[^']+)'/g)].map((m) => m[1]);
    g.set(f, specs.map((s) => normalize(join(dirname(f), s.replace(/\.js$/, '.ts')))));
  }
  return g;
}

describe('import graph', () => {
  const g = graph();

  test('no import cycles in engine/, nn/, data/, models/', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') return void cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      state.set(f, 'open');
      for (const d of g.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of g.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  test('engine -> nn -> data -> models: no layer imports from a layer after it, nor from test/ or bench/', () => {
    const layer = (f: string) => f.split('/')[0];
    const bad = [...g].flatMap(([f, deps]) =>
      deps.filter((d) => {
        const l = layer(relative(root, join(root, d)));
        return l === 'test' || l === 'bench' || LAYERS.indexOf(l) > LAYERS.indexOf(layer(f));
      }).map((d) => `${f} -> ${d}`),
    );
    expect(bad).toEqual([]);
  });
});
