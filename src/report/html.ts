/**
 * The `pipeline report` page: one self-contained HTML file (inline SVG, inline
 * CSS, no scripts, no network) with learning curves overlaid across
 * experiments, confusion matrices, a params table and a metrics table. Pure:
 * takes report data, returns strings. Gathering the data from the cache is the
 * CLI's job (`src/cli/report.ts`).
 */
import type { JsonObject } from '../pipeline.js';
import { differingPaths, flattenParams, formatMetric, formatValue } from '../experiments/flatten.js';
import { confusionChart, esc, lineChart, type Series } from './svg.js';

/** One epoch of training history (fields as written by the train stage). */
export interface EpochRow {
  readonly epoch: number;
  readonly loss?: number;
  readonly acc?: number;
  readonly val_loss?: number;
  readonly val_acc?: number;
}

/** What the report needs from one experiment. */
export interface ReportExperiment {
  readonly id: string;
  readonly name?: string;
  readonly createdAt: string;
  readonly params: JsonObject;
  readonly metrics: Readonly<Record<string, number>>;
  readonly history?: readonly EpochRow[];
  readonly confusion?: { readonly classes: readonly string[]; readonly matrix: readonly (readonly number[])[] };
}

/** The charts of a report, by file name (also embedded in the page). */
export interface ReportCharts {
  readonly [fileName: string]: string;
}

const label = (e: ReportExperiment): string => (e.name ? `${e.id} ${e.name}` : e.id);

/** Builds every chart: `loss.svg`, `accuracy.svg`, `confusion-<id>.svg`. */
export function buildCharts(exps: readonly ReportExperiment[]): ReportCharts {
  const charts: Record<string, string> = {};
  const withHistory = exps.filter((e) => e.history && e.history.length > 0);
  if (withHistory.length > 0) {
    const curves = (train: keyof EpochRow, val: keyof EpochRow): Series[] =>
      withHistory.flatMap((e, i) => [
        { label: `${label(e)} train`, colour: i, points: e.history!.filter((r) => r[train] !== undefined).map((r) => [r.epoch, r[train] as number] as const) },
        { label: `${label(e)} val`, colour: i, dashed: true, points: e.history!.filter((r) => r[val] !== undefined).map((r) => [r.epoch, r[val] as number] as const) },
      ]);
    charts['loss.svg'] = lineChart('Loss per epoch', 'epoch', curves('loss', 'val_loss'));
    charts['accuracy.svg'] = lineChart('Accuracy per epoch', 'epoch', curves('acc', 'val_acc'));
  }
  for (const e of exps) {
    if (e.confusion) charts[`confusion-${e.id}.svg`] = confusionChart(`Confusion matrix — ${label(e)}`, e.confusion.classes, e.confusion.matrix);
  }
  return charts;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], numericFrom = Infinity): string {
  return [
    '<table>',
    `<thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>`,
    '<tbody>',
    ...rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`),
    '</tbody></table>',
  ].join('\n');
}

/** Metric order: evaluate's first (the headline), then train's, then the other stages', by name within a stage. */
function byStageThenName(a: string, b: string): number {
  const rank = (m: string): number => (m.startsWith('evaluate.') ? 0 : m.startsWith('train.') ? 1 : 2);
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** Renders the whole page. */
export function renderReport(exps: readonly ReportExperiment[], charts: ReportCharts, opts: { title: string; generatedAt: string }): string {
  const flat = exps.map((e) => flattenParams(e.params));
  const paths = [...new Set(flat.flatMap((f) => [...f.keys()]))];
  const differing = differingPaths(paths, flat);
  const shown = exps.length > 1 && differing.length > 0 ? differing : paths;
  const paramsTable = table(['param', ...exps.map(label)], shown.map((p) => [p, ...flat.map((f) => formatValue(f.get(p)))]));
  // One row per metric, one column per experiment (a pipeline reports dozens of metrics: as columns the
  // table scrolled sideways and evaluate.accuracy ended up off screen). Metrics that differ come first;
  // the rest (counts, sizes) are folded away.
  const metricNames = [...new Set(exps.flatMap((e) => Object.keys(e.metrics)))].sort(byStageThenName);
  const metricsDiffering = exps.length > 1 ? metricNames.filter((m) => new Set(exps.map((e) => e.metrics[m])).size > 1) : metricNames;
  const metricsSame = metricNames.filter((m) => !metricsDiffering.includes(m));
  const metricRows = (names: readonly string[]): string => table(['metric', ...exps.map(label)], names.map((m) => [m, ...exps.map((e) => formatMetric(e.metrics[m]))]), 1);
  const metricsTable = [
    ...(metricsDiffering.length ? [metricRows(metricsDiffering)] : []),
    ...(metricsSame.length
      ? [metricsDiffering.length ? `<details><summary>${metricsSame.length} metric(s) equal in every experiment</summary>\n${metricRows(metricsSame)}\n</details>` : metricRows(metricsSame)]
      : []),
  ].join('\n');
  const curveCharts = ['loss.svg', 'accuracy.svg'].filter((f) => charts[f]).map((f) => `<figure>${charts[f]}</figure>`);
  const confusion = exps.filter((e) => charts[`confusion-${e.id}.svg`]).map((e) => `<figure>${charts[`confusion-${e.id}.svg`]}</figure>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(opts.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem} th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5rem} .muted{color:#666} summary{cursor:pointer;color:#444;margin:.5rem 0}
</style>
</head>
<body>
<h1>${esc(opts.title)}</h1>
<p class="muted">${exps.length} experiment(s): ${exps.map((e) => esc(`${label(e)} (${e.createdAt.replace('T', ' ').slice(0, 19)})`)).join(', ')}. Generated ${esc(opts.generatedAt)}.</p>
<h2>Metrics${exps.length > 1 && metricsDiffering.length > 0 ? ' (those that differ first)' : ''}</h2>
${metricNames.length ? metricsTable : '<p class="muted">No metrics recorded.</p>'}
<h2>Params${exps.length > 1 && differing.length > 0 ? ' (those that differ)' : ''}</h2>
${shown.length ? paramsTable : '<p class="muted">No params.</p>'}
<h2>Learning curves</h2>
${curveCharts.length ? curveCharts.join('\n') : '<p class="muted">No training history recorded.</p>'}
<h2>Confusion matrices</h2>
${confusion.length ? confusion.join('\n') : '<p class="muted">No confusion matrix recorded.</p>'}
</body>
</html>
`;
}
