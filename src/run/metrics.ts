/**
 * Reads a `cmd` stage's declared metrics files: JSON objects whose numeric
 * leaves become dotted metric names (`{"val": {"acc": 0.9}}` → `val.acc`).
 * Non-numeric leaves (strings, arrays, booleans, null) are ignored. A missing
 * or malformed file is an expected failure with a message naming it.
 *
 * It does not decide what a failure means for the stage (the runner does).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { err, ok, type Result } from '../result.js';

/** Numeric leaves of `v` as dotted paths under `prefix`. */
export function flattenMetrics(v: unknown, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (x: unknown, p: string): void => {
    if (typeof x === 'number' && Number.isFinite(x)) {
      if (p !== '') out[p] = x;
    } else if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      for (const [k, child] of Object.entries(x)) walk(child, p === '' ? k : `${p}.${k}`);
    }
  };
  walk(v, prefix);
  return out;
}

/** Reads and merges every metrics file (later files win on equal names). */
export async function readMetricsFiles(workspace: string, files: readonly string[]): Promise<Result<Record<string, number>, string>> {
  const merged: Record<string, number> = {};
  for (const f of files) {
    let text: string;
    try {
      text = await fs.readFile(path.resolve(workspace, f), 'utf8');
    } catch {
      return err(`metrics file ${f} was not written`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      return err(`metrics file ${f} is not valid JSON: ${(e as Error).message}`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) return err(`metrics file ${f} must hold a JSON object`);
    Object.assign(merged, flattenMetrics(json));
  }
  return ok(merged);
}
