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
