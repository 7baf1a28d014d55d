import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { stageRig } from '../helpers/stage-context.js';
import { parseIdx, readIdxImageSet, FASHION_MNIST_CLASSES } from '../../stages/lib/idx.js';
import { exportFashionMnist, FASHION_MNIST_FILES } from '../../stages/lib/idx-export.js';
import { ingestParams, ingestStage, type IngestParams } from '../../stages/ingest.js';
import { resizeParams, resizeStage, type ResizeParams } from '../../stages/resize.js';
import { partitionParams, partitionStage, type PartitionParams } from '../../stages/partition.js';
import { readManifest, type IngestCounts } from '../../stages/lib/manifest.js';
import { ShardReader } from '../../stages/lib/shards.js';
import { readPartition, SPLITS } from '../../stages/lib/splits.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FMNIST = path.resolve(repoRoot, '..', 'shared', 'datasets', 'fashion-mnist');
const haveData = fss.existsSync(path.join(FMNIST, FASHION_MNIST_FILES.train.images));
const run = promisify(execFile);

function idx(type: number, dims: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

test('idx: parses a hand-made IDX3 and reports each malformation clearly', async () => {
  const good = parseIdx(idx(8, [2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), 'x');
  assert.ok(good.ok);
  assert.deepEqual(good.value.dims, [2, 2, 3]);
  assert.deepEqual([...good.value.data], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const bad = (b: Buffer) => {
    const r = parseIdx(b, 'f.idx');
    return r.ok ? 'ok' : r.error;
  };
  assert.equal(bad(Buffer.from([1, 2])), 'f.idx: not an IDX file (only 2 bytes)');
  assert.equal(bad(Buffer.from([0x50, 0x4b, 3, 4])), 'f.idx: not an IDX file (magic starts with 0x504b, expected 0x0000)');
  assert.equal(bad(idx(0x0d, [1], [0, 0, 0, 0])), 'f.idx: unsupported IDX data type 0x0d (only 0x08 = uint8 is supported)');
  assert.equal(bad(idx(8, [2, 2], [1, 2, 3])), 'f.idx: IDX dims [2, 2] need 4 data bytes but the file has 3 (truncated?)');
  assert.equal(bad(Buffer.from([0, 0, 8, 2, 0, 0])), 'f.idx: truncated IDX header (6 bytes, need 12)');

  await using rig = await stageRig();
  await fs.writeFile(path.join(rig.dir, 'i.gz'), zlib.gzipSync(idx(8, [2, 1, 1], [5, 6])));
  await fs.writeFile(path.join(rig.dir, 'l.gz'), zlib.gzipSync(idx(8, [3], [0, 1, 2])));
  await fs.writeFile(path.join(rig.dir, 'bad.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
  const mismatch = await readIdxImageSet(path.join(rig.dir, 'i.gz'), path.join(rig.dir, 'l.gz'), 10);
  assert.equal(mismatch.ok ? 'ok' : mismatch.error, `${path.join(rig.dir, 'l.gz')}: 3 labels but ${path.join(rig.dir, 'i.gz')} has 2 images`);
  const corrupt = await readIdxImageSet(path.join(rig.dir, 'bad.gz'), path.join(rig.dir, 'l.gz'), 10);
  assert.match(corrupt.ok ? 'ok' : corrupt.error, /bad\.gz: gzip data is corrupt/);
  await fs.writeFile(path.join(rig.dir, 'l2.gz'), zlib.gzipSync(idx(8, [2], [0, 12])));
  const range = await readIdxImageSet(path.join(rig.dir, 'i.gz'), path.join(rig.dir, 'l2.gz'), 10);
  assert.match(range.ok ? 'ok' : range.error, /label 12 at index 1 is out of range \(10 classes\)/);
});

test('fashion-mnist end to end: converter -> ingest -> resize -> partition on 3,000 real images', { skip: !haveData && `no data at ${FMNIST}` }, async () => {
  await using rig = await stageRig();
  const out = path.join(rig.dir, 'data', 'fmnist');
  const exp = await exportFashionMnist({ src: FMNIST, out, limitTrain: 2500, limitTest: 500 });
  assert.ok(exp.ok, exp.ok ? '' : exp.error);
  assert.equal(exp.value.train, 2500);
  assert.equal(exp.value.test, 500);

  // PNGs hold exactly the IDX pixels.
  const train = await readIdxImageSet(path.join(FMNIST, FASHION_MNIST_FILES.train.images), path.join(FMNIST, FASHION_MNIST_FILES.train.labels), 10);
  assert.ok(train.ok);
  const i = 123;
  const cls = FASHION_MNIST_CLASSES[train.value.labels[i]!];
  const png = path.join(out, cls, `train-00123.png`);
  const decoded = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  assert.equal(decoded.info.channels, 1);
  assert.deepEqual([...decoded.data], [...train.value.pixels.subarray(i * 784, (i + 1) * 784)]);

  const ing = await rig.context<IngestParams>('ingest', ingestParams({ manifest: 'data/fmnist/manifest.csv' }));
  const ir = await ingestStage.run(ing);
  const { entries, classes } = readManifest(ing.outDir);
  assert.deepEqual(classes, [...FASHION_MNIST_CLASSES].sort());
  const counts = JSON.parse(await fs.readFile(path.join(ing.outDir, 'counts.json'), 'utf8')) as IngestCounts;
  // Every file is a valid PNG; the only losses are exact duplicates / label conflicts inside the real data.
  assert.equal(counts.files, 3000);
  assert.equal(counts.accepted + counts.duplicates + counts.rejected['label-conflict'], 3000);
  assert.equal(Object.entries(counts.rejected).filter(([r, n]) => r !== 'label-conflict' && n > 0).length, 0);
  assert.equal(entries.filter((e) => e.split === 'test').length + 0 <= 500, true);
  assert.ok(ir.metrics!['images']! > 2950);

  // At the native size the shards hold the IDX pixels, replicated to 3 channels.
  const rz = await rig.context<ResizeParams>('resize', resizeParams({ size: [28, 28] }), { ingest: ing.outDir });
  const rr = await resizeStage.run(rz);
  assert.equal(rr.metrics!['resized'], entries.length);
  const reader = new ShardReader(rz.outDir);
  const k = entries.findIndex((e) => e.rel === `${cls}/train-00123.png`);
  assert.ok(k >= 0);
  const px = reader.pixels(k);
  const expected = train.value.pixels.subarray(i * 784, (i + 1) * 784);
  for (let p = 0; p < 784; p++) assert.deepEqual([px[3 * p], px[3 * p + 1], px[3 * p + 2]], [expected[p], expected[p], expected[p]]);

  const pt = await rig.context<PartitionParams>('partition', partitionParams({}), { ingest: ing.outDir });
  await partitionStage.run(pt);
  const part = readPartition(pt.outDir);
  for (const e of entries) {
    const s = part.assignments[e.sha256];
    if (e.split === 'test') assert.equal(s, 'test');
    else assert.notEqual(s, 'test', e.rel);
  }
  for (const s of SPLITS) for (const c of classes) assert.ok(part.counts[s][c]! > 0, `${s}/${c}`);
  const trainN = SPLITS.slice(0, 2).map((s) => Object.values(part.counts[s]).reduce((a, b) => a + b, 0));
  const valFrac = trainN[1]! / (trainN[0]! + trainN[1]!);
  assert.ok(Math.abs(valFrac - 2 / 9) < 0.04, `validation fraction ${valFrac}`);
});

test('fashion-mnist converter script: runs as a cmd, writes the manifest, fails clearly on a bad --src', { skip: !haveData && `no data at ${FMNIST}` }, async () => {
  await using rig = await stageRig();
  const script = path.join(repoRoot, 'scripts', 'fashion-mnist-to-png.mjs');
  const { stdout } = await run(process.execPath, [script, '--src', FMNIST, '--out', path.join(rig.dir, 'o'), '--limit-train', '30', '--limit-test', '20'], { cwd: rig.dir });
  assert.match(stdout, /^wrote 30 train \+ 20 test PNGs to .*o and o\/manifest\.csv in [\d.]+ s\n$/);
  const lines = (await fs.readFile(path.join(rig.dir, 'o', 'manifest.csv'), 'utf8')).trim().split('\n');
  assert.equal(lines[0], 'path,label,split');
  assert.equal(lines.length, 51);
  assert.equal(lines.filter((l) => l.endsWith(',test')).length, 20);
  const bad = await run(process.execPath, [script, '--src', rig.dir, '--out', path.join(rig.dir, 'x')]).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad?.code, 1);
  assert.match(bad!.stderr, /train-images-idx3-ubyte\.gz: cannot read \(ENOENT\)/);
  const usage = await run(process.execPath, [script, '--limit-train', 'x']).then(() => undefined, (e: { code: number; stderr: string }) => e);
  assert.equal(usage?.code, 2);
  assert.match(usage!.stderr, /--limit-train needs a non-negative integer, got "x"/);
});

test('the committed quickstart sample: 40 PNGs per class, all accepted by ingest, licence present', async () => {
  await using rig = await stageRig();
  const sample = path.join(repoRoot, 'pipelines', 'data', 'fashion-mnist-sample');
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: path.relative(rig.dir, sample) }));
  const r = await ingestStage.run(ctx);
  const { classes } = readManifest(ctx.outDir);
  assert.deepEqual(classes, [...FASHION_MNIST_CLASSES].sort());
  const counts = JSON.parse(await fs.readFile(path.join(ctx.outDir, 'counts.json'), 'utf8')) as IngestCounts;
  assert.equal(counts.files, 400);
  assert.equal(r.metrics!['rejected'], 0);
  assert.deepEqual(ctx.log.warnings, []);
  assert.match(await fs.readFile(path.join(sample, 'COPYRIGHT'), 'utf8'), /License: Expat/);
});
