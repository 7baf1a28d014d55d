/**
 * Diagnostics: user-facing problems located in a file. The types live here;
 * rendering (`file:line:col`, source line, squiggle) lives in
 * `src/diagnostic-printer.ts`. This module does no I/O.
 */

/** A span of a source file, as a byte-free character offset and length. */
export interface SourceLocation {
  /** Absolute path of the file the span is in. */
  readonly file: string;
  /** Character offset of the span's first character (0-based). */
  readonly offset: number;
  /** Number of characters the squiggle covers (at least 1 when printed). */
  readonly length: number;
}

/** Machine-readable reason for a diagnostic; kebab-case and stable (tests and `--json` consumers key on it). */
export type DiagnosticReason =
  | 'yaml-syntax'
  | 'schema'
  | 'unknown-key'
  | 'missing-key'
  | 'invalid-value'
  | 'unknown-stage'
  | 'unknown-builtin'
  | 'unknown-output'
  | 'unknown-param'
  | 'bad-reference'
  | 'cycle'
  | 'duplicate-stage'
  | 'duplicate-output'
  | 'missing-input'
  | 'file-not-found'
  | 'invalid-image'
  | 'stage-failed';

/** One problem, with a primary location and optional related locations (e.g. each edge of a cycle). */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  readonly reason: DiagnosticReason;
  /** One-line, human-readable message; does not repeat the location. */
  readonly message: string;
  /** Where the problem is; absent only for problems that have no file (rare). */
  readonly location?: SourceLocation;
  /** Further locations with their own short messages (cycle edges, the first definition of a duplicate). */
  readonly related?: readonly { readonly message: string; readonly location: SourceLocation }[];
}
