// Output for people (aligned tables on stdout) and scripts (--json: one JSON object per line on
// stdout); progress goes to stderr so JSON stays clean.

export type Row = Record<string, string | number | boolean | null>;

export class Reporter {
  constructor(readonly json: boolean) {}

  /** Prints rows as JSON lines, or as one aligned table with the given columns. */
  table(rows: Row[], columns: Array<[key: string, title: string, format?: (v: Row[string]) => string]>): void {
    if (this.json) {
      for (const r of rows) console.log(JSON.stringify(r));
      return;
    }
    const cells = rows.map((r) => columns.map(([k, , f]) => (f ? f(r[k]) : String(r[k] ?? ''))));
    const widths = columns.map(([, t], i) => Math.max(t.length, ...cells.map((c) => c[i].length)));
    const line = (vals: string[]) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
    console.log(line(columns.map(([, t]) => t)));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const c of cells) console.log(line(c));
  }

  text(s: string): void {
    if (!this.json) console.log(s);
  }

  progress(s: string): void {
    process.stderr.write(`${s}\n`);
  }
}

export const fixed = (d: number) => (v: Row[string]) => (typeof v === 'number' ? v.toFixed(d) : String(v ?? ''));
export const mib = (v: Row[string]) => (typeof v === 'number' ? (v / 2 ** 20).toFixed(1) : String(v ?? ''));
