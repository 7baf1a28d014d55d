/**
 * `${...}` templates in pipeline values: parsing and rendering.
 *
 * Syntax: `${params.a.b}`, `${item}`, `${item.key}`, `${stages.<id>.out}`;
 * `$${` is a literal `${`. A value that is exactly one reference keeps the
 * referenced value's type (number, object, ...); references embedded in
 * longer text are stringified (strings as-is, everything else as JSON).
 *
 * This module does not know what params, items or stages exist: callers pass a
 * resolver, and turn the issues it returns into located diagnostics.
 */
import type { JsonValue } from './pipeline.js';
import { ok, err, type Result } from './result.js';

/** What a `${...}` refers to. */
export type Ref =
  /** A param path, dotted, e.g. `train.lr`. */
  | { readonly kind: 'params'; readonly path: string }
  /** The current foreach/matrix item (`path` empty) or one of its keys. */
  | { readonly kind: 'item'; readonly path: readonly string[] }
  /** Another stage's output location. */
  | { readonly kind: 'stages'; readonly stage: string; readonly field: 'out' };

/** One piece of a parsed template. `offset`/`length` are positions in the template string. */
export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'ref'; readonly ref: Ref; readonly raw: string; readonly offset: number; readonly length: number };

/** A syntax error in a template, positioned inside the template string. */
export interface TemplateError {
  readonly message: string;
  readonly offset: number;
  readonly length: number;
}

/** Whether `s` contains anything `parseTemplate` would treat specially (fast path). */
export function hasTemplate(s: string): boolean {
  return s.includes('${');
}

/** Splits a string into text and references. */
export function parseTemplate(s: string): Result<TemplatePart[], TemplateError> {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      text += '${';
      i += 3;
      continue;
    }
    if (!s.startsWith('${', i)) {
      text += s[i++];
      continue;
    }
    const close = s.indexOf('}', i + 2);
    const nextOpen = s.indexOf('${', i + 2);
    if (close < 0 || (nextOpen >= 0 && nextOpen < close)) {
      return err({ message: "unterminated '${': missing '}'", offset: i, length: 2 });
    }
    const raw = s.slice(i, close + 1);
    const ref = parseRef(s.slice(i + 2, close).trim());
    if (!ref.ok) return err({ message: `${ref.error} in '${raw}'`, offset: i, length: raw.length });
    if (text) parts.push({ kind: 'text', text });
    text = '';
    parts.push({ kind: 'ref', ref: ref.value, raw, offset: i, length: raw.length });
    i = close + 1;
  }
  if (text || parts.length === 0) parts.push({ kind: 'text', text });
  return ok(parts);
}

function parseRef(expr: string): Result<Ref, string> {
  if (expr === '') return err('empty reference');
  if (/\s/.test(expr)) return err('a reference cannot contain spaces');
  const dot = expr.indexOf('.');
  const ns = dot < 0 ? expr : expr.slice(0, dot);
  const rest = dot < 0 ? '' : expr.slice(dot + 1);
  switch (ns) {
    case 'params': {
      if (dot < 0 || rest === '') return err("'params' needs a path, e.g. ${params.train.lr}");
      if (rest.split('.').some((seg) => seg === '')) return err('empty path segment');
      return ok({ kind: 'params', path: rest });
    }
    case 'item': {
      if (dot < 0) return ok({ kind: 'item', path: [] });
      const path = rest.split('.');
      if (path.some((seg) => seg === '')) return err('empty path segment');
      return ok({ kind: 'item', path });
    }
    case 'stages': {
      if (!rest.endsWith('.out') || rest.length <= 4) return err("stage references have the form ${stages.<id>.out}");
      return ok({ kind: 'stages', stage: rest.slice(0, -4), field: 'out' });
    }
    default:
      return err(`unknown namespace '${ns}' (expected params, item or stages)`);
  }
}

/** How an embedded (not whole-value) reference's value is written into the text. */
export function stringifyValue(v: JsonValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Renders parsed parts: a lone reference returns the resolved value itself
 * (type preserved); otherwise the text with each value stringified. Returns
 * undefined if any reference failed to resolve (the resolver reports why).
 */
export function renderTemplate(
  parts: readonly TemplatePart[],
  resolve: (part: Extract<TemplatePart, { kind: 'ref' }>) => JsonValue | undefined,
): JsonValue | undefined {
  if (parts.length === 1 && parts[0].kind === 'ref') return resolve(parts[0]);
  let out = '';
  let failed = false;
  for (const p of parts) {
    if (p.kind === 'text') {
      out += p.text;
      continue;
    }
    const v = resolve(p);
    if (v === undefined) failed = true;
    else out += stringifyValue(v);
  }
  return failed ? undefined : out;
}
