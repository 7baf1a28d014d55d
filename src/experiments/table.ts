/**
 * The `pipeline exp list` table: one row per experiment; columns are the
 * params that differ across the listed experiments, then the metrics. Sorting,
 * filtering and limiting are pure functions over records; rendering to text,
 * CSV, Markdown and JSON is in `renderTable`. No I/O.
 */
import type { JsonValue } from '../pipeline.js';
import { err, ok, unreachable, type Result } from '../result.js';
import type { ExperimentRecord } from './record.js';
import { differingPaths, flattenParams, formatMetric, formatValue } from './flatten.js';

/** A filter `path op value`; path is a param path or a metric name (`params.X` for param X when a metric is also named X). */
export interface ExperimentFilter {
  readonly path: string;
  readonly op: '=' | '!=' | '>' | '>=' | '<' | '<=';
  readonly value: string;
}

/** Parses `train.lr=0.01`, `evaluate.accuracy>=0.9`, `status!=failed`. */
export function parseFilter(text: string): Result<ExperimentFilter, string> {
  const m = /^([^=!<>\s]+)\s*(!=|>=|<=|=|>|<)\s*(.*)$/.exec(text.trim());
  if (!m) return err(`invalid filter "${text}": expected PATH OP VALUE with OP one of = != > >= < <=`);
  return ok({ path: m[1]!, op: m[2] as ExperimentFilter['op'], value: m[3]! });
}

/** Sort order: a column (param path, metric, `created`, `id`, `name`, `pipeline`), descending when prefixed with `-`. */
export interface ListOptions {
  readonly sort?: string;
  readonly filters?: readonly ExperimentFilter[];
  /** Keep the newest N after filtering (before sorting). */
  readonly limit?: number;
  /** Show every metric, not only those that differ (see `pickMetrics`). */
  readonly allMetrics?: boolean;
}

/**
 * Which metric columns to show. Every stage reports many figures (counts,
 * timings), so by default the table shows the metrics whose values differ
 * across the rows; when none differ (one row, or a rerun of the same config),
 * it shows the metrics of the last stage that reports any (usually
 * `evaluate`). `all` shows every metric.
 */
export function pickMetrics(rows: readonly ExperimentRecord[], names: readonly string[], all: boolean): string[] {
  const sorted = [...names].sort();
  if (all) return sorted;
  const differing = sorted.filter((m) => new Set(rows.map((r) => r.metrics[m])).size > 1);
  if (differing.length > 0) return differing;
  const last = rows[rows.length - 1];
  if (!last) return [];
  const stageOrder = Object.keys(last.stages);
  for (let i = stageOrder.length - 1; i >= 0; i--) {
    const prefix = `${stageOrder[i]}.`;
    const own = sorted.filter((m) => m.startsWith(prefix));
    if (own.length > 0) return own;
  }
  return sorted;
}

/** A built table. `cells` hold display strings; `values` the raw values (for JSON). */
export interface ExperimentTable {
  readonly columns: readonly string[];
  /** Which columns are params (the rest are fixed columns and metrics). */
  readonly paramColumns: readonly string[];
  readonly metricColumns: readonly string[];
  readonly rows: readonly { readonly cells: readonly string[]; readonly values: Readonly<Record<string, JsonValue | number | undefined>> }[];
}

const FIXED = ['id', 'name', 'created', 'status'] as const;

function valueOf(rec: ExperimentRecord, params: Map<string, JsonValue>, path: string): JsonValue | number | undefined {
  switch (path) {
    case 'id':
      return rec.id;
    case 'name':
      return rec.name ?? null;
    case 'created':
      return rec.createdAt;
    case 'status':
      return rec.status;
    case 'pipeline':
      return rec.pipeline.name;
    default:
      if (path in rec.metrics) return rec.metrics[path];
      // `params.X` names param X explicitly (the column name when a metric is also called X).
      return params.get(path) ?? (path.startsWith(PARAM_PREFIX) ? params.get(path.slice(PARAM_PREFIX.length)) : undefined);
  }
}

/** Prefix that names a param column whose path equals a metric's name (e.g. param `train.epochs`, metric `train.epochs`). */
const PARAM_PREFIX = 'params.';

function matches(v: JsonValue | number | undefined, f: ExperimentFilter): boolean {
  if (v === undefined) return f.op === '!=';
  const num = Number(f.value);
  if (typeof v === 'number' && f.value.trim() !== '' && !Number.isNaN(num)) {
    switch (f.op) {
      case '=':
        return v === num;
      case '!=':
        return v !== num;
      case '>':
        return v > num;
      case '>=':
        return v >= num;
      case '<':
        return v < num;
      case '<=':
        return v <= num;
      default:
        return unreachable(f.op);
    }
  }
  const s = formatValue(v as JsonValue);
  switch (f.op) {
    case '=':
      return s === f.value;
    case '!=':
      return s !== f.value;
    case '>':
      return s > f.value;
    case '>=':
      return s >= f.value;
    case '<':
      return s < f.value;
    case '<=':
      return s <= f.value;
    default:
      return unreachable(f.op);
  }
}

function compare(a: JsonValue | number | undefined, b: JsonValue | number | undefined): number {
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : 1;
  if (b === undefined || b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return formatValue(a as JsonValue).localeCompare(formatValue(b as JsonValue));
}

/** Builds the table for `records` (oldest first, as `readExperiments` returns them). */
export function buildTable(records: readonly ExperimentRecord[], opts: ListOptions = {}): ExperimentTable {
  const flat = new Map(records.map((r) => [r, flattenParams(r.params)]));
  let rows = records.filter((r) => (opts.filters ?? []).every((f) => matches(valueOf(r, flat.get(r)!, f.path), f)));
  if (opts.limit !== undefined) rows = rows.slice(Math.max(0, rows.length - opts.limit));
  if (opts.sort) {
    const desc = opts.sort.startsWith('-');
    const key = desc ? opts.sort.slice(1) : opts.sort;
    rows = [...rows].sort((a, b) => {
      const c = compare(valueOf(a, flat.get(a)!, key), valueOf(b, flat.get(b)!, key));
      return desc ? -c : c;
    });
  }
  const allPaths: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) for (const p of flat.get(r)!.keys()) if (!seen.has(p)) (seen.add(p), allPaths.push(p));
  const metricSet = new Set<string>();
  for (const r of rows) for (const m of Object.keys(r.metrics)) metricSet.add(m);
  // Column name → param path (prefixed when a metric has the same name).
  const paramPaths = new Map(
    differingPaths(allPaths, rows.map((r) => flat.get(r)!)).map((p) => [metricSet.has(p) ? `${PARAM_PREFIX}${p}` : p, p] as const),
  );
  const paramColumns = [...paramPaths.keys()];
  const metricColumns = pickMetrics(rows, [...metricSet], opts.allMetrics === true);
  // Several pipelines can share one cache: name each row's pipeline when the rows mix them.
  const mixed = new Set(rows.map((r) => r.pipeline.file)).size > 1;
  const columns = [...FIXED.slice(0, 2), ...(mixed ? ['pipeline'] : []), ...FIXED.slice(2), ...paramColumns, ...metricColumns];
  return {
    columns,
    paramColumns,
    metricColumns,
    rows: rows.map((r) => {
      const values: Record<string, JsonValue | number | undefined> = {};
      const cells = columns.map((c) => {
        const param = paramPaths.get(c);
        const v = param !== undefined ? flat.get(r)!.get(param) : valueOf(r, flat.get(r)!, c);
        values[c] = v;
        if (c === 'created') return r.createdAt.replace('T', ' ').slice(0, 19);
        if (c === 'name') return r.name ?? '';
        return metricSet.has(c) ? formatMetric(v as number | undefined) : formatValue(v as JsonValue | undefined);
      });
      return { cells, values };
    }),
  };
}

/** Output formats of `exp list`. */
export type TableFormat = 'text' | 'json' | 'csv' | 'md';

function csvCell(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Renders the table. */
export function renderTable(t: ExperimentTable, format: TableFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(t.rows.map((r) => r.values), null, 2)}\n`;
    case 'csv':
      return `${[t.columns, ...t.rows.map((r) => r.cells)].map((row) => row.map(csvCell).join(',')).join('\n')}\n`;
    case 'md':
      return `${[
        `| ${t.columns.join(' | ')} |`,
        `|${t.columns.map((c) => (t.metricColumns.includes(c) ? '---:' : '---')).join('|')}|`,
        ...t.rows.map((r) => `| ${r.cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
      ].join('\n')}\n`;
    case 'text': {
      if (t.rows.length === 0) return 'no experiments recorded yet\n';
      const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => r.cells[i]!.length)));
      const line = (cells: readonly string[]): string =>
        cells.map((c, i) => (t.metricColumns.includes(t.columns[i]!) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
      return `${[line(t.columns), line(widths.map((w) => '-'.repeat(w))), ...t.rows.map((r) => line(r.cells))].join('\n')}\n`;
    }
    default:
      return unreachable(format);
  }
}
