import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { CacheStore, type NewRunRecord, type OutputManifest, makeManifest, subManifest } from '../../src/cache/store.js';
import { WorkspaceState } from '../../src/cache/workspace-state.js';
import { computeKey, type StageFingerprint } from '../../src/fingerprint.js';
import { tempDir, write, read } from './helpers.js';

const sha = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

const fp: StageFingerprint = {
  engine: 'test',
  stage: { kind: 'builtin', name: 'resize', version: '1' },
  params: {},
  inputs: {},
  upstream: {},
  env: {},
  runtime: { platform: 'linux', arch: 'x64' },
};

function record(outputs: OutputManifest, extra: Partial<NewRunRecord> = {}): NewRunRecord {
  return { key: computeKey(fp), fingerprint: fp, stageId: 'resize', outputs, metrics: { acc: 0.5 }, log: 'ok\n', startedAt: new Date().toISOString(), durationMs: 12, ...extra };
}

/** A store under `dir`/cache holding one record (`record`, key `computeKey(fp)`) of a.txt and b.txt. */
async function storeWithRecord(dir: string): Promise<{ store: CacheStore; m: OutputManifest }> {
  const store = await CacheStore.open(path.join(dir, 'cache'));
  const s = await store.makeStagingDir();
  write(s, 'a.txt', 'alpha');
  write(s, 'b.txt', 'beta');
  const m = await store.ingestDir(s);
  assert.ok((await store.writeRecord(record(m))).ok);
  return { store, m };
}

test('ingestDir moves staged files into read-only objects; record round-trips', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const stage = await store.makeStagingDir();
  write(stage, 'a.txt', 'alpha');
  write(stage, 'sub/b.bin', 'beta');
  write(stage, 'sub/dup.txt', 'alpha');
  const m = await store.ingestDir(stage);
  assert.deepEqual(m.files.map((f) => [f.path, f.sha256, f.size]), [
    ['a.txt', sha('alpha'), 5],
    ['sub/b.bin', sha('beta'), 4],
    ['sub/dup.txt', sha('alpha'), 5],
  ]);
  assert.equal(fs.existsSync(path.join(stage, 'a.txt')), false, 'moved, not copied');
  assert.equal(fs.statSync(store.objectPath(sha('alpha'))).mode & 0o777, 0o444);
  assert.equal(await store.readRecord(computeKey(fp)), undefined);
  const w = await store.writeRecord(record(m));
  assert.ok(w.ok);
  const back = await store.readRecord(computeKey(fp));
  assert.deepEqual(back?.outputs, m);
  assert.equal(back?.metrics.acc, 0.5);
  assert.equal(await store.readLog(back!), 'ok\n');
  await store.removeStagingDir(stage);
});

test('big logs are stored as objects', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const big = 'line\n'.repeat(30_000);
  const w = await store.writeRecord(record(makeManifest([]), { log: big }));
  assert.ok(w.ok);
  const rec = await store.readRecord(computeKey(fp));
  assert.equal(typeof rec!.log, 'object');
  assert.equal(await store.readLog(rec!), big);
});

test('a record naming a missing object is refused on write and unusable on read', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const m = makeManifest([{ path: 'x', sha256: sha('nope'), size: 4, mode: 0o644 }]);
  const w = await store.writeRecord(record(m));
  assert.deepEqual(w, { ok: false, error: { reason: 'object-missing', sha256: sha('nope'), path: 'x' } });
  assert.equal(fs.existsSync(store.recordPath(computeKey(fp))), false);
  // A key that is not the fingerprint's hash is a caller bug.
  await assert.rejects(store.writeRecord({ ...record(makeManifest([])), key: computeKey({ ...fp, engine: 'other' }) }), /not the hash/);
});

test('ingestPaths copies workspace outs (user files untouched); missing outs are all reported', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  write(ws, 'model/w.bin', 'weights');
  write(ws, 'metrics.json', '{"acc":1}');
  const r = await store.ingestPaths(ws, ['model', 'metrics.json']);
  assert.ok(r.ok);
  assert.deepEqual(r.value.files.map((f) => f.path), ['metrics.json', 'model/w.bin']);
  assert.equal(read(ws, 'model/w.bin'), 'weights');
  assert.equal(fs.statSync(path.join(ws, 'model/w.bin')).nlink, 1, 'not linked to the object');
  assert.deepEqual(subManifest(r.value, 'model').files.map((f) => f.path), ['w.bin']);
  assert.deepEqual(subManifest(r.value, 'metrics.json').files.map((f) => f.path), ['']);
  const bad = await store.ingestPaths(ws, ['a.txt', 'model', 'b/c']);
  assert.deepEqual(bad, { ok: false, error: [{ reason: 'missing-output', path: 'a.txt' }, { reason: 'missing-output', path: 'b/c' }] });
});

test('materialize round trip by copy (default on ext4) and by hardlink, with modes kept', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const stage = await store.makeStagingDir();
  write(stage, 'a.txt', 'alpha');
  write(stage, 'd/run.sh', '#!/bin/sh\n');
  fs.chmodSync(path.join(stage, 'd/run.sh'), 0o755);
  const m = await store.ingestDir(stage);

  const c = await store.materialize(m, ws, 'out/s');
  assert.ok(c.ok);
  assert.ok(c.value.mode === 'copy' || c.value.mode === 'reflink');
  assert.equal(read(ws, 'out/s/a.txt'), 'alpha');
  assert.equal(fs.statSync(path.join(ws, 'out/s/d/run.sh')).mode & 0o777, 0o755);
  assert.equal(fs.statSync(path.join(ws, 'out/s/a.txt')).nlink, 1);
  assert.deepEqual(c.value.output.files.map((f) => f[0]), ['a.txt', 'd/run.sh']);

  const h = await store.materialize(m, ws, 'out/h', { modes: ['hardlink', 'copy'] });
  assert.ok(h.ok);
  assert.deepEqual(h.value.counts, { hardlink: 1, reflink: 0, copy: 1 }, 'executables are copied, never hardlinked');
  assert.equal(fs.statSync(path.join(ws, 'out/h/a.txt')).ino, fs.statSync(store.objectPath(sha('alpha'))).ino);

  // Copy fallback: hardlinks across filesystems fail (EXDEV); simulate the same fallback with a mode list that cannot link.
  const f = await store.materialize(subManifest({ files: m.files.map((x) => ({ ...x, path: `k/${x.path}` })), hash: '' }, 'k/a.txt'), ws, 'single.txt');
  assert.ok(f.ok);
  assert.equal(f.value.output.kind, 'file');
  assert.equal(read(ws, 'single.txt'), 'alpha');
});

test('materialize replaces our previous output atomically and backs up content that is not ours', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const ingest = async (files: Record<string, string>): Promise<OutputManifest> => {
    const s = await store.makeStagingDir();
    for (const [k, v] of Object.entries(files)) write(s, k, v);
    return store.ingestDir(s);
  };
  const v1 = await ingest({ 'a.txt': 'one', 'old.txt': 'gone later' });
  const v2 = await ingest({ 'a.txt': 'two' });
  const state = await WorkspaceState.open(store.root, ws);

  // A user file sits where the output goes: it is backed up, then replaced.
  write(ws, 'out/a.txt', 'USER DATA');
  const r1 = await store.materialize(v1, ws, 'out', { stageId: 's' });
  assert.ok(r1.ok);
  assert.ok(r1.value.backup, 'backup recorded');
  const backups = await state.backups();
  assert.equal(backups.length, 1);
  assert.equal(backups[0]!.path, 'out');
  assert.equal(backups[0]!.stageId, 's');
  const saved = backups[0]!.manifest.files[0]!;
  assert.equal(fs.readFileSync(store.objectPath(saved.sha256), 'utf8'), 'USER DATA');

  // Replacing our own output: no backup; stale files vanish.
  const r2 = await store.materialize(v2, ws, 'out', { expected: r1.value.output });
  assert.ok(r2.ok);
  assert.equal(r2.value.backup, undefined);
  assert.equal(read(ws, 'out/a.txt'), 'two');
  assert.equal(fs.existsSync(path.join(ws, 'out/old.txt')), false);
  assert.deepEqual(fs.readdirSync(ws), ['out'], 'no temp siblings left');

  // The user edits our output: the stat check sees it, and restoring backs the edit up first.
  state.set('s', { key: 'k', outputsHash: v2.hash, outputs: [r2.value.output], at: new Date().toISOString() });
  assert.deepEqual(state.check('s'), []);
  write(ws, 'out/a.txt', 'edited!');
  write(ws, 'out/extra.txt', 'x');
  assert.deepEqual(state.check('s'), [
    { path: 'out/a.txt', change: 'modified' },
    { path: 'out/extra.txt', change: 'added' },
  ]);
  const r3 = await store.materialize(v2, ws, 'out', { expected: r2.value.output });
  assert.ok(r3.ok);
  assert.ok(r3.value.backup);
  assert.equal(read(ws, 'out/a.txt'), 'two');
  assert.equal((await state.backups()).length, 2);
  await state.save();
  const reopened = await WorkspaceState.open(store.root, ws);
  assert.equal(reopened.get('s')?.outputsHash, v2.hash);
});

test('materialize refuses the workspace root and paths outside it', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const m: OutputManifest = { files: [], hash: 'x' };
  for (const d of ['.', '..', '../x']) {
    const r = await store.materialize(m, path.join(t.dir, 'ws'), d);
    assert.equal(r.ok, false, d);
  }
});

test('manifest order equals the hasher listing order (canonical: "/" sorts first), so they compare entry by entry', async () => {
  await using t = await tempDir();
  const { FileHasher } = await import('../../src/hash/file-hasher.js');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const names = ['a/b', 'a-c', 'a.d', 'ab', 'a/a/z', 'B', 'é'];
  const ws = path.join(t.dir, 'ws');
  const s = await store.makeStagingDir();
  for (const n of names) {
    write(s, n, n);
    write(ws, `out/${n}`, n);
  }
  const m = await store.ingestDir(s);
  const h = await FileHasher.open(path.join(t.dir, 'memo.bin'));
  const listing = await h.listDep(ws, 'out');
  assert.deepEqual(listing.entries.map((e) => e[0]), m.files.map((f) => f.path));
  assert.deepEqual(m.files.map((f) => f.path), ['B', 'a/a/z', 'a/b', 'a-c', 'a.d', 'ab', 'é']);
  assert.deepEqual(listing.entries.map((e) => e[1]), m.files.map((f) => f.sha256));
});

test('backupIfForeign saves user content before a cmd overwrites its outs, and skips our own output', async () => {
  await using t = await tempDir();
  const { backupIfForeign } = await import('../../src/cache/materialize.js');
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  assert.equal(await backupIfForeign(store, ws, 'model.bin'), undefined, 'nothing there');
  write(ws, 'model.bin', 'hand-made model');
  const b = await backupIfForeign(store, ws, 'model.bin', { stageId: 'train' });
  assert.ok(b);
  const state = await WorkspaceState.open(store.root, ws);
  const [rec] = await state.backups();
  assert.equal(rec!.path, 'model.bin');
  assert.deepEqual(rec!.manifest.files.map((f) => [f.path, f.sha256]), [['', sha('hand-made model')]]);
  assert.equal(read(ws, 'model.bin'), 'hand-made model', 'untouched');
  // Restorable from the backup.
  const r = await store.materialize(rec!.manifest, ws, 'restored.bin');
  assert.ok(r.ok);
  assert.equal(read(ws, 'restored.bin'), 'hand-made model');
  // Our own output (matching state) is not backed up.
  assert.equal(await backupIfForeign(store, ws, 'restored.bin', { expected: r.value.output }), undefined);
});

test('ingestDir stores a staged symlink as a regular read-only object with the target bytes', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const target = write(t.dir, 'elsewhere/data.txt', 'linked bytes');
  const s = await store.makeStagingDir();
  fs.symlinkSync(target, path.join(s, 'link.txt'));
  const m = await store.ingestDir(s);
  assert.deepEqual(m.files.map((f) => [f.path, f.sha256]), [['link.txt', sha('linked bytes')]]);
  const obj = fs.lstatSync(store.objectPath(sha('linked bytes')));
  assert.ok(obj.isFile());
  assert.equal(read(t.dir, 'elsewhere/data.txt'), 'linked bytes', 'target untouched');
  assert.equal(fs.statSync(target).mode & 0o222, 0o200, 'target not made read-only');
});

test('a record edited by hand (fingerprint or manifest no longer matching) is not used', async () => {
  await using t = await tempDir();
  const { store, m } = await storeWithRecord(t.dir);
  const file = store.recordPath(computeKey(fp));
  const good = fs.readFileSync(file, 'utf8');
  const rec = JSON.parse(good);
  rec.fingerprint.params = { lr: 1 };
  fs.writeFileSync(file, JSON.stringify(rec));
  assert.equal(await store.readRecord(computeKey(fp)), undefined, 'fingerprint does not hash to the key');
  const rec2 = JSON.parse(good);
  rec2.outputs.files = rec2.outputs.files.slice(1);
  fs.writeFileSync(file, JSON.stringify(rec2));
  assert.equal(await store.readRecord(computeKey(fp)), undefined, 'manifest hash does not match its files');
  const v = await store.verify();
  assert.deepEqual(v.badRecords, [computeKey(fp)]);
  assert.equal(fs.existsSync(file), false, 'quarantined');
});

test('ingesting many files: concurrent adoption keeps order, dedupes, leaves no temp files', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  for (let i = 0; i < 300; i++) write(ws, `o/d${i % 7}/f${i}.txt`, `v${i % 50}`); // 50 distinct contents
  const a = await store.ingestPaths(ws, ['o']);
  const b = await store.ingestPaths(ws, ['o']);
  assert.ok(a.ok && b.ok);
  assert.deepEqual(a.value, b.value);
  assert.equal(a.value.files.length, 300);
  assert.deepEqual(a.value.files.map((f) => f.path), [...a.value.files.map((f) => f.path)].sort((x, y) => (x.replace(/\//g, '\0') < y.replace(/\//g, '\0') ? -1 : 1)));
  assert.deepEqual(fs.readdirSync(store.tmpDir), []);
  const v = await store.verify();
  assert.equal(v.objects, 50);
  const m = await store.materialize(subManifest(a.value, 'o'), ws, 'copy');
  assert.ok(m.ok);
  assert.equal(read(ws, 'copy/d3/f10.txt'), 'v10');
  assert.equal(m.value.output.files.length, 300);
});

test('readRecord serves a record it already checked while the file is unchanged, and reads it again once the file changes', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const s = await store.makeStagingDir();
  write(s, 'a.txt', 'alpha');
  const m = await store.ingestDir(s);
  assert.ok((await store.writeRecord(record(m, { metrics: { acc: 0.5 } }))).ok);
  const key = computeKey(fp);
  const first = await store.readRecord(key);
  assert.equal(first?.metrics['acc'], 0.5);
  assert.equal(await store.readRecord(key, { checkObjects: false }), first, 'same parsed record, not parsed again');
  // A fresh store: a prefetch and two readers at once share one read.
  const other = await CacheStore.open(store.root);
  other.prefetchRecords([key, '0'.repeat(64)]);
  const [x, y] = await Promise.all([other.readRecord(key), other.readRecord(key, { checkObjects: false })]);
  assert.equal(x, y);
  assert.deepEqual(x, first);
  // A flipped digit of the same length, written in place: same inode and size, new mtime.
  const file = store.recordPath(key);
  const text = fs.readFileSync(file, 'utf8');
  await new Promise((r) => setTimeout(r, 5));
  fs.writeFileSync(file, text.replace('"acc":0.5', '"acc":0.7'));
  assert.equal(await store.readRecord(key), undefined, 'the changed file is read again and fails its checksum');
  // Another process rewrites the record (a new inode): read afresh.
  fs.rmSync(file);
  assert.ok((await store.writeRecord(record(m, { metrics: { acc: 0.25 } }))).ok);
  assert.equal((await store.readRecord(key))?.metrics['acc'], 0.25);
  // Gone: nothing, whatever was read before.
  fs.rmSync(file);
  assert.equal(await store.readRecord(key), undefined);
});

test('keptObjects: a record\'s objects, until anything is quarantined after the record was written', async () => {
  await using t = await tempDir();
  const { store, m } = await storeWithRecord(t.dir);
  const key = computeKey(fp);
  assert.deepEqual([...((await store.keptObjects(key)) ?? [])].sort(), [sha('alpha'), sha('beta')].sort());
  assert.equal(await store.keptObjects('0'.repeat(64)), undefined, 'no record');
  await new Promise((r) => setTimeout(r, 5));
  // verify finds an object corrupt and quarantines it: the record's objects are no longer taken on trust.
  fs.chmodSync(store.objectPath(sha('beta')), 0o644);
  fs.writeFileSync(store.objectPath(sha('beta')), 'beTa');
  assert.deepEqual((await store.verify()).corrupt, [sha('beta')]);
  assert.equal(await store.keptObjects(key), undefined);
  // Someone deletes quarantine/ to free space: the stamp beside it still says something was quarantined.
  fs.rmSync(store.quarantineDir, { recursive: true });
  assert.equal(await (await CacheStore.open(store.root)).keptObjects(key), undefined);
});

test('writeRecord writes exactly JSON.stringify of the record it returns (checksum last), which reads back', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const s = await store.makeStagingDir();
  write(s, 'a.txt', 'alpha "quoted" \u2028 \\ text');
  const m = await store.ingestDir(s);
  const w = await store.writeRecord(record(m, { log: 'line "one"\nline two\u2029' }));
  assert.ok(w.ok);
  if (!w.ok) return;
  assert.equal(fs.readFileSync(store.recordPath(computeKey(fp)), 'utf8'), JSON.stringify(w.value));
  assert.deepEqual(await (await CacheStore.open(store.root)).readRecord(computeKey(fp)), w.value);
  // A manifest it did not make is checked: a wrong hash is a bug, thrown.
  await assert.rejects(store.writeRecord(record({ files: m.files, hash: '0'.repeat(64) })), /outputs.hash/);
});
