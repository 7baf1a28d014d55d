import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { stageRig } from '../helpers/stage-context.js';
import { ShardReader, ShardWriter } from '../../stages/lib/shards.js';
import { PARTITION_FILE, type Split } from '../../stages/lib/splits.js';
import { FASHION_MNIST_CLASSES, readIdxImageSet } from '../../stages/lib/idx.js';
import { augmentStage, type AugmentSummary } from '../../stages/augment.js';
import { sheetGeometry } from '../../stages/lib/augment/contact-sheet.js';

const DATA = path.resolve('..', 'shared', 'datasets', 'fashion-mnist');
const COUNT = 600;
const SIZE = 32;

test('fashion-mnist: 600 real images through sharp, recipe augmentation of the train split', async () => {
  const set = await readIdxImageSet(path.join(DATA, 't10k-images-idx3-ubyte.gz'), path.join(DATA, 't10k-labels-idx1-ubyte.gz'), 10);
  assert.ok(set.ok, set.ok ? '' : set.error);
  const { pixels, labels, height, width } = set.value;
  await using rig = await stageRig();
  const resize = path.join(rig.dir, 'resize');
  const writer = new ShardWriter(resize, { height: SIZE, width: SIZE, channels: 3, classes: FASHION_MNIST_CLASSES, itemsPerShard: 256 });
  const assignments: Record<string, Split> = {};
  const originals = new Map<string, Uint8Array>();
  for (let i = 0; i < COUNT; i++) {
    // As the image stages would: a real PNG file's bytes hashed, decoded and resized to RGB by sharp.
    const gray = pixels.subarray(i * height * width, (i + 1) * height * width);
    const png = await sharp(Buffer.from(gray), { raw: { width, height, channels: 1 } }).png().toBuffer();
    const sha = createHash('sha256').update(png).digest('hex');
    if (originals.has(sha)) continue;
    const rgb = await sharp(png).resize(SIZE, SIZE).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.equal(rgb.info.channels, 3);
    writer.add(sha, sha, labels[i]!, rgb.data);
    originals.set(sha, rgb.data);
    const bucket = parseInt(sha.slice(0, 2), 16) % 10;
    assignments[sha] = bucket < 7 ? 'train' : bucket < 9 ? 'validation' : 'test';
  }
  writer.close();
  const partition = path.join(rig.dir, 'partition');
  await fs.mkdir(partition);
  await fs.writeFile(path.join(partition, PARTITION_FILE), JSON.stringify({ format: 'pipeline.partition/v1', salt: '', ratios: [0.7, 0.2, 0.1], assignments, counts: { train: {}, validation: {}, test: {} } }));

  const params = { rotation_range: 15, width_shift_range: 0.15, height_shift_range: 0.15, shear_range: 0.15, zoom_range: 0.15, channel_shift_range: 1, horizontal_flip: true, copies: 2 };
  const ctx = await rig.context('augment', params, { resize, partition }, 2024);
  const result = await augmentStage.run(ctx);
  const trainCount = Object.values(assignments).filter((s) => s === 'train').length;
  assert.ok(trainCount > 300 && trainCount < 540, `train ${trainCount}`);
  assert.deepEqual(result.metrics, { images: trainCount, variants: 2 * trainCount, cache_hits: 0, computed: 2 * trainCount });

  const out = new ShardReader(ctx.outDir);
  let changed = 0;
  let meanIn = 0;
  let meanOut = 0;
  for (let i = 0; i < out.count; i++) {
    const item = out.index.items[i]!;
    assert.equal(assignments[item.source], 'train');
    const a = originals.get(item.source)!;
    const b = out.pixels(i);
    let diff = 0;
    for (let j = 0; j < a.length; j++) {
      diff += Math.abs(a[j]! - b[j]!);
      meanIn += a[j]!;
      meanOut += b[j]!;
    }
    if (diff / a.length > 2) changed++;
  }
  // Geometry changes nearly every variant, while the overall intensity stays put (nearest fill, +-1 channel shift).
  assert.ok(changed > 0.9 * out.count, `only ${changed} of ${out.count} variants differ from their original`);
  assert.ok(Math.abs(meanOut - meanIn) / meanIn < 0.05, `mean intensity moved from ${meanIn} to ${meanOut}`);

  const summary = JSON.parse(await fs.readFile(path.join(ctx.outDir, 'augment.json'), 'utf8')) as AugmentSummary;
  const rows = Object.values(summary.counts.perClass).reduce((n, c) => n + Math.min(2, c), 0);
  const meta = await sharp(path.join(ctx.outDir, 'preview.png')).metadata();
  const g = sheetGeometry({ height: SIZE, width: SIZE, channels: 3 }, rows, 3);
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', g.width, g.height]);
});
