/**
 * The per-image overhead cuts of the resize stage (issue 3, resize vs bare
 * sharp): the cache key built from a precomputed JSON prefix must be the very
 * key of the canonical JSON object (cached pixels stay valid), and the item
 * cache's synchronous put (no fsync: what the stage host uses) must still write
 * value + sha256 trailer through a temp file, leave no temp file behind on
 * success or failure, and keep two caches on one root from colliding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { resizeCacheKey, resizeKeyer, resizeParams, PIXELS_VERSION, type ResizeParams } from '../../stages/resize.js';
import { directoryItemCache, itemEntryIntact, itemFiles, ITEM_DIGEST_BYTES } from '../../src/cache/item-cache.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The key as the stage computed it before the keyer: sha256 of the whole canonical JSON object. */
function canonicalKey(sha256: string, p: ResizeParams, version: string): string {
  const text = JSON.stringify({
    stage: 'resize',
    version,
    vips: sharp.versions.vips,
    sha256,
    size: [p.size[0], p.size[1]],
    fit: p.fit,
    kernel: p.kernel,
    channels: p.channels,
    background: p.background.toLowerCase(),
  });
  return createHash('sha256').update(Buffer.from(text)).digest('hex');
}

test('resizeKeyer gives exactly the canonical-JSON key for every param set (cached pixels stay valid)', () => {
  const paramSets: ResizeParams[] = [
    resizeParams({}),
    resizeParams({ size: [8, 16], fit: 'contain', kernel: 'nearest', channels: 1, background: '#ABCDEF' }),
    resizeParams({ size: [300, 200], fit: 'fill', kernel: 'mitchell', background: '#FfF' }),
  ];
  const hashes = ['ab'.repeat(32), '0'.repeat(64), createHash('sha256').update('x').digest('hex')];
  for (const p of paramSets) {
    const keyOf = resizeKeyer(p, PIXELS_VERSION);
    for (const h of hashes) {
      const want = canonicalKey(h, p, PIXELS_VERSION);
      assert.equal(keyOf(h), want, `${JSON.stringify(p)} ${h}`);
      assert.equal(resizeCacheKey(h, p, PIXELS_VERSION), want);
    }
  }
  // A different version is a different key, as before.
  assert.notEqual(resizeKeyer(paramSets[0]!, PIXELS_VERSION + 'x')(hashes[0]!), canonicalKey(hashes[0]!, paramSets[0]!, PIXELS_VERSION));
});

test('item cache without fsync: put writes value + sha256 trailer read-only, no temp files, two caches on one root do not collide', async () => {
  await using t = await tempDir('item-put-');
  const root = path.join(t.dir, 'items', 'resize');
  const a = directoryItemCache(root, { fsync: false });
  const b = directoryItemCache(root, { fsync: false });
  const values = new Map<string, Buffer>();
  // Same keys through both caches, interleaved, plus distinct ones: every temp name must be unique.
  for (let i = 0; i < 40; i++) {
    const key = createHash('sha256').update(`k${i % 25}`).digest('hex');
    const value = Buffer.alloc(1000 + i, i);
    await (i % 2 === 0 ? a : b).put(key, value);
    values.set(key, value);
  }
  for (const [key, value] of values) {
    const raw = fs.readFileSync(path.join(root, key.slice(0, 2), key));
    assert.equal(raw.length, value.length + ITEM_DIGEST_BYTES);
    assert.ok(itemEntryIntact(raw));
    assert.deepEqual(raw.subarray(0, value.length), value);
    assert.deepEqual(await b.get(key), value);
    assert.equal(fs.statSync(path.join(root, key.slice(0, 2), key)).mode & 0o777, 0o444);
  }
  const names: string[] = [];
  for await (const f of itemFiles(t.dir)) names.push(f.name);
  assert.equal(names.length, values.size, `only entries, no temp files: ${names.filter((n) => n.endsWith('.tmp')).join(', ')}`);
});

test('item cache without fsync: a put whose rename fails removes its temp file and reports the error', async () => {
  await using t = await tempDir('item-put-fail-');
  const root = path.join(t.dir, 'items', 'resize');
  const cache = directoryItemCache(root, { fsync: false });
  const key = 'cd'.repeat(32);
  // The entry's path is a non-empty directory: renaming the temp file over it fails.
  fs.mkdirSync(path.join(root, key.slice(0, 2), key, 'x'), { recursive: true });
  await assert.rejects(cache.put(key, Buffer.alloc(64, 7)), (e: NodeJS.ErrnoException) => e.code === 'EISDIR' || e.code === 'ENOTEMPTY' || e.code === 'EEXIST');
  assert.deepEqual(fs.readdirSync(path.join(root, key.slice(0, 2))), [key], 'no temp file left beside the entry path');
  // The next put of another key in the same shard works.
  const other = 'cd'.repeat(31) + 'ef';
  await cache.put(other, Buffer.alloc(64, 9));
  assert.deepEqual(await cache.get(other), Buffer.alloc(64, 9));
});

test('resize prepare (what a host started ahead of resize does while idle) resizes the warm-up JPEG and resolves', async () => {
  const { resizeStage, resizeImage, resizeOptionsOf, RESIZE_DEFAULTS } = await import('../../stages/resize.js');
  const { warmUpJpeg } = await import('../../stages/lib/warm-up.js');
  assert.ok(resizeStage.prepare);
  await resizeStage.prepare();
  const r = await resizeImage(warmUpJpeg(), resizeOptionsOf(RESIZE_DEFAULTS));
  assert.ok(r.ok);
  if (r.ok) assert.equal(r.value.length, 224 * 224 * 3);
});
