/**
 * Dependency-free SVG charts for reports: multi-series line charts (learning
 * curves) and confusion-matrix heat maps. Pure string builders; they do not
 * write files or rasterise (the CLI turns SVG into PNG with sharp).
 */

/** One line of a line chart. */
export interface Series {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
  /** Dashed lines distinguish validation from training curves. */
  readonly dashed?: boolean;
  /** Index into the palette; series of one experiment share a colour. */
  readonly colour: number;
}

/** Colour-blind-safe palette (Okabe–Ito). */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'] as const;

/** Escapes text for SVG/HTML content and attributes. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** A line chart with axes, ticks, a title and a legend. */
export function lineChart(title: string, xLabel: string, series: readonly Series[], opts: { width?: number; height?: number } = {}): string {
  const W = opts.width ?? 640;
  const H = opts.height ?? 360;
  const m = { l: 56, r: 170, t: 32, b: 44 };
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]).filter((y) => Number.isFinite(y));
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  let y0 = ys.length ? Math.min(...ys) : 0;
  let y1 = ys.length ? Math.max(...ys) : 1;
  if (y1 === y0) (y0 -= 0.5), (y1 += 0.5);
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const sy = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${m.l}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const t of niceTicks(y0, y1, 5)) {
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${Number(t.toPrecision(4))}</text>`);
  }
  for (const t of niceTicks(x0, x1, Math.min(10, Math.max(1, x1 - x0)))) {
    out.push(`<text x="${sx(t).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${Number(t.toPrecision(4))}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<text x="${((m.l + W - m.r) / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  series.forEach((s, i) => {
    const colour = PALETTE[s.colour % PALETTE.length];
    const finite = s.points.filter((p) => Number.isFinite(p[1]));
    if (finite.length > 0) {
      const d = finite.map((p, k) => `${k === 0 ? 'M' : 'L'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      for (const p of finite) out.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="2.5" fill="${colour}"/>`);
    }
    const ly = m.t + 8 + i * 18;
    out.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 36}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${W - m.r + 42}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** A confusion-matrix heat map: rows are true classes, columns predicted; cells show counts. */
export function confusionChart(title: string, classes: readonly string[], matrix: readonly (readonly number[])[]): string {
  const n = classes.length;
  const cell = Math.max(22, Math.min(48, Math.floor(480 / Math.max(1, n))));
  const labelW = Math.min(160, 8 + 7 * Math.max(4, ...classes.map((c) => c.length)));
  const W = labelW + n * cell + 20;
  const H = 40 + labelW + n * cell + 10;
  const top = 40 + labelW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="8" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="34" fill="#555">rows: true class · columns: predicted</text>`,
  ];
  classes.forEach((c, j) => {
    const x = labelW + j * cell + cell / 2;
    out.push(`<text transform="translate(${x.toFixed(1)},${top - 6}) rotate(-60)">${esc(c)}</text>`);
  });
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    out.push(`<text x="${labelW - 6}" y="${(top + i * cell + cell / 2 + 4).toFixed(1)}" text-anchor="end">${esc(classes[i] ?? String(i))}</text>`);
    row.forEach((v, j) => {
      const frac = v / total;
      const shade = Math.round(255 - frac * 200);
      const fill = i === j ? `rgb(${shade},${Math.round(255 - frac * 120)},${shade})` : `rgb(255,${shade},${shade})`;
      out.push(`<rect x="${labelW + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff"/>`);
      out.push(`<text x="${labelW + j * cell + cell / 2}" y="${top + i * cell + cell / 2 + 4}" text-anchor="middle" fill="${frac > 0.6 ? '#fff' : '#222'}">${v}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n');
}
