/**
 * `gcItems` (cache/item-gc.ts) on a real cache: an entry linked into a stage
 * output and adopted as an object (shared inode) stays; unshared entries stay
 * while used within the max age or the grace and go after; dead writers'
 * temp files go after a day; the store verifies clean and a pruned key reads
 * as a miss. Time is moved with `now` (ctime cannot be set back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CacheStore } from '../../src/cache/store.js';
import { gcItems } from '../../src/cache/item-gc.js';
import { ITEM_DIGEST_BYTES } from '../../src/cache/item-cache.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

async function cacheWithItems(): Promise<AsyncDisposable & { root: string; store: CacheStore; file: (k: string) => string }> {
  const root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'item-gc-')));
  const store = await CacheStore.open(root);
  const items = store.items('resize');
  const value = (n: number) => Buffer.alloc(100, n);
  for (const k of ['aaaaaaaa01', 'aaaaaaaa02', 'bbbbbbbb01']) await items.put(k, value(k.charCodeAt(9)));
  // aaaaaaaa01 is linked into a stage's output and adopted by the store: its inode is an object now.
  const staging = await store.makeStagingDir();
  assert.equal(await items.link!('aaaaaaaa01', path.join(staging, 'a.px'), 100), true);
  await store.ingestDir(staging);
  await store.removeStagingDir(staging);
  return {
    root,
    store,
    file: (k) => path.join(root, 'items', 'resize', k.slice(0, 2), k),
    [Symbol.asyncDispose]: () => fs.rm(root, { recursive: true, force: true }),
  };
}

test('gcItems: shared entries stay; unshared ones stay while used within max age, go after', async () => {
  await using c = await cacheWithItems();
  assert.equal(fss.statSync(c.file('aaaaaaaa01')).nlink, 2, 'entry shares its inode with an object');

  let r = await gcItems(c.root, { maxAgeMs: 30 * DAY, graceMs: HOUR, now: Date.now() + 10 * DAY });
  assert.deepEqual(r, { entries: 3, removedEntries: 0, freedBytes: 0, keptShared: 1, keptRecent: 2, removedTemp: 0 });

  r = await gcItems(c.root, { maxAgeMs: 30 * DAY, graceMs: HOUR, now: Date.now() + 31 * DAY });
  assert.deepEqual(r, { entries: 3, removedEntries: 2, freedBytes: 2 * (100 + ITEM_DIGEST_BYTES), keptShared: 1, keptRecent: 0, removedTemp: 0 });
  assert.equal(fss.existsSync(c.file('aaaaaaaa01')), true);
  assert.equal(fss.existsSync(c.file('aaaaaaaa02')), false);
  assert.equal(fss.existsSync(c.file('bbbbbbbb01')), false);
  assert.equal(fss.existsSync(path.dirname(c.file('bbbbbbbb01'))), true, 'shard dirs stay (a live writer may rely on them)');

  // A pruned key is a miss; the shared one still reads, and the store is clean.
  const items = c.store.items('resize');
  assert.equal(await items.get('aaaaaaaa02'), undefined);
  assert.deepEqual(await items.get('aaaaaaaa01'), Buffer.alloc(100, '1'.charCodeAt(0)));
  const v = await c.store.verify();
  assert.deepEqual([v.corrupt, v.missing, v.badRecords, v.corruptItems], [[], [], [], undefined]);
});

test('gcItems: the grace keeps young entries even at max age 0; dead writers\' temp files go after a day', async () => {
  await using c = await cacheWithItems();
  const tmp = `${c.file('bbbbbbbb01')}.4242.0badf00d.tmp`;
  await fs.writeFile(tmp, 'half');
  let r = await gcItems(c.root, { maxAgeMs: 0, graceMs: HOUR });
  assert.deepEqual(r, { entries: 3, removedEntries: 0, freedBytes: 0, keptShared: 1, keptRecent: 2, removedTemp: 0 });
  r = await gcItems(c.root, { maxAgeMs: 0, graceMs: HOUR, now: Date.now() + 2 * HOUR });
  assert.equal(r.removedEntries, 2);
  assert.equal(r.removedTemp, 0, 'a temp file younger than a day may belong to a live writer');
  assert.equal(fss.existsSync(tmp), true);
  r = await gcItems(c.root, { maxAgeMs: 0, graceMs: 0, now: Date.now() + 25 * HOUR });
  assert.deepEqual(r, { entries: 1, removedEntries: 0, freedBytes: 4, keptShared: 1, keptRecent: 0, removedTemp: 1 });
  assert.equal(fss.existsSync(tmp), false);
});

test('gcItems: once the sharing object is gone, the entry is unshared and ages out', async () => {
  await using c = await cacheWithItems();
  // No record keeps the object: store gc (grace 0) removes it, and the entry's link count drops to 1.
  const g = await c.store.gc(new Set(), { graceMs: 0 });
  assert.equal(g.removedObjects, 1);
  assert.equal(fss.statSync(c.file('aaaaaaaa01')).nlink, 1);
  const r = await gcItems(c.root, { maxAgeMs: DAY, graceMs: 0, now: Date.now() + 2 * DAY });
  assert.deepEqual([r.removedEntries, r.keptShared], [3, 0]);
  assert.equal(await c.store.items('resize').get('aaaaaaaa01'), undefined);
});

test('gcItems: a cache without items/ reports nothing', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'item-gc-empty-'));
  try {
    assert.deepEqual(await gcItems(root, { maxAgeMs: 0, graceMs: 0 }), { entries: 0, removedEntries: 0, freedBytes: 0, keptShared: 0, keptRecent: 0, removedTemp: 0 });
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
