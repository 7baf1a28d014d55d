/**
 * Converts the Fashion-MNIST IDX files into class-folder PNGs plus a
 * `manifest.csv` (`path,label,split`) that carries the official train/test
 * split into `ingest`. Used by `scripts/fashion-mnist-to-png.mjs` (a `cmd:`
 * stage) and the data tests.
 *
 * Output layout: `<out>/<class>/<split>-<index>.png` (index = position in the
 * IDX file, 5 digits), 28x28 8-bit grayscale PNGs written by sharp.
 *
 * Does not download anything and does not ingest.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import pLimit from 'p-limit';
import { err, ok, type Result } from '../../src/result.js';
import { FASHION_MNIST_CLASSES, readIdxImageSet, type IdxImageSet } from './idx.js';

/** The four files of the official distribution, by split. */
export const FASHION_MNIST_FILES = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
} as const;

/** What to convert. */
export interface ExportOptions {
  /** Directory holding the four `.gz` IDX files. */
  readonly src: string;
  /** Output directory (created). */
  readonly out: string;
  /** Convert at most the first N training images (0 skips the training set). */
  readonly limitTrain?: number;
  /** Convert at most the first N test images (0 skips the test set). */
  readonly limitTest?: number;
  /** Keep at most N images per class and split (the first ones in file order): a balanced sample. */
  readonly perClass?: number;
  /** Write `manifest.csv` (default true). */
  readonly manifest?: boolean;
  /** PNG encodes in flight (default 8: file creation, not encoding, is the bottleneck). */
  readonly concurrency?: number;
  /** Called every few hundred images. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What was written. */
export interface ExportSummary {
  readonly train: number;
  readonly test: number;
  /** Images per class name over both splits. */
  readonly perClass: Readonly<Record<string, number>>;
  /** Absolute path of manifest.csv, when written. */
  readonly manifest?: string;
}

/** Reads the IDX files and writes the PNGs and manifest (see module doc). */
export async function exportFashionMnist(opts: ExportOptions): Promise<Result<ExportSummary, string>> {
  const picks: { split: 'train' | 'test'; set: IdxImageSet; indices: number[] }[] = [];
  for (const split of ['train', 'test'] as const) {
    const limit = split === 'train' ? opts.limitTrain : opts.limitTest;
    if (limit === 0) continue;
    const files = FASHION_MNIST_FILES[split];
    const set = await readIdxImageSet(path.join(opts.src, files.images), path.join(opts.src, files.labels), FASHION_MNIST_CLASSES.length);
    if (!set.ok) return err(set.error);
    const taken = new Array<number>(FASHION_MNIST_CLASSES.length).fill(0);
    const indices: number[] = [];
    const max = Math.min(limit ?? Infinity, set.value.count);
    for (let i = 0; i < set.value.count && indices.length < max; i++) {
      const label = set.value.labels[i]!;
      if (opts.perClass !== undefined && taken[label]! >= opts.perClass) continue;
      taken[label]!++;
      indices.push(i);
    }
    picks.push({ split, set: set.value, indices });
  }

  await fs.mkdir(opts.out, { recursive: true });
  for (const c of FASHION_MNIST_CLASSES) await fs.mkdir(path.join(opts.out, c), { recursive: true });
  const total = picks.reduce((a, p) => a + p.indices.length, 0);
  const limit = pLimit(opts.concurrency ?? 8);
  const rows: string[] = [];
  const perClass: Record<string, number> = Object.fromEntries(FASHION_MNIST_CLASSES.map((c) => [c, 0]));
  let done = 0;
  const jobs: Promise<void>[] = [];
  for (const { split, set, indices } of picks) {
    const itemBytes = set.height * set.width;
    for (const i of indices) {
      const cls = FASHION_MNIST_CLASSES[set.labels[i]!]!;
      const rel = `${cls}/${split}-${String(i).padStart(5, '0')}.png`;
      rows.push(`${rel},${cls},${split}`);
      perClass[cls]!++;
      const px = set.pixels.subarray(i * itemBytes, (i + 1) * itemBytes);
      jobs.push(
        limit(async () => {
          await sharp(px, { raw: { width: set.width, height: set.height, channels: 1 } })
            .toColourspace('b-w')
            .png({ compressionLevel: 9, adaptiveFiltering: false })
            .toFile(path.join(opts.out, rel));
          done++;
          if (opts.onProgress && (done % 500 === 0 || done === total)) opts.onProgress(done, total);
        }),
      );
    }
  }
  await Promise.all(jobs);
  let manifest: string | undefined;
  if (opts.manifest !== false) {
    manifest = path.resolve(opts.out, 'manifest.csv');
    await fs.writeFile(manifest, ['path,label,split', ...rows, ''].join('\n'));
  }
  const count = (s: string) => picks.find((p) => p.split === s)?.indices.length ?? 0;
  return ok({ train: count('train'), test: count('test'), perClass, ...(manifest ? { manifest } : {}) });
}
