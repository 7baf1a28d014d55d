import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { stageRig } from '../helpers/stage-context.js';
import { resizeImage, resizeParams, resizeStage, resizeOptionsOf, resizeCacheKey, PIXELS_VERSION, type ResizeOptions, type ResizeParams } from '../../stages/resize.js';
import { ingestParams, ingestStage, type IngestParams } from '../../stages/ingest.js';
import { ShardReader } from '../../stages/lib/shards.js';
import { readManifest } from '../../stages/lib/manifest.js';
import { classPngs, pngOf, writeTree } from './fixtures.js';
import { directoryItemCache } from '../../src/cache/item-cache.js';

const RED = [255, 0, 0];
const GREEN = [0, 255, 0];
const BLUE = [0, 0, 255];
const BLACK = [0, 0, 0];

/** A raw RGB image from per-pixel colours, row-major. */
function raw(w: number, h: number, colourAt: (x: number, y: number) => number[]): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(colourAt(x, y), (y * w + x) * 3);
  return b;
}

function pixels(data: Uint8Array, channels: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < data.length; i += channels) out.push([...data.subarray(i, i + channels)]);
  return out;
}

const nearest = (size: [number, number], more: Partial<ResizeOptions> = {}): ResizeOptions => ({ size, fit: 'fill', kernel: 'nearest', channels: 3, background: '#000000', ...more });

async function ok(input: Buffer, o: ResizeOptions): Promise<Uint8Array> {
  const r = await resizeImage(input, o);
  assert.ok(r.ok, r.ok ? '' : `${r.error.reason}: ${r.error.detail}`);
  return r.value;
}

test('resizeImage: cover / contain / fill on a 6x2 red|green|blue image, hand-checked', async () => {
  // Columns 0-1 red, 2-3 green, 4-5 blue.
  const src = await sharp(raw(6, 2, (x) => [RED, GREEN, BLUE][x >> 1]!), { raw: { width: 6, height: 2, channels: 3 } }).png().toBuffer();
  // cover: scale 1 (height already 2), centre-crop columns 2-3.
  assert.deepEqual(pixels(await ok(src, nearest([2, 2], { fit: 'cover' })), 3), [GREEN, GREEN, GREEN, GREEN]);
  // fill: 6 -> 2 columns, one sample from each outer band.
  assert.deepEqual(pixels(await ok(src, nearest([2, 2], { fit: 'fill' })), 3), [RED, BLUE, RED, BLUE]);
  // contain: scale 1/3 -> 2x1 (red, blue) then one padded row of background.
  const contain = pixels(await ok(src, nearest([2, 2], { fit: 'contain', background: '#000' })), 3);
  assert.deepEqual(contain, [RED, BLUE, BLACK, BLACK]);
  // channels 1: one byte per pixel.
  assert.equal((await ok(src, nearest([2, 2], { channels: 1 }))).length, 4);
});

test('resizeImage: EXIF orientation 6 is applied (left half ends on top)', async () => {
  // 40x20: left half red, right half blue; orientation 6 = rotate 90° clockwise for display.
  const jpeg = await sharp(raw(40, 20, (x) => (x < 20 ? RED : BLUE)), { raw: { width: 40, height: 20, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  assert.equal((await sharp(jpeg).metadata()).orientation, 6);
  const px = pixels(await ok(jpeg, nearest([4, 2])), 3); // 2 wide, 4 tall
  const isRed = (p: number[]) => p[0]! > 200 && p[2]! < 60;
  const isBlue = (p: number[]) => p[2]! > 200 && p[0]! < 60;
  assert.ok(px.slice(0, 4).every(isRed) && px.slice(4).every(isBlue), JSON.stringify(px));
});

test('resizeImage: alpha is flattened onto the background', async () => {
  const rgba = Buffer.alloc(4 * 4 * 4);
  for (let i = 0; i < 16; i++) rgba.set(i < 8 ? [0, 0, 0, 0] : [255, 255, 255, 128], i * 4); // top half transparent, bottom half 50% white
  const png = await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer();
  const px = pixels(await ok(png, nearest([4, 4], { background: '#ff0000' })), 3);
  assert.deepEqual(px.slice(0, 8), Array(8).fill(RED));
  for (const p of px.slice(8)) {
    assert.equal(p[0], 255);
    assert.ok(Math.abs(p[1]! - 128) <= 1 && Math.abs(p[2]! - 128) <= 1, JSON.stringify(p));
  }
});

test('resizeImage: grayscale to 3 channels or 1; 16-bit PNG to 8-bit', async () => {
  const gray = await sharp(Buffer.alloc(16, 77), { raw: { width: 4, height: 4, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(gray).metadata()).channels, 1);
  assert.deepEqual(pixels(await ok(gray, nearest([2, 2])), 3), Array(4).fill([77, 77, 77]));
  assert.deepEqual([...(await ok(gray, nearest([2, 2], { channels: 1 })))], [77, 77, 77, 77]);

  const rgb16 = await sharp(raw(4, 4, () => [200, 100, 50]), { raw: { width: 4, height: 4, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
  const meta = await sharp(rgb16).metadata();
  assert.equal(meta.depth, 'ushort');
  assert.deepEqual(pixels(await ok(rgb16, nearest([2, 2])), 3), Array(4).fill([200, 100, 50]));
});

test('resizeImage: CMYK JPEG, GIF, WebP and TIFF decode to the right sRGB colours', async () => {
  const base = sharp(raw(8, 8, (x) => (x < 4 ? RED : BLUE)), { raw: { width: 8, height: 8, channels: 3 } });
  const cmyk = await base.clone().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const cases: [string, Buffer][] = [
    ['cmyk', cmyk],
    ['gif', await base.clone().gif().toBuffer()],
    ['webp', await base.clone().webp({ lossless: true }).toBuffer()],
    ['tiff', await base.clone().tiff().toBuffer()],
  ];
  for (const [name, buf] of cases) {
    const px = pixels(await ok(buf, nearest([2, 2])), 3);
    // CMYK's gamut turns pure red/blue into (232,0,21)/(27,60,140) after the round trip: check the hue, not exact values.
    const red = (p: number[]) => p[0]! > 200 && p[1]! < 60 && p[2]! < 60;
    const blue = (p: number[]) => p[2]! > 120 && p[2]! - p[0]! > 80 && p[2]! - p[1]! > 60;
    assert.ok(red(px[0]!) && blue(px[1]!) && red(px[2]!) && blue(px[3]!), `${name}: ${JSON.stringify(px)}`);
  }
});

test('resizeImage: bad input is a reason, not a throw', async () => {
  const r = await resizeImage(Buffer.from('not an image'), nearest([2, 2]));
  assert.deepEqual(r.ok ? 'ok' : r.error.reason, 'not-an-image');
  const e = await resizeImage(Buffer.alloc(0), nearest([2, 2]));
  assert.deepEqual(e.ok ? 'ok' : e.error.reason, 'empty');
  const big = await sharp(raw(40, 40, () => RED), { raw: { width: 40, height: 40, channels: 3 } }).png().toBuffer();
  const limited = await resizeImage(big, nearest([2, 2], { maxPixels: 100 }));
  assert.deepEqual(limited.ok ? 'ok' : limited.error.reason, 'too-many-pixels');
  const missing = await resizeImage('/nonexistent/dir/x.png', nearest([2, 2]));
  assert.equal(missing.ok ? 'ok' : missing.error.detail, 'cannot read /nonexistent/dir/x.png (ENOENT)');
});

async function ingestTree(rig: Awaited<ReturnType<typeof stageRig>>, src: string): Promise<string> {
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: src }));
  await ingestStage.run(ctx);
  return ctx.outDir;
}

test('resize stage: shards in manifest order; adding 10 images resizes only those 10; changing size resizes all', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), await classPngs(30, 3, 1000, 20, 16));
  const params = resizeParams({ size: [8, 6] });

  const ing1 = await ingestTree(rig, 'src');
  const ctx1 = await rig.context<ResizeParams>('resize', params, { ingest: ing1 });
  const r1 = await resizeStage.run(ctx1);
  assert.deepEqual(r1.metrics, { images: 30, resized: 30, cache_hits: 0 });
  assert.ok(ctx1.log.progressCalls > 0);
  const reader = new ShardReader(ctx1.outDir);
  const { entries, classes } = readManifest(ing1);
  assert.deepEqual(reader.index.classes, classes);
  assert.equal(reader.index.itemBytes, 8 * 6 * 3);
  assert.deepEqual(reader.index.items.map((it) => [it.id, it.label]), entries.map((e) => [e.sha256, e.labelIndex]));
  for (const i of [0, 17, 29]) {
    const direct = await resizeImage(entries[i]!.path, resizeOptionsOf(params));
    assert.ok(direct.ok);
    assert.deepEqual(new Uint8Array(reader.pixels(i)), direct.value);
  }

  const more: Record<string, Buffer> = {};
  for (let i = 30; i < 40; i++) more[`c${i % 3}/${i}.png`] = await pngOf(1000 + i, 20, 16);
  await writeTree(path.join(rig.dir, 'src'), more);
  const ing2 = await ingestTree(rig, 'src');
  const r2 = await resizeStage.run(await rig.context<ResizeParams>('resize', params, { ingest: ing2 }));
  assert.deepEqual(r2.metrics, { images: 40, resized: 10, cache_hits: 30 });

  const r3 = await resizeStage.run(await rig.context<ResizeParams>('resize', resizeParams({ size: [6, 6] }), { ingest: ing2 }));
  assert.deepEqual(r3.metrics, { images: 40, resized: 40, cache_hits: 0 });
  const r4 = await resizeStage.run(await rig.context<ResizeParams>('resize', resizeParams({ size: [8, 6], kernel: 'nearest' }), { ingest: ing2 }));
  assert.equal(r4.metrics?.['resized'], 40);
});

test('resize stage: an image changed after ingest fails with its path and reason', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), { 'a/1.png': await pngOf(1), 'a/2.png': await pngOf(2) });
  const ing = await ingestTree(rig, 'src');
  await fs.writeFile(path.join(rig.dir, 'src', 'a', '2.png'), await pngOf(3));
  await assert.rejects(resizeStage.run(await rig.context<ResizeParams>('resize', resizeParams({ size: [4, 4] }), { ingest: ing })), (e: Error) => {
    assert.match(e.message, /1 image\(s\) accepted by ingest could not be resized/);
    assert.ok(e.message.includes(`${path.join(rig.dir, 'src', 'a', '2.png')}: unreadable (file changed since ingest ran`), e.message);
    return true;
  });
});

test('resize stage: a cancelled run rejects promptly with the abort reason', async () => {
  await using rig = await stageRig();
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`a/${i}.png`] = await pngOf(3000 + i, 20, 16);
  await writeTree(path.join(rig.dir, 'src'), files);
  const ing = await ingestTree(rig, 'src');
  const ctx = await rig.context<ResizeParams>('resize', resizeParams({ size: [8, 8] }), { ingest: ing });
  const ac = new AbortController();
  ac.abort(new Error('cancelled by test'));
  await assert.rejects(resizeStage.run({ ...ctx, signal: ac.signal }), /cancelled by test/);
});

/** Every file under `dir` (relative path → bytes), for byte-for-byte comparisons of whole outputs. */
async function treeBytes(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const rel of (await fs.readdir(dir, { recursive: true })).sort()) {
    const abs = path.join(dir, rel);
    if ((await fs.stat(abs)).isFile()) out.set(rel, await fs.readFile(abs));
  }
  return out;
}

test('resize stage: adding images links cached packs (no read, no copy) and the output is byte-identical to a cold run', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), await classPngs(20, 2, 5000, 20, 16));
  const params = resizeParams({ size: [8, 6] });
  await resizeStage.run(await rig.context<ResizeParams>('resize', params, { ingest: await ingestTree(rig, 'src') }));

  const more: Record<string, Buffer> = {};
  for (let i = 20; i < 22; i++) more[`c${i % 2}/${i}.png`] = await pngOf(5000 + i, 20, 16);
  await writeTree(path.join(rig.dir, 'src'), more);
  const ing = await ingestTree(rig, 'src');
  const inc = await rig.context<ResizeParams>('resize', params, { ingest: ing });
  assert.deepEqual((await resizeStage.run(inc)).metrics, { images: 22, resized: 2, cache_hits: 20 });

  // Every pack is the item-cache entry's inode (hard link), read-only.
  const reader = new ShardReader(inc.outDir);
  assert.equal(reader.index.shards.length, 22);
  for (const s of reader.index.shards) {
    assert.equal(s.trailer, 'sha256');
    const st = await fs.stat(path.join(inc.outDir, s.file));
    assert.ok(st.nlink >= 2, s.file); // the entry, this output (and the first run's output)
    assert.equal(st.mode & 0o222, 0, `${s.file} must be read-only`);
  }

  // A cold run (empty item cache, and a cache that cannot link) gives the same bytes.
  const coldCache = path.join(rig.dir, 'cold-items');
  const cold = { ...(await rig.context<ResizeParams>('resize', params, { ingest: ing })), items: directoryItemCache(coldCache) };
  assert.equal((await resizeStage.run(cold)).metrics?.['resized'], 22);
  const plain = directoryItemCache(path.join(rig.dir, 'plain-items'));
  const noLink = { ...(await rig.context<ResizeParams>('resize', params, { ingest: ing })), items: { get: plain.get.bind(plain), put: plain.put.bind(plain) } };
  await resizeStage.run(noLink);
  const want = await treeBytes(inc.outDir);
  assert.deepEqual(await treeBytes(cold.outDir), want);
  assert.deepEqual(await treeBytes(noLink.outDir), want);
  // Pixels read back through the reader equal a direct resize.
  const { entries } = readManifest(ing);
  const direct = await resizeImage(entries[21]!.path, resizeOptionsOf(params));
  assert.ok(direct.ok);
  assert.deepEqual(new Uint8Array(reader.pixels(21)), direct.value);
});

test('resize stage: a truncated item-cache entry is a miss, not bad pixels', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), { 'a/1.png': await pngOf(7001, 20, 16), 'b/2.png': await pngOf(7002, 20, 16) });
  const ing = await ingestTree(rig, 'src');
  const params = resizeParams({ size: [8, 6] });
  await resizeStage.run(await rig.context<ResizeParams>('resize', params, { ingest: ing }));
  const itemsDir = path.join(rig.cacheDir, 'items', 'resize');
  const entry = (await fs.readdir(itemsDir, { recursive: true })).map((r) => path.join(itemsDir, r)).find((p) => /[0-9a-f]{64}$/.test(p))!;
  await fs.chmod(entry, 0o644);
  await fs.truncate(entry, 100);
  const again = await rig.context<ResizeParams>('resize', params, { ingest: ing });
  assert.deepEqual((await resizeStage.run(again)).metrics, { images: 2, resized: 1, cache_hits: 1 });
  const reader = new ShardReader(again.outDir);
  for (let i = 0; i < 2; i++) assert.equal(reader.pixels(i).length, 8 * 6 * 3);
});

test('resizeCacheKey changes with the image hash and with every pixel-changing param', () => {
  const sha = '0'.repeat(64);
  const base = resizeCacheKey(sha, resizeParams({}), PIXELS_VERSION);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(resizeCacheKey(sha, resizeParams({}), PIXELS_VERSION), base);
  assert.notEqual(resizeCacheKey('ab'.repeat(32), resizeParams({}), PIXELS_VERSION), base);
  assert.notEqual(resizeCacheKey(sha, resizeParams({ size: [8, 8] }), PIXELS_VERSION), base);
  assert.notEqual(resizeCacheKey(sha, resizeParams({ fit: 'contain' }), PIXELS_VERSION), base);
  assert.notEqual(resizeCacheKey(sha, resizeParams({ channels: 1 }), PIXELS_VERSION), base);
  assert.notEqual(resizeCacheKey(sha, resizeParams({}), PIXELS_VERSION + 'x'), base);
});
