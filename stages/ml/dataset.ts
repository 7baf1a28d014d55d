/**
 * Training data for the model stages: pixel sets built from a resize shard
 * directory + partition.json (+ the augment stage's train-only variants), the
 * feature matrices the `features` stage writes, and a seeded PRNG for
 * shuffling. Batches come out as plain typed arrays; the caller makes tensors.
 *
 * This module does not preprocess pixels for a backbone and does not touch tfjs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ShardReader } from '../lib/shards.js';
import { SPLITS, type Split, type PartitionFile } from '../lib/splits.js';

/** Seeded PRNG (mulberry32): deterministic shuffles and dropout seeds; never Math.random. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A permutation of 0..n-1 determined by `seed` (Fisher–Yates). */
export function shuffledIndices(n: number, seed: number): Int32Array {
  const rnd = mulberry32(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** A labelled set of samples that can be gathered into batches. */
export interface SampleSet {
  readonly size: number;
  /** Label index per sample. */
  readonly labels: Int32Array;
  /** Values per sample (pixels h*w*c, or the feature dimension). */
  readonly sampleLength: number;
  /** Copies samples `indices` into one contiguous float32 batch (pixels stay in 0..255). */
  gather(indices: ArrayLike<number>): Float32Array;
}

/** Pixel samples from one or more shard directories. */
export interface PixelSet extends SampleSet {
  /** [height, width, channels]. */
  readonly shape: readonly [number, number, number];
  /** Item id per sample (source sha256, or `<sha>#k` for augmented variants). */
  readonly ids: readonly string[];
  /** uint8 pixels of one sample. */
  pixels(i: number): Uint8Array;
}

/** The three splits as pixel sets, plus the class list. */
export interface PixelSplits {
  readonly classes: readonly string[];
  readonly sets: Readonly<Record<Split, PixelSet>>;
}

/**
 * Builds the splits from a resize directory and a partition: each resized
 * image goes to its assigned split; augmented variants (from `augmentDir`)
 * join the train split. Images missing from the partition are ignored.
 */
export function pixelSplits(resizeDir: string, partition: PartitionFile, augmentDir?: string): PixelSplits {
  const base = new ShardReader(resizeDir);
  const readers = [base];
  const refs: Record<Split, { r: number; i: number }[]> = { train: [], validation: [], test: [] };
  base.index.items.forEach((item, i) => {
    const split = partition.assignments[item.source];
    if (split !== undefined) refs[split].push({ r: 0, i });
  });
  if (augmentDir !== undefined) {
    const aug = new ShardReader(augmentDir);
    const { height, width, channels } = base.index;
    if (aug.index.height !== height || aug.index.width !== width || aug.index.channels !== channels) {
      throw new Error(`augment output is ${aug.index.height}x${aug.index.width}x${aug.index.channels} but resize output is ${height}x${width}x${channels}`);
    }
    readers.push(aug);
    aug.index.items.forEach((item, i) => {
      if (partition.assignments[item.source] === 'train') refs.train.push({ r: 1, i });
    });
  }
  const { height, width, channels } = base.index;
  const len = height * width * channels;
  const make = (list: { r: number; i: number }[]): PixelSet => ({
    size: list.length,
    shape: [height, width, channels],
    sampleLength: len,
    labels: Int32Array.from(list, ({ r, i }) => readers[r]!.index.items[i]!.label),
    ids: list.map(({ r, i }) => readers[r]!.index.items[i]!.id),
    pixels: (k) => readers[list[k]!.r]!.pixels(list[k]!.i),
    gather(indices) {
      const out = new Float32Array(indices.length * len);
      for (let k = 0; k < indices.length; k++) {
        const { r, i } = list[indices[k]!]!;
        const px = readers[r]!.pixels(i);
        const o = k * len;
        for (let j = 0; j < len; j++) out[o + j] = px[j]!;
      }
      return out;
    },
  });
  return {
    classes: base.index.classes,
    sets: { train: make(refs.train), validation: make(refs.validation), test: make(refs.test) },
  };
}

/** Contents of `features.json` in a features output directory. */
export interface FeaturesIndex {
  readonly format: 'pipeline.features/v1';
  readonly dim: number;
  readonly classes: readonly string[];
  /** Per split: sample count and item ids, in row order of `<split>.f32` / `<split>.labels`. */
  readonly splits: Readonly<Record<Split, { readonly count: number; readonly ids: readonly string[] }>>;
  /** What produced them (backbone, weights hash, preprocessing, input size, pooling). */
  readonly source: Readonly<Record<string, unknown>>;
}

/** File names in a features directory. */
export const FEATURES_INDEX = 'features.json';
export const featureFile = (split: Split): string => `${split}.f32`;
export const labelFile = (split: Split): string => `${split}.labels`;

/** A feature matrix as a sample set. */
export interface FeatureSet extends SampleSet {
  readonly ids: readonly string[];
  readonly data: Float32Array;
}

/** Reads the features stage's output. */
export function readFeatures(dir: string): { index: FeaturesIndex; sets: Record<Split, FeatureSet> } {
  const index = JSON.parse(fs.readFileSync(path.join(dir, FEATURES_INDEX), 'utf8')) as FeaturesIndex;
  if (index.format !== 'pipeline.features/v1') throw new Error(`${dir}: not a features output`);
  const sets = {} as Record<Split, FeatureSet>;
  for (const split of SPLITS) {
    const buf = fs.readFileSync(path.join(dir, featureFile(split)));
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const lb = fs.readFileSync(path.join(dir, labelFile(split)));
    const labels = new Int32Array(lb.buffer.slice(lb.byteOffset, lb.byteOffset + lb.byteLength));
    const dim = index.dim;
    sets[split] = {
      size: labels.length,
      labels,
      sampleLength: dim,
      ids: index.splits[split].ids,
      data,
      gather(indices) {
        const out = new Float32Array(indices.length * dim);
        for (let k = 0; k < indices.length; k++) out.set(data.subarray(indices[k]! * dim, (indices[k]! + 1) * dim), k * dim);
        return out;
      },
    };
  }
  return { index, sets };
}
