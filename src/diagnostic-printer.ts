/**
 * Renders a `Diagnostic` for humans, wireit-style:
 *
 *     pipeline.yaml:12:7: error: unknown key 'dep' in stages.report; did you mean 'deps'?
 *       12 |     dep: [a]
 *          |     ~~~
 *
 * followed by each related location as a `note:`. Pure: it does not read files
 * (the caller passes `readSource`) and does not decide about colour (the
 * caller honours NO_COLOR / TTY and passes `color`).
 */
import path from 'node:path';
import type { Diagnostic, SourceLocation } from './diagnostic.js';

/** Options for `formatDiagnostic`. */
export interface FormatOptions {
  /** Emit ANSI colours. */
  readonly color: boolean;
  /** Returns a file's text (for the source line and line:col); undefined when unreadable. */
  readonly readSource?: (file: string) => string | undefined;
  /** Print file names relative to this directory (e.g. the CLI's cwd) when they are inside it. */
  readonly relativeTo?: string;
}

/** 1-based line and column of `offset` in `text`, plus the line's text. */
export function lineColumn(text: string, offset: number): { line: number; column: number; lineText: string } {
  const o = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < o; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  let lineEnd = text.indexOf('\n', lineStart);
  if (lineEnd < 0) lineEnd = text.length;
  const lineText = text.slice(lineStart, lineEnd).replace(/\r$/, '');
  return { line, column: o - lineStart + 1, lineText };
}

const ansi = { red: '\x1b[31m', yellow: '\x1b[33m', cyan: '\x1b[36m', bold: '\x1b[1m', dim: '\x1b[2m', reset: '\x1b[0m' };

/** The full multi-line rendering of one diagnostic (no trailing newline). */
export function formatDiagnostic(d: Diagnostic, opts: FormatOptions): string {
  const paint = (code: string, s: string): string => (opts.color ? `${code}${s}${ansi.reset}` : s);
  const label = d.severity === 'error' ? paint(ansi.bold + ansi.red, 'error') : paint(ansi.bold + ansi.yellow, 'warning');
  const squiggleColor = d.severity === 'error' ? ansi.red : ansi.yellow;
  const out: string[] = [];
  out.push(...block(d.location, `${label}: ${paint(ansi.bold, d.message)}`, squiggleColor, opts, paint));
  for (const r of d.related ?? []) out.push(...block(r.location, `${paint(ansi.cyan, 'note')}: ${r.message}`, ansi.cyan, opts, paint));
  return out.join('\n');
}

/** Formats several diagnostics separated by blank lines, plus a count line. */
export function formatDiagnostics(ds: readonly Diagnostic[], opts: FormatOptions): string {
  const errors = ds.filter((d) => d.severity === 'error').length;
  const body = ds.map((d) => formatDiagnostic(d, opts)).join('\n\n');
  const summary = errors > 0 ? `${errors} error${errors === 1 ? '' : 's'}` : `${ds.length} warning${ds.length === 1 ? '' : 's'}`;
  return ds.length === 0 ? '' : `${body}\n\n${summary}`;
}

function block(
  loc: SourceLocation | undefined,
  headline: string,
  squiggleColor: string,
  opts: FormatOptions,
  paint: (code: string, s: string) => string,
): string[] {
  if (!loc) return [headline];
  const name = displayName(loc.file, opts.relativeTo);
  const text = opts.readSource?.(loc.file);
  if (text === undefined) return [`${name}: ${headline}`];
  const { line, column, lineText } = lineColumn(text, loc.offset);
  const gutter = String(line);
  const pad = ' '.repeat(gutter.length);
  // Keep tabs in the prefix so the squiggle lines up under tab-indented text.
  const prefix = lineText.slice(0, column - 1).replace(/[^\t]/g, ' ');
  const width = Math.max(1, Math.min(loc.length, lineText.length - (column - 1)));
  return [
    `${paint(ansi.bold, `${name}:${line}:${column}`)}: ${headline}`,
    `  ${paint(ansi.dim, `${gutter} |`)} ${lineText}`,
    `  ${paint(ansi.dim, `${pad} |`)} ${prefix}${paint(squiggleColor, '~'.repeat(width))}`,
  ];
}

function displayName(file: string, relativeTo: string | undefined): string {
  if (!relativeTo) return file;
  const rel = path.relative(relativeTo, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
