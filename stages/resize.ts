/**
 * The `resize` stage: decodes every ingested image once and writes its resized
 * uint8 pixels as an image shard directory (lib/shards.ts) at the root of the
 * stage's out dir, in manifest order, all splits: one per-image pack file per
 * image (`px/<key[0:2]>/<key>.px`) plus `index.json`. Downstream stages read
 * pixels with `new ShardReader(ctx.inputs.resize)`.
 *
 * Per-image incremental: each image's pixels are cached in `ctx.items` under
 * key = sha256(stage version, libvips version, image sha256, every resize
 * param), so a run after adding 10 images to 10,000 decodes only those 10, and
 * changing `size` (or any param that changes pixels) decodes everything again.
 * A cached image is not even read: under the engine, the output names its
 * entry (`ItemCache.refer`: one stat, nothing written; the entry's bytes are
 * the pack layout) and the engine's store takes the entry's inode as the
 * output file, recognising it next time without re-hashing; elsewhere the
 * entry is hard-linked into the out dir (`ItemCache.link`). Either way the
 * run writes only the new images' bytes plus the index. Decodes run in
 * parallel (a bounded window, so memory stays flat) and report progress.
 *
 * A re-run's fixed cost is kept per image small: the manifest is read as
 * columns (hash and label; a line is parsed only for an image to decode), and
 * under the engine every image is asked of the cache in one synchronous pass
 * in pack-path order before the misses are decoded.
 *
 * The pixel work itself is `resizeImage` (lib/image-io.ts), shared with `predict`.
 * Does not split, label-check, augment or normalise (pixels stay 0..255).
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import crypto, { createHash } from 'node:crypto';
import { loadSharp } from './lib/lazy-modules.js';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { readManifestColumns } from './lib/manifest.js';
import { ShardWriter, packBytes, packFileOf, PACK_FILE_EXTRA, PACK_KEY_AT } from './lib/shards.js';
import { DataInputError } from './lib/data-error.js';
import { DEFAULT_MAX_PIXELS, type ProbeFailure } from './lib/probe.js';
import { resizeImage, type Fit, type Kernel, type ResizeOptions } from './lib/image-io.js';
import { PutQueue } from './lib/put-queue.js';
import type { LimitFunction } from 'p-limit';
import { err, ok, type Result } from '../src/result.js';
import { imageRuntimeFacts } from './lib/runtime-facts.js';
import { warmUpJpeg } from './lib/warm-up.js';
import { formatCount } from './lib/format-count.js';

export { resizeImage, type ResizeOptions } from './lib/image-io.js';

/** `resize` params (`with:` keys). */
export interface ResizeParams {
  /** Output `[height, width]` in pixels. */
  readonly size: readonly [number, number];
  readonly fit: Fit;
  readonly kernel: Kernel;
  readonly channels: 1 | 3;
  /** `#rgb` / `#rrggbb`: alpha is flattened onto it; `contain` pads with it. */
  readonly background: string;
  /** Source images with more pixels are refused (ingest already rejects them). */
  readonly max_pixels: number;
}

/** Defaults, identical to `schemas/stages/resize.json` (a test checks). */
export const RESIZE_DEFAULTS: ResizeParams = {
  size: [224, 224],
  fit: 'cover',
  kernel: 'lanczos3',
  channels: 3,
  background: '#000000',
  max_pixels: DEFAULT_MAX_PIXELS,
};

/** Applies defaults to possibly partial params. */
export function resizeParams(p: Partial<ResizeParams>): ResizeParams {
  return {
    size: p.size ?? RESIZE_DEFAULTS.size,
    fit: p.fit ?? RESIZE_DEFAULTS.fit,
    kernel: p.kernel ?? RESIZE_DEFAULTS.kernel,
    channels: p.channels ?? RESIZE_DEFAULTS.channels,
    background: p.background ?? RESIZE_DEFAULTS.background,
    max_pixels: p.max_pixels ?? RESIZE_DEFAULTS.max_pixels,
  };
}

/** The `ResizeOptions` for `resizeImage` that these params mean (what `predict` should use for a model trained on them). */
export function resizeOptionsOf(p: ResizeParams): ResizeOptions {
  return { size: p.size, fit: p.fit, kernel: p.kernel, channels: p.channels, background: p.background, maxPixels: p.max_pixels };
}

/**
 * Images decoded at once. Each sharp call runs on one libuv thread
 * (sharp.concurrency() is 1 here) and the pool has 4 (UV_THREADPOOL_SIZE), so
 * 2 more than that wait in the pool's queue: a thread that finishes one image
 * takes the next at once instead of waiting for the main thread (busy hashing
 * and writing the previous one's entry) to hand it over, and the main thread
 * is woken less often. Measured on 2,000 JPEGs 500x375 -> 224x224 (ABBA, 8
 * rounds, load 9-12): main-thread CPU per image 0.63 -> 0.59 ms (cache on
 * ext4), 0.75 -> 0.67 ms (on tmpfs) with 4 -> 6 in flight; 8 was no better
 * than 6 and holds more memory. See bench/data.bench.ts.
 */
export const RESIZE_CONCURRENCY = 6;

/**
 * Cache writes in flight beside the decodes (bounded so pixels waiting to be
 * written cannot pile up). With an fsyncing item cache each put holds a libuv
 * thread for milliseconds and halves throughput whatever this is (measured 2
 * vs 32); see `ItemCacheOptions.fsync`.
 */
export const PUT_CONCURRENCY = 8;

/**
 * Version of the pixel computation, part of every per-image cache key. Bumped
 * only when the pixels of an image can change; the stage `version` also covers
 * the output layout (2: per-image packs), which leaves cached pixels valid.
 */
export const PIXELS_VERSION = '1';

/** `crypto.hash` (Node >= 20.12): one-shot, no Hash object per image. */
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array | string, enc: 'hex') => string }).hash;

/** Hex sha256 of bytes, or of a string's UTF-8 bytes. */
function sha256Hex(data: Uint8Array | string): string {
  return oneShot === undefined ? createHash('sha256').update(data).digest('hex') : oneShot('sha256', data, 'hex');
}

/** The per-image cache key: everything that determines the pixels. */
export function resizeCacheKey(sha256: string, p: ResizeParams, version: string): string {
  return resizeKeyer(p, version)(sha256);
}

/**
 * `resizeCacheKey` for one run's params: the key is the sha256 of a canonical
 * JSON object in which only the image hash varies, so the text around it is
 * built once and a key costs one concatenation and one small hash (every
 * cached image's key is computed on every run). Same bytes, same keys.
 */
export function resizeKeyer(p: ResizeParams, version: string): (sha256: string) => string {
  const canonical = (sha256: string): string =>
    JSON.stringify({
      stage: 'resize',
      version,
      vips: loadSharp().versions.vips,
      sha256,
      size: [p.size[0], p.size[1]],
      fit: p.fit,
      kernel: p.kernel,
      channels: p.channels,
      background: p.background.toLowerCase(),
    });
  // A placeholder no param can contain (JSON escapes NUL), located once.
  const mark = JSON.stringify('\u0000');
  const text = canonical('\u0000');
  const at = text.indexOf(mark);
  if (at < 0 || text.indexOf(mark, at + 1) >= 0) throw new Error('resize: cannot locate the image hash in the cache key text');
  const head = text.slice(0, at);
  const tail = text.slice(at + mark.length);
  // A string hashes as its UTF-8 bytes, exactly as Buffer.from(canonical) did.
  return (sha256) => sha256Hex(head + JSON.stringify(sha256) + tail);
}

export const resizeStage: BuiltinStage<ResizeParams> = {
  name: 'resize',
  version: '2',
  description: 'Decodes and resizes every image once (EXIF orientation, sRGB, alpha flattening) into per-image uint8 HWC packs with a shard index; cached per image',
  runtimeFacts: () => imageRuntimeFacts(),
  inputs: ['ingest'],
  // A host started ahead of resize (while ingest runs) loads sharp and resizes a tiny JPEG once, so libvips'
  // first-use set-up is off resize's clock.
  prepare: async () => {
    await import('p-limit'); // a dynamic import costs ~9 ms the first time: off the clock here
    const r = await resizeImage(warmUpJpeg(), resizeOptionsOf(RESIZE_DEFAULTS));
    if (!r.ok) throw new Error(`resize prepare: the warm-up JPEG did not resize (${r.error.reason}: ${r.error.detail})`); // a bug
  },
  run: (ctx) => runResize(ctx),
};

async function runResize(ctx: StageContext<ResizeParams>): Promise<StageResult> {
  const params = resizeParams(ctx.params);
  const [height, width] = params.size;
  const ingestDir = ctx.inputs['ingest'];
  if (ingestDir === undefined) throw new Error('resize: input slot "ingest" is not mapped');
  // Columns, not entries: a cached image needs only its hash and label; the few decoded parse their line for a path.
  const { columns: manifest, classes } = readManifestColumns(ingestDir);
  const itemBytes = height * width * params.channels;
  const opts = resizeOptionsOf(params);

  // The images in manifest order, each hash once (its first line): `keys[u]`, from manifest line `lines[u]`, its
  // pack file `rels[u]`. Distinct hashes have distinct keys, and the sort below puts equal keys side by side, so
  // it also finds duplicates (ingest collapses them; a manifest with some takes the slower path).
  const keyOf = resizeKeyer(params, PIXELS_VERSION);
  let keys: string[] = new Array<string>(manifest.count);
  for (let i = 0; i < manifest.count; i++) keys[i] = keyOf(manifest.sha256[i]!);
  let lines: number[] | undefined; // undefined: u is the manifest line
  let rels = keys.map(packFileOf);
  // Pack-file path order (= key order: `px/<key[0:2]>/<key>.px`).
  const sorted = rels.slice().sort();
  let dup = false;
  for (let j = 1; j < sorted.length && !dup; j++) dup = sorted[j] === sorted[j - 1];
  if (dup) {
    const seen = new Set<string>();
    const keep: number[] = [];
    for (let i = 0; i < keys.length; i++) if (!seen.has(keys[i]!)) (seen.add(keys[i]!), keep.push(i));
    keys = keep.map((i) => keys[i]!);
    rels = keep.map((i) => rels[i]!);
    lines = keep;
  }
  const lineOf = (u: number): number => (lines === undefined ? u : lines[u]!);
  const total = keys.length;
  let hits = 0;
  const refer = ctx.items.refer?.bind(ctx.items);
  // No fsync: the engine's store hashes and fsyncs the out dir when it keeps it.
  // fit/kernel/background go into index.json (ShardIndex.resize): build-model and train record them in the model's
  // spec.json so `predict` resizes new images exactly as the training images were.
  const writer = new ShardWriter(ctx.outDir, { height, width, channels: params.channels, classes, fsync: false, resize: { fit: params.fit, kernel: params.kernel, background: params.background } });
  // p-limit: loaded by `prepare` in a host started ahead; a run with nothing to decode does not load it at all.
  let limiter: Promise<LimitFunction> | undefined;
  let resized = 0;
  const puts = new PutQueue(ctx.items, PUT_CONCURRENCY);
  const madeDirs = new Set<string>();
  /** `rel` (a pack file, relative to the out dir), its directory created. */
  const packOf = (rel: string): string => {
    const dir = path.join(ctx.outDir, path.dirname(rel));
    if (!madeDirs.has(dir)) {
      fss.mkdirSync(dir, { recursive: true });
      madeDirs.add(dir);
    }
    return rel;
  };
  const link = ctx.items.link?.bind(ctx.items);
  /** Puts a cached item's pack at `rel`: named by reference when the engine offers it, else a hard link to the entry, else a copy of its bytes. */
  const placeCached = async (key: string, rel: string): Promise<boolean> => {
    if (refer !== undefined) return refer(key, rel, itemBytes);
    const dest = path.join(ctx.outDir, packOf(rel));
    if (link !== undefined) return link(key, dest, itemBytes);
    const cached = await ctx.items.get(key);
    if (cached === undefined || cached.length !== itemBytes) return false;
    await fs.writeFile(dest, packBytes(cached), { mode: 0o444 });
    return true;
  };

  /** Places image `u` from the cache (when `refer` has not already) or decodes it, caches it and places it. */
  const one = async (u: number): Promise<Result<string, ProbeFailure>> => {
    const key = keys[u]!;
    const rel = rels[u]!;
    // With `refer`, the pass below has already asked the cache about this image: it must be decoded.
    if (refer === undefined && (await placeCached(key, rel))) {
      hits++;
      return ok(rel);
    }
    const e = manifest.entry(lineOf(u));
    let buf: Buffer;
    try {
      // Synchronous: a source image is tens of KB from the page cache; cheaper in CPU than an async read's round trips.
      buf = fss.readFileSync(e.path);
    } catch (x) {
      return err({ reason: 'unreadable', detail: `cannot read file (${(x as NodeJS.ErrnoException).code ?? String(x)})` });
    }
    if (sha256Hex(buf) !== e.sha256) {
      return err({ reason: 'unreadable', detail: 'file changed since ingest ran; run the pipeline again' });
    }
    const limit = await (limiter ??= import('p-limit').then((m) => m.default(RESIZE_CONCURRENCY)));
    const r = await limit(() => resizeImage(buf, opts));
    if (!r.ok) return r;
    resized++;
    const px = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    if (px.length !== itemBytes) throw new Error(`resize: ${e.path} gave ${px.length} bytes, expected ${itemBytes}`);
    if (refer !== undefined || link !== undefined) {
      // Cache first, then name or link the entry: the output shares its bytes (no second write).
      await ctx.items.put(key, px);
      if (await placeCached(key, rel)) return ok(rel);
    } else {
      await puts.add(key, px);
    }
    await fs.writeFile(path.join(ctx.outDir, packOf(rel)), packBytes(px), { mode: 0o444 });
    return ok(rel);
  };

  // Images to place (`todo`, in manifest order) go through a window of in-flight items, so memory stays flat;
  // each one finishing launches the next. Cache reads run across the whole window; only decodes are limited to
  // RESIZE_CONCURRENCY.
  const window = 32;
  const todo: number[] = [];
  const failed: number[] = [];
  const launched: Promise<void>[] = [];
  let inflight = 0;
  /** Images placed by the refer pass (all of them cached), and images `todo` finished so far. */
  let referred = 0;
  let done = 0;
  const pump = (): void => {
    while (inflight < window && launched.length < todo.length && !ctx.signal.aborted) {
      const u = todo[launched.length]!;
      inflight++;
      const p = one(u).then((r) => {
        inflight--;
        done++;
        if (!r.ok) failed.push(u);
        if (done % 64 === 0) ctx.log.progress(referred + done, total, 'resize');
        pump();
      });
      p.catch(() => {}); // awaited below; this only keeps a rejection from being "unhandled" meanwhile
      launched.push(p);
    }
  };
  if (refer !== undefined) {
    // Every image asked of the cache in one synchronous pass (a memo lookup or a stat each; no promise for a cached
    // one), in pack-file path order: the stage host sorts the refs by path, and sorted input costs it one pass
    // instead of a full sort. The misses are decoded after it, in manifest order. (Starting each miss's decode
    // during the pass, to overlap the two, was measured no faster on 2 busy cores and cost ~15 ms more CPU.)
    const missed = new Set<string>();
    for (let j = 0; j < sorted.length; j++) {
      const rel = sorted[j]!;
      if (j > 0 && rel === sorted[j - 1]) continue;
      if (refer(rel.slice(PACK_KEY_AT, PACK_KEY_AT + rel.length - PACK_FILE_EXTRA), rel, itemBytes)) hits++;
      else missed.add(rel);
    }
    if (missed.size > 0) for (let u = 0; u < total; u++) if (missed.has(rels[u]!)) todo.push(u);
    referred = hits;
    ctx.log.progress(referred, total, 'resize');
    pump();
  } else {
    for (let u = 0; u < total; u++) todo.push(u);
    pump();
  }
  // Launched grows while we wait (each finish launches the next).
  for (let k = 0; k < launched.length; k++) {
    if (ctx.signal.aborted) {
      await Promise.allSettled(launched);
      throw ctx.signal.reason ?? new Error('aborted');
    }
    await launched[k];
  }
  if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error('aborted');
  ctx.log.progress(total, total, 'resize');
  if (failed.length > 0) {
    // libvips error messages are process-global: redo the failures one at a time for exact reasons.
    const failures: string[] = [];
    for (const u of failed.sort((x, y) => x - y)) {
      const r = await one(u);
      failures.push(`  ${manifest.entry(lineOf(u)).path}: ${r.ok ? 'failed once, then succeeded: run again' : `${r.error.reason} (${r.error.detail})`}`);
    }
    throw new DataInputError(`resize: ${failures.length} image(s) accepted by ingest could not be resized:\n${failures.slice(0, 20).join('\n')}`);
  }
  await puts.drain();
  for (let u = 0; u < total; u++) {
    const i = lineOf(u);
    const h = manifest.sha256[i]!;
    writer.addPack(h, h, manifest.labelIndex[i]!, rels[u]!, { sizeChecked: true });
  }
  writer.close();
  return {
    metrics: { images: total, resized, cache_hits: hits },
    summary: `${formatCount(total)} images → ${height}x${width}x${params.channels} (${formatCount(resized)} resized, ${formatCount(hits)} from cache)`,
  };
}
