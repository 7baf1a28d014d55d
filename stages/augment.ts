/**
 * The `augment` built-in stage: materialises `copies` Keras
 * ImageDataGenerator variants of every TRAIN image of the `resize` shards
 * (split from `partition`), seeded per (seed, image sha256, copy) so output
 * bytes never depend on order or parallelism, and cached per variant in
 * `ctx.items` so a rerun computes only new images' variants.
 *
 * Outputs in `ctx.outDir`: a shard directory (index.json + shard-*.bin) of
 * the variants only, ids `<sha256>#<k>`; `augment.json` (params used,
 * counts); `preview.png` (contact sheet) when there is a train image.
 *
 * It does not augment validation/test images (model stages read those from
 * the resize shards) and does not resize.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { ShardReader, ShardWriter } from './lib/shards.js';
import { readPartition, type PartitionFile } from './lib/splits.js';
import { canonicalConfig, resolveAugmentParams, type AugmentParams, type ResolvedAugmentParams } from './lib/augment/params.js';
import { getRandomTransform, type TransformParams } from './lib/augment/random-transform.js';
import { variantRandom } from './lib/augment/rng.js';
import type { TransformRunner } from './lib/augment/pool.js';
import type { SheetRow } from './lib/augment/contact-sheet.js';
import type { ImageShape } from './lib/augment/warp.js';
import { imageRuntimeFacts } from './lib/runtime-facts.js';

/** The stage version: bumped whenever any output (shards, augment.json, preview.png) can change. */
export const AUGMENT_VERSION = '2';
/** Bumped only when a variant's bytes can change; part of every item cache key (so preview or summary changes keep the cache). */
export const VARIANT_VERSION = '1';
/** File name of the run summary in the out dir. */
export const AUGMENT_SUMMARY_FILE = 'augment.json';
/** File name of the contact sheet in the out dir. */
export const PREVIEW_FILE = 'preview.png';
/** Variants shown per previewed image at most. */
const PREVIEW_MAX_VARIANTS = 8;
/** Rows in the contact sheet at most (keeps it a viewable size with many classes). */
const PREVIEW_MAX_ROWS = 100;
/** Below this many variants the work stays on the main thread (worker start-up costs more). */
const WORKER_THRESHOLD = 24;
/** Variants in flight at once (cache reads, transforms, cache writes). */
const IN_FLIGHT = 16;

/** Contents of `augment.json`. */
export interface AugmentSummary {
  /** Format tag of this file. */
  readonly format: 'pipeline.augment/v1';
  /** `AUGMENT_VERSION` of the stage that wrote it. */
  readonly version: string;
  /** Seed the draws used (`params.seed` or the run seed). */
  readonly seed: number;
  /** Params with Keras defaults applied and Keras' normalisation (zoom as a pair). */
  readonly params: Record<string, unknown>;
  /** Variants per train image (K). */
  readonly copies: number;
  /** Image geometry shared by the input and output shards. */
  readonly geometry: ImageShape;
  /** What the run did. */
  readonly counts: {
    /** Train images augmented. */
    readonly images: number;
    /** Variants written (images × copies). */
    readonly variants: number;
    /** Variants read from the item cache. */
    readonly cacheHits: number;
    /** Variants computed in this run. */
    readonly computed: number;
    /** Resize items that are not train (validation/test), left alone. */
    readonly notTrain: number;
    /** Resize items missing from partition.json (not augmented). */
    readonly unassigned: number;
    /** Train images per class name. */
    readonly perClass: Readonly<Record<string, number>>;
  };
  /** Preview file name, or null when there was no train image. */
  readonly preview: string | null;
  /** The drawn Keras transform parameters of every variant in the preview, row by row, to read next to the sheet. */
  readonly previewTransforms: readonly { readonly source: string; readonly className: string; readonly transforms: readonly TransformParams[] }[];
  /** Worker threads used (0 = main thread only). */
  readonly threads: number;
}

/**
 * The cache key of variant `k` of `source`: every input that can change its
 * bytes. `pixelsSha256` is the digest of the resized source pixels: the
 * source file's sha alone would serve stale variants after a resize change
 * that keeps the geometry (fit, kernel, background).
 */
export function variantCacheKey(resolved: ResolvedAugmentParams, seed: number, source: string, pixelsSha256: string, k: number, shape: ImageShape): string {
  const material = {
    format: 'pipeline.augment.item/v1',
    version: VARIANT_VERSION,
    source,
    pixels: pixelsSha256,
    k,
    seed,
    config: canonicalConfig(resolved.config),
    geometry: [shape.height, shape.width, shape.channels],
  };
  return createHash('sha256').update(JSON.stringify(material)).digest('hex');
}

interface Job {
  readonly item: number;
  readonly source: string;
  readonly label: number;
  readonly k: number;
}

/** Indices of the train items (first occurrence of each source), and how many items were skipped and why. */
function trainItems(reader: ShardReader, partition: PartitionFile): { train: number[]; notTrain: number; unassigned: number } {
  const train: number[] = [];
  const seen = new Set<string>();
  let notTrain = 0;
  let unassigned = 0;
  reader.index.items.forEach((item, i) => {
    const split = partition.assignments[item.source];
    if (split === undefined) unassigned++;
    else if (split !== 'train') notTrain++;
    else if (!seen.has(item.source)) {
      seen.add(item.source);
      train.push(i);
    }
  });
  return { train, notTrain, unassigned };
}

/** Preview rows: per class (in label order), the `perClass` train items with the smallest sha256, stable when images are added. */
function previewSelection(reader: ShardReader, train: readonly number[], perClass: number): number[] {
  const byClass = new Map<number, number[]>();
  for (const i of train) {
    const label = reader.index.items[i]!.label;
    let list = byClass.get(label);
    if (list === undefined) byClass.set(label, (list = []));
    list.push(i);
  }
  const source = (i: number): string => reader.index.items[i]!.source;
  return [...byClass.entries()]
    .sort((a, b) => a[0] - b[0])
    .flatMap(([, list]) => list.sort((a, b) => (source(a) < source(b) ? -1 : source(a) > source(b) ? 1 : 0)).slice(0, perClass));
}

async function runAugment(ctx: StageContext<AugmentParams>): Promise<StageResult> {
  const resolved = resolveAugmentParams(ctx.params);
  const seed = resolved.seed ?? ctx.seed;
  const resizeDir = ctx.inputs['resize'];
  const partitionDir = ctx.inputs['partition'];
  if (resizeDir === undefined || partitionDir === undefined) throw new Error('augment needs the resize and partition inputs');
  const reader = new ShardReader(resizeDir);
  const partition = readPartition(partitionDir);
  const { height, width, channels, classes } = reader.index;
  const shape: ImageShape = { height, width, channels };

  const { train, notTrain, unassigned } = trainItems(reader, partition);
  for (const [name, range] of [['width_shift_range', resolved.config.widthShiftRange], ['height_shift_range', resolved.config.heightShiftRange]] as const) {
    if (range === 1) ctx.log.warn(`${name}: 1 is a whole-pixel range as in Keras (randint(0, 1) = 0), so it never shifts; use 0.99 for a fraction or 2 for +-1 pixel`);
  }
  if (unassigned > 0) ctx.log.warn(`${unassigned} resized image(s) have no assignment in partition.json; they are not augmented`);

  const perClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const i of train) perClass[classes[reader.index.items[i]!.label]!]!++;
  const previewRows = previewSelection(reader, train, resolved.previewPerClass);
  if (previewRows.length > PREVIEW_MAX_ROWS) ctx.log.warn(`preview.png shows the first ${PREVIEW_MAX_ROWS} of ${previewRows.length} rows (classes in label order)`);
  const previewItems = new Map<number, Uint8Array[]>(previewRows.slice(0, PREVIEW_MAX_ROWS).map((i) => [i, []]));

  const jobs: Job[] = [];
  for (const i of train) {
    const item = reader.index.items[i]!;
    for (let k = 0; k < resolved.copies; k++) jobs.push({ item: i, source: item.source, label: item.label, k });
  }

  const maxThreads = Math.min(2, os.availableParallelism());
  // The warp kernels, the worker pool and (below) the sharp contact sheet load here, not at
  // module top level: the stage registry imports this module for metadata only.
  const { inlineRunner, workerRunner } = await import('./lib/augment/pool.js');
  let runner: TransformRunner | undefined;
  const getRunner = (): TransformRunner => {
    if (runner === undefined) {
      runner = inlineRunner();
      if (jobs.length >= WORKER_THRESHOLD && maxThreads > 1) {
        try {
          runner = workerRunner(maxThreads);
        } catch (e) {
          ctx.log.warn(`augment: worker threads unavailable (${(e as Error).message}); computing on the main thread`);
        }
      }
    }
    return runner;
  };

  let cacheHits = 0;
  let computed = 0;
  // Jobs of one image start back to back, so a one-entry memo hashes each source once.
  let digestMemo = { item: -1, digest: '' };
  const pixelsDigest = (item: number): string => {
    if (digestMemo.item !== item) digestMemo = { item, digest: createHash('sha256').update(reader.pixels(item)).digest('hex') };
    return digestMemo.digest;
  };
  const runJob = async (job: Job): Promise<Uint8Array> => {
    const key = variantCacheKey(resolved, seed, job.source, pixelsDigest(job.item), job.k, shape);
    const cached = await ctx.items.get(key);
    if (cached !== undefined && cached.length === reader.index.itemBytes) {
      cacheHits++;
      return cached;
    }
    const params = getRandomTransform(resolved.config, height, width, variantRandom(seed, job.source, job.k));
    const out = await getRunner().run(reader.pixels(job.item), shape, params, resolved.config);
    await ctx.items.put(key, Buffer.from(out.buffer, out.byteOffset, out.length));
    computed++;
    return out;
  };

  const writer = new ShardWriter(ctx.outDir, { height, width, channels, classes });
  const window: { job: Job; result: Promise<Uint8Array> }[] = [];
  const drainOne = async (): Promise<void> => {
    const { job, result } = window.shift()!;
    const pixels = await result;
    writer.add(`${job.source}#${job.k}`, job.source, job.label, pixels);
    const kept = previewItems.get(job.item);
    if (kept !== undefined && job.k < PREVIEW_MAX_VARIANTS) kept.push(pixels);
    if (writer.count % 16 === 0 || writer.count === jobs.length) ctx.log.progress(writer.count, jobs.length, 'augment');
  };
  ctx.log.info(`augment: ${train.length} train image(s) x ${resolved.copies} cop${resolved.copies === 1 ? 'y' : 'ies'}, seed ${seed}; ${notTrain} validation/test image(s) left unaugmented`);
  ctx.log.progress(0, jobs.length, 'augment');
  try {
    for (const job of jobs) {
      ctx.signal.throwIfAborted();
      const result = runJob(job);
      result.catch(() => {}); // awaited in order by drainOne; this only marks it handled meanwhile
      window.push({ job, result });
      if (window.length >= IN_FLIGHT) await drainOne();
    }
    while (window.length > 0) await drainOne();
  } finally {
    await Promise.allSettled(window.map((w) => w.result));
    await runner?.close();
  }
  writer.close();

  let preview: string | null = null;
  if (previewItems.size > 0) {
    const rows: SheetRow[] = [...previewItems.entries()].map(([i, variants]) => ({
      label: classes[reader.index.items[i]!.label] ?? String(reader.index.items[i]!.label),
      tiles: [reader.pixels(i), ...variants],
    }));
    const { renderContactSheet } = await import('./lib/augment/contact-sheet.js');
    const { png } = await renderContactSheet(shape, rows);
    await fs.writeFile(path.join(ctx.outDir, PREVIEW_FILE), png);
    preview = PREVIEW_FILE;
  }

  const summary: AugmentSummary = {
    format: 'pipeline.augment/v1',
    version: AUGMENT_VERSION,
    seed,
    params: { ...canonicalConfig(resolved.config), copies: resolved.copies, seed: resolved.seed ?? null, preview_per_class: resolved.previewPerClass },
    copies: resolved.copies,
    geometry: shape,
    counts: { images: train.length, variants: writer.count, cacheHits, computed, notTrain, unassigned, perClass },
    preview,
    previewTransforms: [...previewItems.entries()].map(([i, variants]) => {
      const item = reader.index.items[i]!;
      return {
        source: item.source,
        className: classes[item.label] ?? String(item.label),
        transforms: variants.map((_, k) => getRandomTransform(resolved.config, height, width, variantRandom(seed, item.source, k))),
      };
    }),
    threads: runner?.threads ?? 0,
  };
  await fs.writeFile(path.join(ctx.outDir, AUGMENT_SUMMARY_FILE), JSON.stringify(summary, null, 2));
  return {
    metrics: { images: train.length, variants: writer.count, cache_hits: cacheHits, computed },
    summary: `${writer.count} variants of ${train.length} train images (${cacheHits} cached, ${computed} computed)`,
  };
}

/** The `augment` stage definition. */
export const augmentStage: BuiltinStage<AugmentParams> = {
  name: 'augment',
  version: AUGMENT_VERSION,
  description: 'Keras ImageDataGenerator augmentation of the train split, K seeded variants per image, cached per image',
  runtimeFacts: () => imageRuntimeFacts(),
  inputs: ['resize', 'partition'],
  run: runAugment,
};
