// One SVG line chart for the CLI's plots (`memory --plot`, `train`'s curves.svg): both axes start at 0
// and carry round ticks (steps of 1, 2 or 5 times a power of ten), and the legend sits to the right of
// the plotting area, so it never covers a curve.

export interface Series {
  name: string;
  color: string;
  points: Array<[x: number, y: number]>;
  /** An SVG stroke-dasharray, e.g. '6 3'. */
  dash?: string;
  /** Draw a dot at each point. */
  markers?: boolean;
}

export interface Chart {
  title?: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

/** Round tick values from 0 to at least `max`: about `target` steps of 1, 2 or 5 x 10^k. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const n = Math.ceil(max / step - 1e-9);
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/** Tick labels with as many decimals as the step needs: 0, 0.5, 1.0 ... or 0, 20, 40 ... */
export function tickLabels(ticks: number[]): string[] {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return ticks.map((t) => t.toFixed(decimals));
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function lineChart(c: Chart): string {
  const legendW = 20 + 7 * Math.max(0, ...c.series.map((s) => s.name.length)) + 16;
  const m = { l: 64, r: 16 + legendW, t: c.title ? 40 : 16, b: 48 };
  const W = 480 + m.l + m.r;
  const H = 380;
  const pts = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xt = niceTicks(Math.max(0, ...pts.map(([x]) => x)));
  const yt = niceTicks(Math.max(0, ...pts.map(([, y]) => y)));
  const xmax = xt[xt.length - 1];
  const ymax = yt[yt.length - 1];
  const px = (x: number) => (m.l + ((W - m.l - m.r) * x) / xmax).toFixed(1);
  const py = (y: number) => (H - m.b - ((H - m.t - m.b) * y) / ymax).toFixed(1);
  const right = W - m.r;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  if (c.title) parts.push(`<text x="${(m.l + right) / 2}" y="22" text-anchor="middle" font-size="13">${escapeXml(c.title)}</text>`);
  tickLabels(yt).forEach((label, i) => {
    parts.push(`<line x1="${m.l}" y1="${py(yt[i])}" x2="${right}" y2="${py(yt[i])}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${Number(py(yt[i])) + 4}" text-anchor="end">${label}</text>`);
  });
  tickLabels(xt).forEach((label, i) => {
    parts.push(`<line x1="${px(xt[i])}" y1="${H - m.b}" x2="${px(xt[i])}" y2="${H - m.b + 4}" stroke="black"/>`);
    parts.push(`<text x="${px(xt[i])}" y="${H - m.b + 17}" text-anchor="middle">${label}</text>`);
  });
  parts.push(
    `<line x1="${m.l}" y1="${H - m.b}" x2="${right}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + right) / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(c.xLabel)}</text>`,
    `<text x="16" y="${(m.t + H - m.b) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(m.t + H - m.b) / 2})">${escapeXml(c.yLabel)}</text>`,
  );
  c.series.forEach((s, si) => {
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${ok.map(([x, y]) => `${px(x)},${py(y)}`).join(' ')}"/>`);
    if (s.markers) for (const [x, y] of ok) parts.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${s.color}"/>`);
    const ly = m.t + 8 + si * 18;
    parts.push(`<line x1="${right + 16}" y1="${ly}" x2="${right + 32}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${right + 38}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
