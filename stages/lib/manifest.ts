/**
 * The ingest manifest format: one accepted image per line of `manifest.jsonl`
 * in the ingest stage's out dir, plus `classes.json`. Types and the reader
 * only; probing and validation live in `stages/ingest.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isAscii } from 'node:buffer';
import type { Split } from './splits.js';

/** File names inside the ingest out dir. */
export const MANIFEST_FILE = 'manifest.jsonl';
export const CLASSES_FILE = 'classes.json';
export const REJECTS_FILE = 'rejects.jsonl';

/** One accepted image. */
export interface ManifestEntry {
  /** Absolute path of the image file (so downstream stages can read it wherever the workspace is). */
  readonly path: string;
  /** Path relative to the source root, for display. */
  readonly rel: string;
  /** sha256 of the file's bytes (hex). */
  readonly sha256: string;
  /** Class name. */
  readonly label: string;
  /** Index of `label` in the sorted class list. */
  readonly labelIndex: number;
  readonly width: number;
  readonly height: number;
  /** sharp's format name, e.g. `jpeg`, `png`. */
  readonly format: string;
  readonly bytes: number;
  /** A split fixed by the source (e.g. Fashion-MNIST's official test set); `partition` honours it. */
  readonly split?: Split;
}

/** Reads the manifest and class list written by `ingest`. */
export function readManifest(dir: string): { entries: ManifestEntry[]; classes: string[] } {
  const classes = JSON.parse(fs.readFileSync(path.join(dir, CLASSES_FILE), 'utf8')) as string[];
  const text = fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8');
  const entries = text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as ManifestEntry);
  return { entries, classes };
}

// ---- Added by the data stages (compatible additions) ----

/** Extra files inside the ingest out dir. */
export const COUNTS_FILE = 'counts.json';
export const CONFLICTS_FILE = 'conflicts.jsonl';
export const DUPLICATES_FILE = 'duplicates.jsonl';

/**
 * Why ingest rejected a file: a probe failure, the same bytes under two labels,
 * or a symbolic link not followed (`follow_symlinks: false`; its target is never read).
 */
export type RejectReason = import('./probe.js').ProbeFailureReason | 'label-conflict' | 'symlink-skipped';

/** One line of `rejects.jsonl`. */
export interface RejectEntry {
  /** Absolute path of the rejected file. */
  readonly path: string;
  /** Path relative to the source root (or as written in the manifest). */
  readonly rel: string;
  readonly reason: RejectReason;
  /** The decoder's message or an explanation. */
  readonly detail: string;
  /** The label the file would have had. */
  readonly label?: string;
  /** sha256 of the file's bytes, when it could be read. */
  readonly sha256?: string;
}

/** One line of `conflicts.jsonl`: identical bytes found under several labels (all copies are rejected). */
export interface ConflictEntry {
  readonly sha256: string;
  readonly labels: readonly string[];
  readonly rels: readonly string[];
}

/** One line of `duplicates.jsonl`: an exact duplicate within one class, collapsed into `keptRel`. */
export interface DuplicateEntry {
  readonly rel: string;
  readonly keptRel: string;
  readonly sha256: string;
  readonly label: string;
}

/** Contents of ingest's `counts.json`. */
export interface IngestCounts {
  /** Files considered after include/exclude (including rejected ones). */
  readonly files: number;
  /** Entries in the manifest. */
  readonly accepted: number;
  /** Rejected files by reason (every reason present, zeros included). */
  readonly rejected: Readonly<Record<RejectReason, number>>;
  /** Exact duplicates within a class that were collapsed. */
  readonly duplicates: number;
  /** Files directly under the source root (no class folder), ignored. */
  readonly unlabelled: number;
  /** Accepted images per class, in class order. */
  readonly classes: Readonly<Record<string, number>>;
}

// ---- Added for resize's per-run cost (issue 3): a lean reader ----

/**
 * The manifest as columns: each line's `sha256` and `labelIndex` picked out of
 * the text, the whole entry parsed only when asked for (`entry`). What
 * `resize` reads: on a re-run it needs only the hash (its cache key) and the
 * label of every image, and a path only for the few it must decode, so 10,000
 * cached images cost no `ManifestEntry` objects (and the garbage of them).
 */
export interface ManifestColumns {
  /** Entries (non-empty lines), in manifest order. */
  readonly count: number;
  /** `sha256` of entry `i`. */
  readonly sha256: readonly string[];
  /** `labelIndex` of entry `i`. */
  readonly labelIndex: Int32Array;
  /** Entry `i` in full (its line parsed now, each call: keep it if you need it twice). */
  entry(i: number): ManifestEntry;
}

const SHA_FIELD = '"sha256":"';
const LABEL_FIELD = '"labelIndex":';

/**
 * Reads the manifest and class list written by `ingest` as `ManifestColumns`:
 * the same entries as `readManifest`, without building them. Each line's two
 * fields are found by their text (`"sha256":"<text>"`, `"labelIndex":<digits>`)
 * where that is unambiguous: the line starts with `{` and ends with `}`, the
 * field occurs once in it, as a key (after `{` or `,`), the line holds no
 * nested object (no `{` after its first character) and the hash has no escape
 * (no backslash); any other line (a path containing `{`, an unusual value) is
 * parsed with `JSON.parse`, so the result equals `readManifest`'s for every
 * well-formed manifest. A line the columns cannot hold (not JSON, no string
 * `sha256`, a `labelIndex` that is not an integer from 0 to 2^31-1) throws,
 * naming the file and line; other fields are not validated.
 */
export function readManifestColumns(dir: string): { columns: ManifestColumns; classes: string[] } {
  const classes = JSON.parse(fs.readFileSync(path.join(dir, CLASSES_FILE), 'utf8')) as string[];
  const raw = fs.readFileSync(path.join(dir, MANIFEST_FILE));
  // ASCII (the usual case): a byte-for-byte copy into a one-byte string, cheaper than UTF-8 decoding (same text).
  const text = isAscii(raw) ? raw.toString('latin1') : raw.toString('utf8');
  return { columns: manifestColumnsOf(text, path.join(dir, MANIFEST_FILE)), classes };
}

/** `ManifestColumns` of a manifest's text (see `readManifestColumns`); `file` names it in errors. */
export function manifestColumnsOf(text: string, file: string = MANIFEST_FILE): ManifestColumns {
  const sha256: string[] = [];
  const labels: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  // Each needle's next occurrence at or after the current line (each found by one walk through the text).
  let sha = text.indexOf(SHA_FIELD);
  let label = text.indexOf(LABEL_FIELD);
  let brace = text.indexOf('{', 1);
  let backslash = text.indexOf('\\'); // usually none at all: then no line pays for this check
  for (let start = 0, line = 1; start < text.length; line++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end > start) {
      if (sha >= 0 && sha < start) sha = text.indexOf(SHA_FIELD, start);
      if (label >= 0 && label < start) label = text.indexOf(LABEL_FIELD, start);
      if (brace >= 0 && brace <= start) brace = text.indexOf('{', start + 1);
      if (backslash >= 0 && backslash < start) backslash = text.indexOf('\\', start);
      const s = sha >= 0 && sha < end ? sha : -1;
      const l = label >= 0 && label < end ? label : -1;
      let h: string | undefined;
      let li = -1;
      // Ends with `}` (before a CR): a line cut short is handed to JSON.parse, which fails on it.
      const closed = text.charCodeAt(text.charCodeAt(end - 1) === 0x0d ? end - 2 : end - 1) === 0x7d;
      if (s >= 0 && l >= 0 && (brace < 0 || brace >= end) && text.charCodeAt(start) === 0x7b && closed) {
        // Once each, as keys of the (flat) object; the next occurrences, past this line, serve the next line.
        sha = text.indexOf(SHA_FIELD, s + 1);
        label = text.indexOf(LABEL_FIELD, l + 1);
        if ((sha < 0 || sha >= end) && (label < 0 || label >= end) && isKeyStart(text.charCodeAt(s - 1)) && isKeyStart(text.charCodeAt(l - 1))) {
          // The value runs to the next quote; without a backslash before it, it is those characters as they are.
          const v = s + SHA_FIELD.length;
          const q = text.indexOf('"', v);
          if (q > 0 && q < end && (backslash < 0 || backslash > q)) h = text.slice(v, q);
          li = digitsAt(text, l + LABEL_FIELD.length);
        }
      }
      if (h === undefined || li < 0) {
        const e = parsedLine(text.slice(start, end), file, line);
        h = e.sha256;
        li = e.labelIndex;
      }
      sha256.push(h);
      labels.push(li);
      starts.push(start);
      ends.push(end);
    }
    start = end + 1;
  }
  return {
    count: sha256.length,
    sha256,
    labelIndex: Int32Array.from(labels),
    entry: (i) => {
      if (!(i >= 0 && i < starts.length)) throw new RangeError(`manifest entry ${i} out of range (${starts.length})`);
      return JSON.parse(text.slice(starts[i], ends[i])) as ManifestEntry;
    },
  };
}

/** A manifest line through `JSON.parse`, with the two columns checked; throws naming `file:line` otherwise. */
function parsedLine(text: string, file: string, line: number): { sha256: string; labelIndex: number } {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch (x) {
    throw new SyntaxError(`${file}:${line}: ${(x as Error).message}`);
  }
  const { sha256, labelIndex } = (typeof e === 'object' && e !== null ? e : {}) as { sha256?: unknown; labelIndex?: unknown };
  if (typeof sha256 !== 'string' || typeof labelIndex !== 'number' || !Number.isInteger(labelIndex) || labelIndex < 0 || labelIndex > 0x7fffffff) {
    throw new Error(`${file}:${line}: not a manifest entry (a string sha256 and a labelIndex from 0 to 2^31-1): ${text.slice(0, 200)}`);
  }
  return { sha256, labelIndex };
}

/** `{` or `,`: what precedes a key's opening quote in compact JSON (an escaped quote follows a backslash). */
function isKeyStart(c: number): boolean {
  return c === 0x7b || c === 0x2c;
}

/** The non-negative integer written at `at` (digits, no leading zero unless it is 0) ending at `,` or `}`, else -1. */
function digitsAt(text: string, at: number): number {
  let v = 0;
  let i = at;
  for (; i < at + 9; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  if (i === at || (i - at > 1 && text.charCodeAt(at) === 0x30)) return -1;
  const next = text.charCodeAt(i);
  return next === 0x2c || next === 0x7d ? v : -1;
}
