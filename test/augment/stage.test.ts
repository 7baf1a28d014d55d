import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { stageRig, type StageRig } from '../helpers/stage-context.js';
import { ShardReader, ShardWriter } from '../../stages/lib/shards.js';
import { PARTITION_FILE, type PartitionFile, type Split } from '../../stages/lib/splits.js';
import { augmentStage, type AugmentSummary } from '../../stages/augment.js';
import type { AugmentParams } from '../../stages/lib/augment/params.js';
import { resolveAugmentParams } from '../../stages/lib/augment/params.js';
import { getRandomTransform } from '../../stages/lib/augment/random-transform.js';
import { variantRandom } from '../../stages/lib/augment/rng.js';
import { applyTransform } from '../../stages/lib/augment/apply.js';
import { sheetGeometry } from '../../stages/lib/augment/contact-sheet.js';

const H = 16;
const W = 16;
const CLASSES = ['cat', 'dog'];
const RECIPE: AugmentParams = {
  rotation_range: 15,
  width_shift_range: 0.15,
  height_shift_range: 0.15,
  shear_range: 0.15,
  zoom_range: 0.15,
  channel_shift_range: 1,
  horizontal_flip: true,
};

interface FakeImage {
  readonly sha: string;
  readonly label: number;
  readonly split: Split;
  readonly pixels: Uint8Array;
}

function fakeImage(name: string, label: number, split: Split, channels: 1 | 3 = 3): FakeImage {
  const sha = createHash('sha256').update(name).digest('hex');
  const seed = parseInt(sha.slice(0, 6), 16);
  const pixels = Uint8Array.from({ length: H * W * channels }, (_, i) => {
    const p = Math.floor(i / channels);
    const r = Math.floor(p / W);
    const c = p % W;
    return (seed + r * 13 + c * 7 + (i % channels) * 50 + ((r * c) % 5) * 9) & 255;
  });
  return { sha, label, split, pixels };
}

/** Images: per class 5 train, 2 validation, 1 test. */
function dataset(channels: 1 | 3 = 3): FakeImage[] {
  const out: FakeImage[] = [];
  CLASSES.forEach((cls, label) => {
    for (let i = 0; i < 8; i++) out.push(fakeImage(`${cls}-${i}-${channels}`, label, i < 5 ? 'train' : i < 7 ? 'validation' : 'test', channels));
  });
  return out;
}

/** Writes a resize shard dir and a partition dir for `images`, as those stages would. */
async function upstream(rig: StageRig, name: string, images: readonly FakeImage[], channels: 1 | 3 = 3): Promise<{ resize: string; partition: string }> {
  const resize = path.join(rig.dir, 'up', name, 'resize');
  const partition = path.join(rig.dir, 'up', name, 'partition');
  const writer = new ShardWriter(resize, { height: H, width: W, channels, classes: CLASSES, itemsPerShard: 7 });
  for (const im of images) writer.add(im.sha, im.sha, im.label, im.pixels);
  writer.close();
  const counts: Record<Split, Record<string, number>> = { train: {}, validation: {}, test: {} };
  for (const im of images) counts[im.split][CLASSES[im.label]!] = (counts[im.split][CLASSES[im.label]!] ?? 0) + 1;
  const file: PartitionFile = {
    format: 'pipeline.partition/v1',
    salt: '',
    ratios: [0.7, 0.2, 0.1],
    assignments: Object.fromEntries(images.map((im) => [im.sha, im.split])),
    counts,
  };
  await fs.mkdir(partition, { recursive: true });
  await fs.writeFile(path.join(partition, PARTITION_FILE), JSON.stringify(file));
  return { resize, partition };
}

async function shardBytes(dir: string): Promise<Buffer> {
  const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as { shards: { file: string }[] };
  return Buffer.concat(await Promise.all(index.shards.map((s) => fs.readFile(path.join(dir, s.file)))));
}

async function readSummary(dir: string): Promise<AugmentSummary> {
  return JSON.parse(await fs.readFile(path.join(dir, 'augment.json'), 'utf8')) as AugmentSummary;
}

test('augments only train images: K variants each, ids <sha>#k, same label, exact Keras pixels', async () => {
  await using rig = await stageRig();
  const images = dataset();
  const inputs = await upstream(rig, 'a', images);
  const params: AugmentParams = { ...RECIPE, copies: 3 };
  const ctx = await rig.context('augment', params, inputs, 42);
  const result = await augmentStage.run(ctx);

  const train = images.filter((im) => im.split === 'train');
  const reader = new ShardReader(ctx.outDir);
  assert.equal(reader.count, train.length * 3);
  assert.deepEqual(
    reader.index.items.map((it) => it.id),
    train.flatMap((im) => [0, 1, 2].map((k) => `${im.sha}#${k}`)),
  );
  const nonTrain = new Set(images.filter((im) => im.split !== 'train').map((im) => im.sha));
  for (const it of reader.index.items) {
    assert.ok(!nonTrain.has(it.source), 'a validation/test image was augmented');
    assert.equal(it.label, images.find((im) => im.sha === it.source)!.label);
  }
  assert.deepEqual(reader.index.classes, CLASSES);

  // Each variant equals the pure functions applied with its own (seed, sha, k) stream: independent of order and of the worker pool.
  const config = resolveAugmentParams(params).config;
  reader.index.items.forEach((it, i) => {
    const k = Number(it.id.split('#')[1]);
    const im = images.find((x) => x.sha === it.source)!;
    const tp = getRandomTransform(config, H, W, variantRandom(42, im.sha, k));
    const expected = applyTransform(im.pixels, { height: H, width: W, channels: 3 }, tp, config);
    assert.ok(Buffer.from(reader.pixels(i)).equals(Buffer.from(expected)), `variant ${it.id}`);
  });
  // Variants of one image differ from each other and from the original.
  assert.ok(!Buffer.from(reader.pixels(0)).equals(Buffer.from(reader.pixels(1))));
  assert.ok(!Buffer.from(reader.pixels(0)).equals(Buffer.from(train[0]!.pixels)));

  assert.deepEqual(result.metrics, { images: 10, variants: 30, cache_hits: 0, computed: 30 });
  const summary = await readSummary(ctx.outDir);
  assert.equal(summary.counts.notTrain, 6);
  assert.equal(summary.counts.unassigned, 0);
  assert.deepEqual(summary.counts.perClass, { cat: 5, dog: 5 });
  assert.equal(summary.seed, 42);
  assert.deepEqual(summary.params['zoom_range'], [0.85, 1.15]);
  assert.equal(summary.params['fill_mode'], 'nearest');
  assert.equal(summary.threads, 2);
  // The preview's transforms are listed (2 images per class, 3 variants each) and match the draws of those variants.
  assert.equal(summary.previewTransforms.length, 4);
  const first = summary.previewTransforms[0]!;
  assert.equal(first.className, 'cat');
  assert.equal(first.transforms.length, 3);
  assert.deepEqual(first.transforms[2], getRandomTransform(config, H, W, variantRandom(42, first.source, 2)));
});

test('preview.png is a PNG grid: per class 2 rows of original + K variants', async () => {
  await using rig = await stageRig();
  const inputs = await upstream(rig, 'p', dataset());
  const ctx = await rig.context('augment', { ...RECIPE, copies: 2 }, inputs, 1);
  await augmentStage.run(ctx);
  const meta = await sharp(path.join(ctx.outDir, 'preview.png')).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.channels, 3);
  // 16x16 images are enlarged 8x (floor(128 / 16)) to 128x128 tiles; 3 columns: 120 + 4 + 3 * (128 + 4) = 520 wide;
  // 4 rows: 4 + 4 * (128 + 4) = 532 high.
  assert.equal(meta.width, 520);
  assert.equal(meta.height, 532);
  assert.deepEqual(sheetGeometry({ height: H, width: W, channels: 3 }, 4, 3), { tileHeight: 128, tileWidth: 128, factor: 1, upscale: 8, rowHeight: 128, width: 520, height: 532 });
  // 224x224 images are box-downscaled by 2 to 112x112 tiles.
  assert.deepEqual(sheetGeometry({ height: 224, width: 224, channels: 3 }, 1, 2), { tileHeight: 112, tileWidth: 112, factor: 2, upscale: 1, rowHeight: 112, width: 120 + 4 + 2 * 116, height: 4 + 116 });
  // The first tile of the first row is the original of the smallest-sha cat train image.
  const { data } = await sharp(path.join(ctx.outDir, 'preview.png')).raw().toBuffer({ resolveWithObject: true });
  const cat = dataset()
    .filter((im) => im.split === 'train' && im.label === 0)
    .sort((a, b) => (a.sha < b.sha ? -1 : 1))[0]!;
  const top = 4;
  const left = 124;
  for (const [r, c] of [[0, 0], [5, 9], [15, 15]] as const) {
    const o = ((top + r * 8 + 7) * 520 + left + c * 8) * 3;
    assert.deepEqual([...data.subarray(o, o + 3)], [...cat.pixels.subarray((r * W + c) * 3, (r * W + c) * 3 + 3)]);
  }
});

test('same seed gives identical bytes; another seed gives different bytes', async () => {
  await using rigA = await stageRig();
  await using rigB = await stageRig();
  const run = async (rig: StageRig, seed: number, params: AugmentParams = RECIPE): Promise<Buffer> => {
    const ctx = await rig.context('augment', params, await upstream(rig, `s${seed}-${Math.random()}`, dataset()), seed);
    await augmentStage.run(ctx);
    return shardBytes(ctx.outDir);
  };
  const a = await run(rigA, 7);
  const b = await run(rigB, 7);
  assert.ok(a.equals(b), 'same seed, fresh caches: bytes differ');
  const c = await run(rigB, 8);
  assert.ok(!a.equals(c), 'different seed: identical bytes');
  // params.seed overrides the run seed
  const d = await run(rigB, 8, { ...RECIPE, seed: 7 });
  assert.ok(a.equals(d), 'params.seed 7 under run seed 8 should equal run seed 7');
});

test('per-image cache: a rerun with one new train image computes only its K variants', async () => {
  await using rig = await stageRig();
  const images = dataset();
  const params: AugmentParams = { ...RECIPE, copies: 2 };
  const first = await rig.context('augment', params, await upstream(rig, 'c1', images), 3);
  const r1 = await augmentStage.run(first);
  assert.deepEqual(r1.metrics, { images: 10, variants: 20, cache_hits: 0, computed: 20 });

  const grown = [...images, fakeImage('dog-new', 1, 'train'), fakeImage('cat-new-val', 0, 'validation')];
  const second = await rig.context('augment', params, await upstream(rig, 'c2', grown), 3);
  const r2 = await augmentStage.run(second);
  assert.deepEqual(r2.metrics, { images: 11, variants: 22, cache_hits: 20, computed: 2 });
  // Cached variants are the same bytes as computed ones.
  const before = new ShardReader(first.outDir);
  const after = new ShardReader(second.outDir);
  for (let i = 0; i < before.count; i++) {
    const j = after.index.items.findIndex((it) => it.id === before.index.items[i]!.id);
    assert.ok(Buffer.from(after.pixels(j)).equals(Buffer.from(before.pixels(i))), before.index.items[i]!.id);
  }

  // Changing a param that alters pixels misses the cache; changing copies reuses the first copies.
  const third = await rig.context('augment', { ...params, fill_mode: 'reflect' as const }, await upstream(rig, 'c3', grown), 3);
  assert.deepEqual((await augmentStage.run(third)).metrics, { images: 11, variants: 22, cache_hits: 0, computed: 22 });
  const fourth = await rig.context('augment', { ...params, copies: 3 }, await upstream(rig, 'c4', grown), 3);
  assert.deepEqual((await augmentStage.run(fourth)).metrics, { images: 11, variants: 33, cache_hits: 22, computed: 11 });

  // Same source files resized differently (same geometry, other pixels): nothing may come from the cache.
  const reResized = grown.map((im) => ({ ...im, pixels: im.pixels.map((v) => 255 - v) }));
  const fifth = await rig.context('augment', params, await upstream(rig, 'c5', reResized), 3);
  assert.deepEqual((await augmentStage.run(fifth)).metrics, { images: 11, variants: 22, cache_hits: 0, computed: 22 });
});

test('single-channel shards and an image missing from partition.json', async () => {
  await using rig = await stageRig();
  const images = dataset(1);
  const inputs = await upstream(rig, 'g', images, 1);
  // add a stray item to the shards that partition.json does not know
  const extra = fakeImage('stray', 0, 'train', 1);
  const index = new ShardReader(inputs.resize);
  const writer = new ShardWriter(inputs.resize, { height: H, width: W, channels: 1, classes: CLASSES });
  for (let i = 0; i < index.count; i++) writer.add(index.index.items[i]!.id, index.index.items[i]!.source, index.index.items[i]!.label, index.pixels(i).slice());
  writer.add(extra.sha, extra.sha, 0, extra.pixels);
  writer.close();
  const ctx = await rig.context('augment', { ...RECIPE, vertical_flip: true, fill_mode: 'constant' as const, cval: 255, brightness_range: [0.8, 1.2] as const }, inputs, 5);
  const result = await augmentStage.run(ctx);
  assert.equal(result.metrics!['variants'], 10);
  assert.equal(new ShardReader(ctx.outDir).index.channels, 1);
  assert.equal((await readSummary(ctx.outDir)).counts.unassigned, 1);
  assert.match(ctx.log.warnings.join('\n'), /1 resized image\(s\) have no assignment/);
});

test('an aborted run stops with the abort reason', async () => {
  await using rig = await stageRig();
  const ctx = await rig.context('augment', RECIPE, await upstream(rig, 'x', dataset()), 1);
  const ac = new AbortController();
  ac.abort(new Error('cancelled by test'));
  await assert.rejects(augmentStage.run({ ...ctx, signal: ac.signal }), /cancelled by test/);
});

test('width_shift_range 1 (a Keras int) never shifts, and the stage says so', async () => {
  await using rig = await stageRig();
  const images = dataset();
  const ctx = await rig.context('augment', { width_shift_range: 1, preview_per_class: 0 }, await upstream(rig, 'w1', images), 1);
  await augmentStage.run(ctx);
  assert.match(ctx.log.warnings.join('\n'), /width_shift_range: 1 is a whole-pixel range/);
  const out = new ShardReader(ctx.outDir);
  for (let i = 0; i < out.count; i++) {
    const im = images.find((x) => x.sha === out.index.items[i]!.source)!;
    assert.ok(Buffer.from(out.pixels(i)).equals(Buffer.from(im.pixels)), 'a variant moved');
  }
  await assert.rejects(fs.access(path.join(ctx.outDir, 'preview.png')));
});

test('no train images: an empty shard directory, no preview, counts of zero', async () => {
  await using rig = await stageRig();
  const images = dataset().map((im) => ({ ...im, split: 'validation' as const }));
  const ctx = await rig.context('augment', { ...RECIPE, copies: 4 }, await upstream(rig, 'none', images), 1);
  const result = await augmentStage.run(ctx);
  assert.deepEqual(result.metrics, { images: 0, variants: 0, cache_hits: 0, computed: 0 });
  assert.equal(new ShardReader(ctx.outDir).count, 0);
  const summary = await readSummary(ctx.outDir);
  assert.equal(summary.preview, null);
  assert.equal(summary.counts.notTrain, 16);
  await assert.rejects(fs.access(path.join(ctx.outDir, 'preview.png')));
});

test('a variant depends only on (seed, image, k): reordering the shards or adding images changes no existing variant', async () => {
  await using rigA = await stageRig();
  await using rigB = await stageRig();
  const images = dataset();
  const a = await rigA.context('augment', { ...RECIPE, copies: 2 }, await upstream(rigA, 'fwd', images), 9);
  await augmentStage.run(a);
  const shuffled = [...images.slice(5), fakeImage('cat-extra', 0, 'train'), ...images.slice(0, 5)].reverse();
  const b = await rigB.context('augment', { ...RECIPE, copies: 2 }, await upstream(rigB, 'rev', shuffled), 9);
  await augmentStage.run(b);
  const ra = new ShardReader(a.outDir);
  const rb = new ShardReader(b.outDir);
  assert.equal(rb.count, ra.count + 2);
  assert.notDeepEqual(rb.index.items.map((it) => it.id).slice(0, ra.count), ra.index.items.map((it) => it.id));
  for (let i = 0; i < ra.count; i++) {
    const j = rb.index.items.findIndex((it) => it.id === ra.index.items[i]!.id);
    assert.ok(j >= 0 && Buffer.from(rb.pixels(j)).equals(Buffer.from(ra.pixels(i))), ra.index.items[i]!.id);
  }
});
