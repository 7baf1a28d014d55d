/**
 * The partition format: which split each image belongs to. Written by
 * `partition` as `partition.json`, read by `augment` and the model stages.
 * Types and the reader only; the splitting logic lives in `stages/partition.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The three splits, in their canonical order. */
export const SPLITS = ['train', 'validation', 'test'] as const;
/** One split. */
export type Split = (typeof SPLITS)[number];

/** File name of the partition output inside the partition stage's out dir. */
export const PARTITION_FILE = 'partition.json';

/** Contents of `partition.json`. */
export interface PartitionFile {
  readonly format: 'pipeline.partition/v1';
  /** Salt mixed into the content hash; changing it reshuffles deterministically. */
  readonly salt: string;
  /** Target ratios for train, validation, test. */
  readonly ratios: readonly [number, number, number];
  /** Image sha256 → split. Every image of the ingest manifest appears exactly once. */
  readonly assignments: Readonly<Record<string, Split>>;
  /** Split → class name → count. */
  readonly counts: Readonly<Record<Split, Readonly<Record<string, number>>>>;
}

/** Reads `partition.json` from a partition stage's out dir. */
export function readPartition(dir: string): PartitionFile {
  const file = JSON.parse(fs.readFileSync(path.join(dir, PARTITION_FILE), 'utf8')) as PartitionFile;
  if (file.format !== 'pipeline.partition/v1') throw new Error(`${dir}: not a partition output`);
  return file;
}
