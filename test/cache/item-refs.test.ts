/**
 * Item references (issue 3): a built-in names item-cache entries as output
 * files (`ItemCache.refer`, `ItemRefs`) instead of linking them into its
 * staging dir. `ingestStaging` must store exactly what linking stored (same
 * manifest, the entry's inode as the object), recognise them next time
 * with stats only, copy entries it cannot trust to stay immutable, report
 * vanished and corrupt entries for a retry, and refuse malformed references.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { CacheStore, type ItemRefs, type OutputManifest } from '../../src/cache/store.js';
import { directoryItemCache, itemEntryFile } from '../../src/cache/item-cache.js';
import { hashFile } from '../../src/cache/manifest.js';
import { tempDir } from './helpers.js';
import { stageItemCache } from '../../src/stage-host/item-cache-for.js';
import type { ItemRef } from '../../src/stage-host/protocol.js';
import { computeKey } from '../../src/fingerprint.js';

const BYTES = 1000;
const value = (i: number): Buffer => Buffer.alloc(BYTES, i);
const key = (i: number): string => createHash('sha256').update(`item-${i}`).digest('hex');
const refsOf = (ids: readonly number[]): ItemRefs => ({ namespace: 'resize', refs: ids.map((i) => ({ path: `px/${i}.px`, key: key(i) })) });

/** The fingerprint of resize run `v` (records of distinct runs differ in `params.v`). */
const fpOf = (v: number) => ({ engine: 't', stage: { kind: 'builtin', name: 'resize', version: '1' }, params: { v }, inputs: {}, upstream: {}, env: {}, runtime: { platform: 'linux', arch: 'x64' } }) as const;
/** A record of resize run `v` storing `outputs`. */
const recordOf = (v: number, outputs: OutputManifest) => ({ key: computeKey(fpOf(v)), fingerprint: fpOf(v), stageId: 'resize', outputs, metrics: {}, log: '', startedAt: new Date().toISOString(), durationMs: 1 });

async function setup(n: number) {
  const t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const root = path.join(store.root, 'items', 'resize');
  const items = directoryItemCache(root, { fsync: false });
  for (let i = 0; i < n; i++) await items.put(key(i), value(i));
  return { t, store, root, items };
}

/** A staging dir with just an index (what resize leaves when every pack is referenced). */
async function staging(store: CacheStore, index: unknown): Promise<string> {
  const s = await store.makeStagingDir();
  await fsp.writeFile(path.join(s, 'index.json'), JSON.stringify(index));
  return s;
}

test('referenced entries are stored exactly as linked ones would be, sharing the inode; the next run only stats them', async () => {
  const { t, store, root, items } = await setup(5);
  await using _ = t;
  // The same outputs the old way: links in the staging dir.
  const linked = await store.makeStagingDir();
  await fsp.mkdir(path.join(linked, 'px'));
  for (let i = 0; i < 5; i++) assert.ok(await items.link!(key(i), path.join(linked, 'px', `${i}.px`), BYTES));
  await fsp.writeFile(path.join(linked, 'index.json'), JSON.stringify([0, 1, 2, 3, 4]));
  const viaLinks = await CacheStore.open(path.join(t.dir, 'other-cache')).then(async (other) => {
    // Another cache root, so this store's inode memo is untouched; manifests only depend on bytes, paths and modes.
    return other.ingestDir(linked);
  });

  const s1 = await staging(store, [0, 1, 2, 3, 4]);
  const r1 = await store.ingestStaging(s1, refsOf([0, 1, 2, 3, 4]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  const m1 = r1.value;
  assert.deepEqual(m1, viaLinks, 'same manifest (paths, sha256, sizes, modes) and hash');
  assert.deepEqual(store.sharedStats, { known: 0, hashed: 5, told: 0 });
  for (let i = 0; i < 5; i++) {
    const f = m1.files.find((x) => x.path === `px/${i}.px`)!;
    assert.equal(fs.statSync(store.objectPath(f.sha256)).ino, fs.statSync(itemEntryFile(root, key(i))).ino, 'the object is the entry inode');
    assert.equal(await hashFile(store.objectPath(f.sha256)), f.sha256);
  }
  assert.deepEqual(fs.readdirSync(s1), [], 'the staging dir was emptied (index moved); no entry was linked into it');

  // Next run (a new process): one new entry; the known ones cost stats, only the new one is hashed.
  await items.put(key(5), value(5));
  const again = await CacheStore.open(store.root);
  const s2 = await staging(again, [0, 1, 2, 3, 4, 5]);
  const r2 = await again.ingestStaging(s2, refsOf([0, 1, 2, 3, 4, 5]));
  assert.ok(r2.ok);
  assert.deepEqual(again.sharedStats, { known: 5, hashed: 1, told: 0 });
  assert.equal((await again.verify()).corrupt.length, 0);
});

test('a writable entry is copied, never shared; a vanished entry is reported for a retry', async () => {
  const { t, store, root } = await setup(3);
  await using _ = t;
  fs.chmodSync(itemEntryFile(root, key(1)), 0o644);
  fs.rmSync(itemEntryFile(root, key(2)));
  const s = await staging(store, [0, 1, 2]);
  const r = await store.ingestStaging(s, refsOf([0, 1, 2]));
  assert.ok(!r.ok);
  assert.deepEqual(r.error, [{ reason: 'missing-item-entry', entry: `items/resize/${key(2).slice(0, 2)}/${key(2)}`, path: 'px/2.px' }]);

  const s2 = await staging(store, [0, 1]);
  const ok = await store.ingestStaging(s2, refsOf([0, 1]));
  if (!ok.ok) throw new Error(JSON.stringify(ok.error));
  const copied = ok.value.files.find((f) => f.path === 'px/1.px')!;
  assert.notEqual(fs.statSync(store.objectPath(copied.sha256)).ino, fs.statSync(itemEntryFile(root, key(1))).ino, 'a writable entry is not the object');
  assert.equal(fs.statSync(itemEntryFile(root, key(1))).mode & 0o777, 0o644, 'and is left as it was');
  assert.equal(await hashFile(store.objectPath(copied.sha256)), copied.sha256);
});

test('a referenced entry with a wrong trailer is quarantined and reported, not stored', async () => {
  const { t, store, root, items } = await setup(2);
  await using _ = t;
  const file = itemEntryFile(root, key(1));
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 7);
  fs.closeSync(fd);
  const s = await staging(store, [0, 1]);
  const r = await store.ingestStaging(s, refsOf([0, 1]));
  assert.ok(!r.ok);
  assert.deepEqual(r.error, [{ reason: 'corrupt-item-entry', entry: `items/resize/${key(1).slice(0, 2)}/${key(1)}`, path: 'px/1.px' }]);
  assert.equal(fs.existsSync(file), false, 'moved to quarantine');
  assert.equal(await items.get(key(1)), undefined);
});

test('malformed references are bugs in the stage: thrown', async () => {
  const { t, store } = await setup(2);
  await using _ = t;
  const bad = async (refs: ItemRefs, stagedFile?: string): Promise<void> => {
    const s = await staging(store, []);
    if (stagedFile !== undefined) await fsp.writeFile(path.join(s, stagedFile), 'x');
    await assert.rejects(store.ingestStaging(s, refs));
  };
  await bad({ namespace: 'resize', refs: [{ path: '../escape.px', key: key(0) }] });
  await bad({ namespace: 'resize', refs: [{ path: '/abs.px', key: key(0) }] });
  await bad({ namespace: 'resize', refs: [{ path: 'a//b.px', key: key(0) }] });
  await bad({ namespace: 'resize', refs: [{ path: 'a.px', key: key(0) }, { path: 'a.px', key: key(1) }] });
  await bad({ namespace: 'resize', refs: [{ path: 'index.json', key: key(0) }] }, undefined);
  await bad({ namespace: '../x', refs: [{ path: 'a.px', key: key(0) }] });
  await bad({ namespace: 'resize', refs: [{ path: 'a.px', key: '../../etc' }] });
});

test('a stat hint spares the entry stat only when the memo names an object that is that very inode; a stale hint falls back to stat', async () => {
  const { t, store, root, items } = await setup(3);
  await using _ = t;
  const hinted = (ids: readonly number[]): ItemRefs => ({
    namespace: 'resize',
    refs: ids.map((i) => {
      const st = fs.lstatSync(itemEntryFile(root, key(i)));
      return { path: `px/${i}.px`, key: key(i), stat: [st.dev, st.ino, st.size, st.mtimeMs] as const };
    }),
  });
  const r1 = await store.ingestStaging(await staging(store, [0, 1, 2]), hinted([0, 1, 2]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  assert.deepEqual(store.sharedStats, { known: 0, hashed: 3, told: 0 }, 'unknown inodes: hashed as without hints');

  // Next run with hints: all known, same manifest; the hint alone suffices (entry 2's file is moved away after the
  // hint was taken; its object is still that inode, so its bytes are right).
  const hints = hinted([0, 1, 2]);
  fs.renameSync(itemEntryFile(root, key(2)), path.join(t.dir, 'moved-away'));
  const again = await CacheStore.open(store.root);
  const r2 = await again.ingestStaging(await staging(again, [0, 1, 2]), hints);
  if (!r2.ok) throw new Error(JSON.stringify(r2.error));
  assert.deepEqual(again.sharedStats, { known: 3, hashed: 0, told: 0 });
  assert.deepEqual(r2.value.files.filter((f) => f.path !== 'index.json'), r1.value.files.filter((f) => f.path !== 'index.json'));

  // A stale hint: entry 1 was replaced by a new inode (same bytes) after the hint was taken, and its old inode is no
  // object any more. The hint names nothing the memo vouches for, so the entry is stat'ed (and its new inode hashed).
  const stale = hinted([0, 1]);
  const obj1 = r1.value.files.find((f) => f.path === 'px/1.px')!;
  fs.rmSync(itemEntryFile(root, key(1)), { force: true });
  fs.rmSync(again.objectPath(obj1.sha256), { force: true });
  await items.put(key(1), value(1));
  const third = await CacheStore.open(store.root);
  const r3 = await third.ingestStaging(await staging(third, [0, 1]), stale);
  if (!r3.ok) throw new Error(JSON.stringify(r3.error));
  assert.deepEqual(third.sharedStats, { known: 1, hashed: 1, told: 0 });
  assert.equal(r3.value.files.find((f) => f.path === 'px/1.px')!.sha256, obj1.sha256, 'same bytes, same object name');
  assert.equal(fs.statSync(third.objectPath(obj1.sha256)).ino, fs.statSync(itemEntryFile(root, key(1))).ino, 'the new inode is the object now');
  assert.equal((await third.verify()).corrupt.length, 0);
});

test('objects a kept record references are not marked used again; the others are (their ctime moves)', async () => {
  const { t, store } = await setup(4);
  await using _ = t;
  const r1 = await store.ingestStaging(await staging(store, [0, 1, 2, 3]), refsOf([0, 1, 2, 3]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  const sha = (i: number) => r1.value.files.find((f) => f.path === `px/${i}.px`)!.sha256;
  const ctime = (i: number) => fs.statSync(store.objectPath(sha(i))).ctimeMs;
  const before = [0, 1, 2, 3].map(ctime);
  await new Promise((r) => setTimeout(r, 20));
  const again = await CacheStore.open(store.root);
  const r2 = await again.ingestStaging(await staging(again, [0, 1, 2, 3]), refsOf([0, 1, 2, 3]), new Set([sha(0), sha(1)]));
  assert.ok(r2.ok);
  assert.deepEqual(again.sharedStats, { known: 4, hashed: 0, told: 0 });
  assert.equal(ctime(0), before[0], 'kept: untouched');
  assert.equal(ctime(1), before[1], 'kept: untouched');
  assert.ok(ctime(2) > before[2]!, 'not kept: marked used');
  assert.ok(ctime(3) > before[3]!, 'not kept: marked used');
});

test('writeRecord stats only the objects the ingest could not vouch for (kept and found present are trusted)', async () => {
  const { t, store } = await setup(3);
  await using _ = t;
  const r1 = await store.ingestStaging(await staging(store, [0, 1, 2]), refsOf([0, 1, 2]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  const sha = (i: number) => r1.value.files.find((f) => f.path === `px/${i}.px`)!.sha256;
  const again = await CacheStore.open(store.root);
  const r2 = await again.ingestStaging(await staging(again, [0, 1, 2]), refsOf([0, 1, 2]), new Set([sha(0)]));
  if (!r2.ok) throw new Error(JSON.stringify(r2.error));
  // Outside the model (gc never removes a kept record's objects): both vanish after the ingest. Only the one
  // that was not vouched for is noticed at write time; a reader still checks every object.
  fs.rmSync(again.objectPath(sha(1)));
  const refused = await again.writeRecord(recordOf(0, r2.value));
  assert.equal(refused.ok, false);
  if (!refused.ok) assert.equal(refused.error.sha256, sha(1));
  const back = await again.ingestStaging(await staging(again, [0, 1, 2]), refsOf([0, 1, 2]), new Set([sha(0)]));
  if (!back.ok) throw new Error(JSON.stringify(back.error));
  fs.rmSync(again.objectPath(sha(0)));
  assert.equal((await again.writeRecord(recordOf(0, back.value))).ok, true, 'vouched for: not stat\'ed again');
  assert.equal(await again.readRecord(computeKey(fpOf(0))), undefined, 'but unusable on read: the stage reruns');
  // A manifest the store did not make (a copy) gets every object checked.
  assert.equal((await again.writeRecord(recordOf(0, { ...back.value }))).ok, false);
});

test('an object a concurrent verify quarantines after the ingest vouched for it (kept record) is noticed by writeRecord', async () => {
  const { t, store } = await setup(2);
  await using _ = t;
  const r1 = await store.ingestStaging(await staging(store, [0, 1]), refsOf([0, 1]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  assert.ok((await store.writeRecord(recordOf(1, r1.value))).ok);
  const sha0 = r1.value.files.find((f) => f.path === 'px/0.px')!.sha256;
  // The next run: the workspace state names record 1, so its objects are kept; the item-key memo names them.
  const run = await CacheStore.open(store.root);
  const kept = await run.keptObjects(computeKey(fpOf(1)));
  assert.ok(kept?.has(sha0));
  const r2 = await run.ingestStaging(await staging(run, [0, 1]), refsOf([0, 1]), kept);
  if (!r2.ok) throw new Error(JSON.stringify(r2.error));
  // Meanwhile `cache verify` (another process) finds object 0 corrupt and moves it to quarantine.
  const verifier = await CacheStore.open(store.root);
  await verifier.quarantine(verifier.objectPath(sha0), sha0);
  const w = await run.writeRecord(recordOf(2, r2.value));
  assert.equal(w.ok, false, 'no record names an object quarantined before it was written');
  if (!w.ok) assert.equal(w.error.sha256, sha0);
});

test('vouched objects are stat\'ed by writeRecord after all when the kept record was replaced since (same key, another workspace)', async () => {
  const { t, store } = await setup(3);
  await using _ = t;
  const r1 = await store.ingestStaging(await staging(store, [0, 1]), refsOf([0, 1]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  assert.ok((await store.writeRecord(recordOf(1, r1.value))).ok);
  const run = await CacheStore.open(store.root);
  const kept = await run.keptObjects(computeKey(fpOf(1)));
  const r2 = await run.ingestStaging(await staging(run, [0, 1]), refsOf([0, 1]), kept);
  if (!r2.ok) throw new Error(JSON.stringify(r2.error));
  // Another workspace reruns the stage with the same key (forced) and its record, with other outputs, replaces
  // record 1. Object 0 is then referenced by no record and old (kept objects are not marked used): what a
  // concurrent gc does to it.
  const other = await CacheStore.open(store.root);
  const o = await other.ingestStaging(await staging(other, [2]), refsOf([2]));
  if (!o.ok) throw new Error(JSON.stringify(o.error));
  assert.ok((await other.writeRecord(recordOf(1, o.value))).ok);
  const sha0 = r1.value.files.find((f) => f.path === 'px/0.px')!.sha256;
  fs.rmSync(other.objectPath(sha0));
  const w = await run.writeRecord(recordOf(2, r2.value));
  assert.equal(w.ok, false, 'no record names objects removed before it was written');
  if (!w.ok) assert.equal(w.error.sha256, sha0);
});

test('item-key memo: a stored key needs no look at its entry, in the stage or the store; a vanished object drops the key', async () => {
  const { t, store, root, items } = await setup(3);
  await using _ = t;
  const r1 = await store.ingestStaging(await staging(store, [0, 1, 2]), refsOf([0, 1, 2]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  assert.ok(fs.existsSync(store.itemMemoPath), 'the keys stored are remembered');
  const sha = (i: number) => r1.value.files.find((f) => f.path === `px/${i}.px`)!.sha256;
  /** What the stage host's `refer` answers for these keys, with the refs it records. */
  const refer = (ids: readonly number[]) => {
    const refs: ItemRef[] = [];
    const cache = stageItemCache(store.root, 'resize', refs);
    return { answers: ids.map((i) => cache.refer!(key(i), `px/${i}.px`, BYTES)), refs: { namespace: 'resize', refs } as ItemRefs };
  };

  // Every entry moved away: the memo still answers for each key, and the store stores the same manifest from
  // the objects alone (one stat each; none at all for the objects a kept record references).
  const away = path.join(t.dir, 'away');
  fs.mkdirSync(away);
  for (const i of [0, 1, 2]) fs.renameSync(itemEntryFile(root, key(i)), path.join(away, String(i)));
  const a = refer([0, 1, 2]);
  assert.deepEqual(a.answers, [true, true, true]);
  const s2 = await CacheStore.open(store.root);
  const r2 = await s2.ingestStaging(await staging(s2, [0, 1, 2]), a.refs, new Set([sha(0)]));
  if (!r2.ok) throw new Error(JSON.stringify(r2.error));
  assert.deepEqual(r2.value, r1.value, 'same manifest');
  assert.deepEqual(s2.sharedStats, { known: 3, hashed: 0, told: 0 });

  // Object 1 is gone too (e.g. quarantined): the key is dropped and reported missing (the stage runs again);
  // the next stage run looks at the entry again: missing, so the stage recomputes that item.
  fs.rmSync(s2.objectPath(sha(1)));
  const s3 = await CacheStore.open(store.root);
  const r3 = await s3.ingestStaging(await staging(s3, [0, 1, 2]), refer([0, 1, 2]).refs);
  assert.ok(!r3.ok);
  assert.deepEqual(r3.error.map((c) => [c.reason, c.path]), [['missing-item-entry', 'px/1.px']]);
  assert.deepEqual(refer([0, 1, 2]).answers, [true, false, true], 'key 1 is no longer taken on trust');

  // The stage recomputes item 1 (same bytes): stored again from its new entry, and remembered again.
  await items.put(key(1), value(1));
  const s4 = await CacheStore.open(store.root);
  const r4 = await s4.ingestStaging(await staging(s4, [0, 1, 2]), refer([0, 1, 2]).refs);
  if (!r4.ok) throw new Error(JSON.stringify(r4.error));
  assert.deepEqual(r4.value, r1.value);
  assert.deepEqual(s4.sharedStats, { known: 2, hashed: 1, told: 0 });
  assert.equal(await hashFile(s4.objectPath(sha(1))), sha(1));
  assert.deepEqual(refer([0, 1, 2]).answers, [true, true, true]);
  assert.equal((await s4.verify()).corrupt.length, 0);
});

test('a flipped byte in the item-key memo makes it load empty: keys are taken on trust no more, the next ingest stores the same manifest', async () => {
  const { t, store } = await setup(3);
  await using _ = t;
  const r1 = await store.ingestStaging(await staging(store, [0, 1, 2]), refsOf([0, 1, 2]));
  if (!r1.ok) throw new Error(JSON.stringify(r1.error));
  const memo = fs.readFileSync(store.itemMemoPath);
  for (const at of [0, 30, Math.floor(memo.length / 2), memo.length - 1]) {
    const bad = Buffer.from(memo);
    bad[at]! ^= 0x10;
    fs.writeFileSync(store.itemMemoPath, bad);
    const refs: ItemRef[] = [];
    const cache = stageItemCache(store.root, 'resize', refs);
    fs.renameSync(itemEntryFile(path.join(store.root, 'items', 'resize'), key(1)), path.join(t.dir, 'away'));
    // Entry 1 is gone and the memo is unreadable: the stage must recompute it, not trust the key.
    assert.deepEqual([0, 1, 2].map((i) => cache.refer!(key(i), `px/${i}.px`, BYTES)), [true, false, true], `flip at ${at}`);
    fs.renameSync(path.join(t.dir, 'away'), itemEntryFile(path.join(store.root, 'items', 'resize'), key(1)));
    const again = await CacheStore.open(store.root);
    const r = await again.ingestStaging(await staging(again, [0, 1, 2]), refsOf([0, 1, 2]));
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    assert.deepEqual(r.value, r1.value, `flip at ${at}`);
  }
});

test('entries the stage host wrote in this run are adopted under the hash it computed, unread; an entry replaced since is hashed as before', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const root = path.join(store.root, 'items', 'resize');
  const refs: ItemRef[] = [];
  const cache = stageItemCache(store.root, 'resize', refs);
  for (const i of [0, 1, 2]) await cache.put(key(i), value(i));
  for (const i of [0, 1, 2]) assert.ok(cache.refer!(key(i), `px/${i}.px`, BYTES));
  for (const [n, r] of refs.entries()) assert.equal(r.sha256, await hashFile(itemEntryFile(root, key(n))), 'the hash of the entry file, trailer included');

  // Entry 2 is replaced by another writer after the host saw it (same bytes: a new inode, so the hint no longer fits).
  const e2 = itemEntryFile(root, key(2));
  const copy = `${e2}.copy`;
  fs.copyFileSync(e2, copy);
  fs.chmodSync(copy, 0o444);
  fs.renameSync(copy, e2);
  const r = await store.ingestStaging(await staging(store, [0, 1, 2]), { namespace: 'resize', refs });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  assert.deepEqual(store.sharedStats, { known: 0, hashed: 1, told: 2 });
  const stored = r.value.files;
  for (const i of [0, 1, 2]) {
    const f = stored.find((x) => x.path === `px/${i}.px`)!;
    assert.equal(await hashFile(store.objectPath(f.sha256)), f.sha256, `object ${i} holds the bytes its name says`);
    assert.equal(fs.statSync(store.objectPath(f.sha256)).ino, fs.statSync(itemEntryFile(root, key(i))).ino, `object ${i} is the entry's inode`);
  }
  assert.equal((await store.verify()).corrupt.length, 0);

  // Without the host's hash (e.g. a hint from an older host), the same entries are read and hashed.
  const other = await CacheStore.open(path.join(t.dir, 'cache2'));
  const root2 = path.join(other.root, 'items', 'resize');
  const plain = directoryItemCache(root2, { fsync: false });
  for (const i of [0, 1]) await plain.put(key(i), value(i));
  const hinted = [0, 1].map((i) => {
    const st = fs.statSync(itemEntryFile(root2, key(i)));
    return { path: `px/${i}.px`, key: key(i), stat: [st.dev, st.ino, st.size, st.mtimeMs] as const };
  });
  const r2 = await other.ingestStaging(await staging(other, [0, 1]), { namespace: 'resize', refs: hinted });
  assert.ok(r2.ok);
  assert.deepEqual(other.sharedStats, { known: 0, hashed: 2, told: 0 });
});

test('item cache onWrite: the hash of the file as written, computed in the pass that makes the trailer', async () => {
  await using t = await tempDir();
  const seen = new Map<string, string>();
  for (const fsync of [false, true]) {
    const root = path.join(t.dir, `items-${fsync}`);
    const items = directoryItemCache(root, { fsync, onWrite: (k, sha) => seen.set(`${fsync}/${k}`, sha) });
    await items.put(key(7), value(7));
    assert.equal(seen.get(`${fsync}/${key(7)}`), await hashFile(itemEntryFile(root, key(7))));
    assert.deepEqual(await items.get(key(7)), value(7));
  }
});

test('flushSoon: an entry flushed ahead is not flushed again at adoption, unless it changed since', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const root = path.join(store.root, 'items', 'resize');
  const refs: ItemRef[] = [];
  const wrote: string[] = [];
  const cache = stageItemCache(store.root, 'resize', refs, (f) => wrote.push(f));
  for (const i of [0, 1, 2]) await cache.put(key(i), value(i));
  assert.deepEqual(wrote, [0, 1, 2].map((i) => itemEntryFile(root, key(i))));
  // Entry 2 first: its flush starts at once (not queued behind two fdatasyncs), so the wait below covers only its open and stat.
  store.flushSoon([wrote[2]!]);
  store.flushSoon(wrote); // entry 2 again: flushed once
  for (const i of [0, 1, 2]) assert.ok(cache.refer!(key(i), `px/${i}.px`, BYTES));
  // Entry 2 is rewritten after its flush took its signature (same bytes, new inode): flushed again at adoption.
  await new Promise((r) => setTimeout(r, 20));
  const e2 = itemEntryFile(root, key(2));
  fs.copyFileSync(e2, `${e2}.copy`);
  fs.chmodSync(`${e2}.copy`, 0o444);
  fs.renameSync(`${e2}.copy`, e2);
  const r = await store.ingestStaging(await staging(store, [0, 1, 2]), { namespace: 'resize', refs });
  assert.ok(r.ok);
  assert.deepEqual(store.flushStats, { ahead: 2, atAdoption: 1 });
  store.flushSoon([path.join(t.dir, 'no-such-file')]); // best effort: nothing thrown, nothing flushed
  assert.equal((await store.verify()).corrupt.length, 0);
});
