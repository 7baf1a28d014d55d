/**
 * Shared inodes (issue 3): a built-in stage hard-links read-only item-cache
 * entries into its staging dir (resize's per-image packs); the store makes
 * those inodes the objects without copying, recognises them next time
 * without re-hashing, `verify` catches their corruption, and the workspace
 * only ever gets private copies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { CacheStore } from '../../src/cache/store.js';
import { directoryItemCache } from '../../src/cache/item-cache.js';
import { hashFile } from '../../src/cache/manifest.js';
import { tempDir } from './helpers.js';

const BYTES = 1000;
const value = (i: number): Buffer => Buffer.alloc(BYTES, i);
const key = (i: number): string => createHash('sha256').update(`item-${i}`).digest('hex');

/** A staging dir holding links to item entries `ids` (as resize does). */
async function stageLinks(store: CacheStore, items: ReturnType<typeof directoryItemCache>, ids: readonly number[]): Promise<string> {
  const staging = await store.makeStagingDir();
  await fsp.mkdir(path.join(staging, 'px'));
  for (const i of ids) assert.ok(await items.link!(key(i), path.join(staging, 'px', `${i}.px`), BYTES));
  await fsp.writeFile(path.join(staging, 'index.json'), JSON.stringify(ids));
  return staging;
}

test('linked item entries become objects without a copy, and are recognised next run without re-hashing', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const items = directoryItemCache(path.join(store.root, 'items', 'resize'), { fsync: false });
  for (let i = 0; i < 5; i++) await items.put(key(i), value(i));

  const s1 = await stageLinks(store, items, [0, 1, 2, 3, 4]);
  const m1 = await store.ingestDir(s1);
  await store.removeStagingDir(s1);
  assert.deepEqual(store.sharedStats, { known: 0, hashed: 5, told: 0 });
  for (let i = 0; i < 5; i++) {
    const f = m1.files.find((x) => x.path === `px/${i}.px`)!;
    const entry = fs.statSync(path.join(store.root, 'items', 'resize', key(i).slice(0, 2), key(i)));
    const obj = fs.statSync(store.objectPath(f.sha256));
    assert.equal(obj.ino, entry.ino, 'the object is the entry inode (no copy)');
    assert.equal(obj.mode & 0o777, 0o444);
    assert.equal(await hashFile(store.objectPath(f.sha256)), f.sha256);
    assert.equal(f.size, BYTES + 32);
  }

  // Next run (a new process: the memo is read from disk) adds one item: only that one is hashed.
  await items.put(key(5), value(5));
  const again = await CacheStore.open(store.root);
  const s2 = await stageLinks(again, items, [0, 1, 2, 3, 4, 5]);
  const m2 = await again.ingestDir(s2);
  await again.removeStagingDir(s2);
  assert.deepEqual(again.sharedStats, { known: 5, hashed: 1, told: 0 });
  assert.deepEqual(m2.files.filter((f) => f.path !== 'px/5.px' && f.path !== 'index.json'), m1.files.filter((f) => f.path !== 'index.json'));

  // A lost memo only costs a re-hash; the manifest is the same.
  await fsp.rm(again.inodeMemoPath);
  const third = await CacheStore.open(store.root);
  const s3 = await stageLinks(third, items, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual((await third.ingestDir(s3)).files.filter((f) => f.path !== 'index.json'), m2.files.filter((f) => f.path !== 'index.json'));
  assert.deepEqual(third.sharedStats, { known: 0, hashed: 6, told: 0 });
  assert.equal((await third.verify()).corrupt.length, 0);
});

test('a writable file with other names is still copied (never shared: it may be a user file)', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const user = path.join(t.dir, 'user.bin');
  await fsp.writeFile(user, 'user data');
  const staging = await store.makeStagingDir();
  await fsp.link(user, path.join(staging, 'f.bin'));
  const m = await store.ingestDir(staging);
  assert.notEqual(fs.statSync(store.objectPath(m.files[0]!.sha256)).ino, fs.statSync(user).ino);
  assert.equal(fs.statSync(user).mode & 0o777, 0o644, 'user file mode untouched');
  assert.equal(store.sharedStats.hashed + store.sharedStats.known, 0);
});

test('a corrupted shared object is caught by verify, and its item entry is quarantined too (never linked again)', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const items = directoryItemCache(path.join(store.root, 'items', 'resize'), { fsync: false });
  for (let i = 0; i < 3; i++) await items.put(key(i), value(i));
  const s = await stageLinks(store, items, [0, 1, 2]);
  const m = await store.ingestDir(s);
  await store.removeStagingDir(s);
  const bad = m.files.find((f) => f.path === 'px/1.px')!;
  // An in-place write (root ignores 0444): the object and the entry share the inode.
  const fd = fs.openSync(store.objectPath(bad.sha256), 'r+');
  fs.writeSync(fd, Buffer.from([0xff, 0xee]), 0, 2, 10);
  fs.closeSync(fd);

  const r = await store.verify();
  assert.deepEqual(r.corrupt, [bad.sha256]);
  assert.deepEqual(r.corruptItems, [`items/resize/${key(1).slice(0, 2)}/${key(1)}`]);
  assert.equal(await items.link!(key(1), path.join(t.dir, 'x.px'), BYTES), false, 'a quarantined entry is a miss');
  assert.equal(await items.get(key(1)), undefined);
  // The good ones are untouched and still verify.
  assert.deepEqual(await items.get(key(0)), value(0));
  const clean = await store.verify();
  assert.equal(clean.corrupt.length + (clean.corruptItems?.length ?? 0), 0);
});

test('editing a materialised shared output in the workspace never reaches the object; the next materialise reuses only untouched files', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  await fsp.mkdir(ws);
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const items = directoryItemCache(path.join(store.root, 'items', 'resize'), { fsync: false });
  for (let i = 0; i < 4; i++) await items.put(key(i), value(i));
  const s1 = await stageLinks(store, items, [0, 1, 2]);
  const m1 = await store.ingestDir(s1);
  const p1 = await store.materialize(m1, ws, 'out/resize', { kind: 'dir' });
  assert.ok(p1.ok);
  const edited = path.join(ws, 'out', 'resize', 'px', '1.px');
  const obj1 = store.objectPath(m1.files.find((f) => f.path === 'px/1.px')!.sha256);
  assert.notEqual(fs.statSync(edited).ino, fs.statSync(obj1).ino, 'workspace files are private copies');
  const fd = fs.openSync(edited, 'r+');
  fs.writeSync(fd, Buffer.from('edited'), 0, 6, 0);
  fs.closeSync(fd);
  assert.equal((await store.verify()).corrupt.length, 0, 'the object is intact');

  // Next run adds item 3: untouched files are kept (hard-linked from the old tree), the edited one is restored from the cache.
  const untouched = fs.statSync(path.join(ws, 'out', 'resize', 'px', '0.px')).ino;
  const s2 = await stageLinks(store, items, [0, 1, 2, 3]);
  const m2 = await store.ingestDir(s2);
  const p2 = await store.materialize(m2, ws, 'out/resize', { kind: 'dir', expected: p1.value.output, previous: m1 });
  assert.ok(p2.ok);
  assert.equal(p2.value.reused, 2, 'px/0 and px/2 kept; px/1 (edited), px/3 (new) and index.json (changed) restored');
  assert.ok(p2.value.backup !== undefined, 'the edited content was backed up first');
  assert.equal(fs.statSync(path.join(ws, 'out', 'resize', 'px', '0.px')).ino, untouched);
  for (const f of m2.files) assert.equal(await hashFile(path.join(ws, 'out', 'resize', f.path)), f.sha256, f.path);
  assert.equal(fs.readdirSync(path.join(ws, 'out')).length, 1, 'no temp siblings left');
});
