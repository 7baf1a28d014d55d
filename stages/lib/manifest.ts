/**
 * The ingest manifest format: one accepted image per line of `manifest.jsonl`
 * in the ingest stage's out dir, plus `classes.json`. Types and the reader
 * only; probing and validation live in `stages/ingest.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
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
