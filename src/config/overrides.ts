/**
 * `-S path=value[,value...]` command-line overrides: parsing only. Values are
 * YAML-parsed scalars (`0.01` → number, `true` → boolean, `[32,32]` → list);
 * several comma-separated values make a sweep. Commas inside quotes or
 * brackets, or escaped as `\,`, do not split. Applying an override to the
 * params tree is `loadPipeline`'s job.
 */
import { parse as parseYaml } from 'yaml';
import type { JsonValue } from '../pipeline.js';
import { ok, err, type Result } from '../result.js';

/** Parses `train.lr=0.001,0.01` into a param path and one or more values. The error is a one-line message. */
export function parseOverride(arg: string): Result<{ path: string; values: JsonValue[] }, string> {
  const eq = arg.indexOf('=');
  if (eq < 0) return err(`-S ${arg}: expected path=value, e.g. -S train.lr=0.01`);
  const path = arg.slice(0, eq).trim();
  if (path === '') return err(`-S ${arg}: missing param path before '='`);
  if (!/^[^\s.]+(\.[^\s.]+)*$/.test(path)) return err(`-S ${arg}: invalid param path '${path}' (dotted keys, e.g. train.lr)`);
  const pieces = splitTopLevel(arg.slice(eq + 1));
  if (!pieces.ok) return err(`-S ${arg}: ${pieces.error}`);
  const values: JsonValue[] = [];
  for (const piece of pieces.value) {
    const v = parseScalar(piece);
    if (!v.ok) return err(`-S ${arg}: cannot parse value '${piece}': ${v.error}`);
    values.push(v.value);
  }
  return ok({ path, values });
}

/** Splits on commas that are not quoted, bracketed or backslash-escaped. */
function splitTopLevel(s: string): Result<string[], string> {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      cur += c;
      if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else if (c === quote) quote = undefined;
    } else if (c === '\\' && s[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (c === '[' || c === '{') {
      depth++;
      cur += c;
    } else if ((c === ']' || c === '}') && depth > 0) {
      depth--;
      cur += c;
    } else if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quote) return err(`unterminated ${quote} quote`);
  out.push(cur);
  return ok(out);
}

function parseScalar(piece: string): Result<JsonValue, string> {
  const t = piece.trim();
  if (t === '') return ok('');
  try {
    const v = parseYaml(t) as unknown;
    // Anything YAML reads as a mapping from plain text (`a: b`) is more likely a string the user meant.
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !t.startsWith('{')) return ok(t);
    return ok((v ?? null) as JsonValue);
  } catch (e) {
    return err((e as Error).message.split('\n')[0]);
  }
}
