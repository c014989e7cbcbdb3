// Output for people (aligned tables on stdout) and scripts (--json: one JSON object per line on
// stdout); progress goes to stderr so JSON stays clean. Every JSON line says what it is:
// `{"type": "header" | "row" | "epoch" | "summary", "command": "<the command>", ...fields}`.

export type Row = Record<string, string | number | boolean | null>;

export type RecordType = 'header' | 'row' | 'epoch' | 'summary';

export class Reporter {
  constructor(
    readonly json: boolean,
    readonly command = '',
  ) {}

  /** One JSON line of the given type (nothing in text mode). */
  record(type: RecordType, fields: Record<string, unknown>): void {
    if (this.json) console.log(JSON.stringify({ type, command: this.command, ...fields }));
  }

  /** Prints rows as JSON lines of the given type, or as one aligned table with the given columns. */
  table(rows: Row[], columns: Array<[key: string, title: string, format?: (v: Row[string]) => string]>, type: RecordType = 'row'): void {
    if (this.json) {
      for (const r of rows) this.record(type, r);
      return;
    }
    console.log(formatTable(rows, columns));
  }

  text(s: string): void {
    if (!this.json) console.log(s);
  }

  progress(s: string): void {
    process.stderr.write(`${s}\n`);
  }
}

/** An aligned text table: the first column left-aligned, the others right-aligned, no cell cut short. */
export function formatTable(rows: Row[], columns: Array<[key: string, title: string, format?: (v: Row[string]) => string]>): string {
  const cells = rows.map((r) => columns.map(([k, , f]) => (f ? f(r[k]) : String(r[k] ?? ''))));
  const widths = columns.map(([, t], i) => Math.max(t.length, ...cells.map((c) => c[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(columns.map(([, t]) => t)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export const fixed = (d: number) => (v: Row[string]) => (typeof v === 'number' ? v.toFixed(d) : String(v ?? ''));
export const mib = (v: Row[string]) => (typeof v === 'number' ? (v / 2 ** 20).toFixed(1) : String(v ?? ''));
