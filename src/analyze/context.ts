/**
 * Shared state of one analysis: the source file, the merged params and the
 * diagnostics found so far. Used by the `src/analyze/*` steps; holds no I/O.
 */
import type { Diagnostic, DiagnosticReason, SourceLocation } from '../diagnostic.js';
import type { JsonObject } from '../pipeline.js';
import type { YamlSource } from '../config/source.js';

/** What every analysis step can read and report into. */
export interface AnalyzeContext {
  readonly source: YamlSource;
  /** The merged params tree (inline, params files, overrides). */
  readonly params: JsonObject;
  readonly diagnostics: Diagnostic[];
  /** Absolute path of the workspace (the pipeline file's folder). */
  readonly workspace: string;
  /** The folders outside the workspace that dependencies may name (`external:`), absolute. */
  readonly external: readonly string[];
}

/** Records an error. */
export function report(
  ctx: AnalyzeContext,
  reason: DiagnosticReason,
  message: string,
  location: SourceLocation,
  related?: Diagnostic['related'],
): void {
  ctx.diagnostics.push({ severity: 'error', reason, message, location, ...(related && related.length > 0 ? { related } : {}) });
}

/** Diagnostics with exact duplicates removed (expanded stages repeat their template's errors), in file order. */
export function dedupeDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of ds) {
    const k = `${d.location?.file}:${d.location?.offset}:${d.reason}:${d.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out.sort((a, b) => {
    const fa = a.location?.file ?? '';
    const fb = b.location?.file ?? '';
    if (fa !== fb) return fa < fb ? -1 : 1;
    return (a.location?.offset ?? 0) - (b.location?.offset ?? 0);
  });
}

/** A value for a message: long ones cut (a 1 MB path makes an unreadable one-line message). */
export function shown(s: string, max = 200): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length.toLocaleString('en-US')} characters)`;
}

/** Narrowing helper for defensive reads of not-yet-validated config. */
export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
