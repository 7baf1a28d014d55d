/**
 * Compares two experiment snapshots: params as dotted paths (old → new),
 * metrics with deltas, and stages whose keys differ. Pure data in, data out;
 * rendering to text, JSON and Markdown is in `renderDiff`. Does not read the
 * cache or the pipeline file (the CLI builds the snapshots).
 */
import type { JsonObject, JsonValue } from '../pipeline.js';
import { unreachable } from '../result.js';
import { flattenParams, formatMetric, formatValue } from './flatten.js';

/** What is compared: a recorded experiment, or the current pipeline file. */
export interface ExperimentSnapshot {
  /** Experiment id, or `workspace` for the current pipeline file. */
  readonly id: string;
  readonly name?: string;
  readonly params: JsonObject;
  /** Stage id → key; a stage whose key cannot be known yet (upstream would rerun) maps to `?`. */
  readonly stageKeys: Readonly<Record<string, string>>;
  readonly metrics: Readonly<Record<string, number>>;
}

/** One changed param. `old`/`new` are undefined when the path was added/removed. */
export interface ParamChange {
  readonly path: string;
  readonly old?: JsonValue;
  readonly new?: JsonValue;
}

/** One metric in either snapshot. */
export interface MetricChange {
  readonly name: string;
  readonly old?: number;
  readonly new?: number;
  /** new − old, when both exist. */
  readonly delta?: number;
}

/** One stage whose key differs (or exists on one side only). */
export interface StageChange {
  readonly stage: string;
  readonly old?: string;
  readonly new?: string;
}

/** The comparison of `a` (old) against `b` (new). */
export interface ExperimentDiff {
  readonly a: { readonly id: string; readonly name?: string };
  readonly b: { readonly id: string; readonly name?: string };
  readonly params: readonly ParamChange[];
  readonly metrics: readonly MetricChange[];
  readonly stages: readonly StageChange[];
}

/** Computes the diff of two snapshots. Params and stages list only changes; metrics list every metric. */
export function diffExperiments(a: ExperimentSnapshot, b: ExperimentSnapshot): ExperimentDiff {
  const pa = flattenParams(a.params);
  const pb = flattenParams(b.params);
  const params: ParamChange[] = [];
  for (const p of unionKeys([...pa.keys()], [...pb.keys()])) {
    const o = pa.get(p);
    const n = pb.get(p);
    if (JSON.stringify(o) !== JSON.stringify(n)) params.push({ path: p, ...(o !== undefined && { old: o }), ...(n !== undefined && { new: n }) });
  }
  const metrics: MetricChange[] = unionKeys(Object.keys(a.metrics), Object.keys(b.metrics)).map((name) => {
    const o = a.metrics[name];
    const n = b.metrics[name];
    return { name, ...(o !== undefined && { old: o }), ...(n !== undefined && { new: n }), ...(o !== undefined && n !== undefined && { delta: n - o }) };
  });
  const stages: StageChange[] = [];
  for (const s of unionKeys(Object.keys(a.stageKeys), Object.keys(b.stageKeys))) {
    const o = a.stageKeys[s];
    const n = b.stageKeys[s];
    if (o !== n) stages.push({ stage: s, ...(o !== undefined && { old: o }), ...(n !== undefined && { new: n }) });
  }
  return { a: label(a), b: label(b), params, metrics, stages };
}

function label(s: ExperimentSnapshot): { id: string; name?: string } {
  return s.name === undefined ? { id: s.id } : { id: s.id, name: s.name };
}

function unionKeys(a: readonly string[], b: readonly string[]): string[] {
  const seen = new Set(a);
  return [...a, ...b.filter((k) => !seen.has(k))];
}

/** Output formats of `pipeline diff`. */
export type DiffFormat = 'text' | 'json' | 'md';

const title = (s: { id: string; name?: string }): string => (s.name ? `${s.id} (${s.name})` : s.id);
const shortKey = (k: string | undefined): string => (k === undefined ? '—' : k === '?' ? '?' : k.slice(0, 10));
const signed = (d: number | undefined): string => (d === undefined ? '' : `${d >= 0 ? '+' : ''}${formatMetric(d)}`);

/** Renders a diff in one of the formats. */
export function renderDiff(d: ExperimentDiff, format: DiffFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(d, null, 2)}\n`;
    case 'text': {
      const lines = [`diff ${title(d.a)} → ${title(d.b)}`, '', 'params:'];
      if (d.params.length === 0) lines.push('  (no changes)');
      for (const p of d.params) lines.push(`  ${p.path}: ${formatValue(p.old)} → ${formatValue(p.new)}`);
      const changed = d.metrics.filter((m) => m.old !== m.new);
      lines.push('', `metrics${changed.length < d.metrics.length ? ` (${d.metrics.length - changed.length} unchanged not shown)` : ''}:`);
      if (changed.length === 0) lines.push(d.metrics.length === 0 ? '  (none)' : '  (no changes)');
      const w = Math.max(0, ...changed.map((m) => m.name.length));
      for (const m of changed) lines.push(`  ${m.name.padEnd(w)}  ${formatMetric(m.old)} → ${formatMetric(m.new)}${m.delta !== undefined ? `  (${signed(m.delta)})` : ''}`);
      lines.push('', 'stages with different keys:');
      if (d.stages.length === 0) lines.push('  (none)');
      for (const s of d.stages) lines.push(`  ${s.stage}: ${shortKey(s.old)} → ${shortKey(s.new)}`);
      return `${lines.join('\n')}\n`;
    }
    case 'md': {
      const lines = [`### ${title(d.a)} → ${title(d.b)}`, '', '| param | old | new |', '|---|---|---|'];
      for (const p of d.params) lines.push(`| \`${p.path}\` | ${mdCell(formatValue(p.old))} | ${mdCell(formatValue(p.new))} |`);
      if (d.params.length === 0) lines.push('| (no changes) | | |');
      lines.push('', '| metric | old | new | Δ |', '|---|---:|---:|---:|');
      for (const m of d.metrics) lines.push(`| ${m.name} | ${formatMetric(m.old)} | ${formatMetric(m.new)} | ${signed(m.delta)} |`);
      lines.push('', `Stages with different keys: ${d.stages.length === 0 ? 'none' : d.stages.map((s) => `\`${s.stage}\``).join(', ')}`);
      return `${lines.join('\n')}\n`;
    }
    default:
      return unreachable(format);
  }
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}
