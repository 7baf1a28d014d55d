/**
 * Flattens a params tree to dotted paths (`train.lr`). Arrays are leaves
 * (`resize.size = [224, 224]`), since users change them as one value. Pure.
 */
import type { JsonValue } from '../pipeline.js';

/** Dotted path → leaf value, in the tree's key order. */
export function flattenParams(value: JsonValue, prefix = ''): Map<string, JsonValue> {
  const out = new Map<string, JsonValue>();
  const walk = (v: JsonValue, p: string): void => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [k, child] of Object.entries(v)) walk(child, p === '' ? k : `${p}.${k}`);
    } else {
      out.set(p, v);
    }
  };
  // An empty tree has no params (not one param named "" holding {}).
  if (prefix === '' && value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) return out;
  walk(value, prefix);
  return out;
}

/** The `paths` (in order) whose values are not the same in every one of `flats`; a missing path counts as null. */
export function differingPaths(paths: readonly string[], flats: readonly ReadonlyMap<string, JsonValue>[]): string[] {
  return paths.filter((p) => new Set(flats.map((f) => JSON.stringify(f.get(p) ?? null))).size > 1);
}

/** Compact, stable text for a leaf value in tables and diffs. */
export function formatValue(v: JsonValue | undefined): string {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Formats a metric for tables: up to 4 significant decimals. */
export function formatMetric(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '—';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1000 ? v.toFixed(1) : Number(v.toPrecision(4)).toString();
}
