import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CacheStore, type OutputManifest } from '../../src/cache/store.js';
import { computeKey, type FingerprintHash, type StageFingerprint } from '../../src/fingerprint.js';
import { tempDir, write } from './helpers.js';
import { WorkspaceState } from '../../src/cache/workspace-state.js';
import { lockWorkspace } from '../../src/runner.js';

function fp(name: string): StageFingerprint {
  return { engine: 't', stage: { kind: 'builtin', name, version: '1' }, params: {}, inputs: {}, upstream: {}, env: {}, runtime: { platform: 'p', arch: 'a' } };
}

async function stored(store: CacheStore, name: string, files: Record<string, string>): Promise<{ key: FingerprintHash; m: OutputManifest }> {
  const s = await store.makeStagingDir();
  for (const [k, v] of Object.entries(files)) write(s, k, v);
  const m = await store.ingestDir(s);
  await store.removeStagingDir(s);
  const key = computeKey(fp(name));
  const w = await store.writeRecord({ key, fingerprint: fp(name), stageId: name, outputs: m, metrics: {}, log: '', startedAt: '', durationMs: 0 });
  assert.ok(w.ok);
  return { key, m };
}

/** Flips one byte of an object in place, as disk corruption or an in-place edit through a hardlink would. */
function flipByte(file: string): void {
  fs.chmodSync(file, 0o644);
  const b = fs.readFileSync(file);
  b[0] = b[0]! ^ 0x01;
  fs.writeFileSync(file, b);
  fs.chmodSync(file, 0o444);
}

test('verify detects a flipped byte, quarantines the object, and the record becomes unusable (recompute)', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const { key, m } = await stored(store, 'a', { 'x.txt': 'hello world', 'y.txt': 'other' });
  assert.ok(await store.readRecord(key));
  const bad = m.files.find((f) => f.path === 'x.txt')!.sha256;
  flipByte(store.objectPath(bad));

  const v = await store.verify();
  assert.equal(v.objects, 2);
  assert.deepEqual(v.corrupt, [bad]);
  assert.deepEqual(v.missing, [{ key, stageId: 'a', sha256: bad, path: 'x.txt' }]);
  assert.equal(fs.existsSync(store.objectPath(bad)), false);
  assert.equal(fs.readdirSync(store.quarantineDir).length, 1);
  assert.equal(await store.readRecord(key), undefined, 'never restored');
  // A second verify is clean of corruption (the record still lacks its object until the stage reruns).
  assert.deepEqual((await store.verify()).corrupt, []);
});

test('materialize re-hashes and refuses a corrupt object that verify has not seen yet', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const { m } = await stored(store, 'a', { 'x.txt': 'hello world' });
  flipByte(store.objectPath(m.files[0]!.sha256));
  // Corruption at rest is met by a later process (the one that stored the bytes hashed them itself).
  const later = await CacheStore.open(store.root);
  const r = await later.materialize(m, path.join(t.dir, 'ws'), 'out');
  assert.deepEqual(r, { ok: false, error: { reason: 'corrupt-object', sha256: m.files[0]!.sha256, path: 'x.txt' } });
  assert.equal(fs.existsSync(path.join(t.dir, 'ws', 'out')), false, 'nothing materialised');
  assert.deepEqual(fs.readdirSync(path.join(t.dir, 'ws')), [], 'no temp left');
});

test('gc keeps records and objects of kept keys, backups, and young objects; removes the rest', async () => {
  await using t = await tempDir();
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const keep = await stored(store, 'keep', { 'shared.txt': 'shared', 'k.txt': 'only kept' });
  const drop = await stored(store, 'drop', { 'shared.txt': 'shared', 'd.txt': 'only dropped' });
  // A backup of user content references its own object.
  const ws = path.join(t.dir, 'ws');
  write(ws, 'out/u.txt', 'user content');
  const r = await store.materialize(keep.m, ws, 'out');
  assert.ok(r.ok && r.value.backup);

  const young = await store.gc(new Set([keep.key]));
  assert.equal(young.removedRecords, 1);
  assert.equal(young.removedObjects, 0, 'unreferenced but younger than the grace period');
  assert.equal(await store.readRecord(drop.key), undefined);

  const res = await store.gc(new Set([keep.key]), { graceMs: 0 });
  assert.equal(res.removedObjects, 1);
  assert.equal(res.freedBytes, 'only dropped'.length);
  assert.ok(await store.readRecord(keep.key), 'kept record still complete');
  const v = await store.verify();
  assert.equal(v.objects, 3, 'shared + kept + backup');
  assert.deepEqual(v.missing, []);
});

test('gc --grace 0 beside a live run keeps what the run wrote since it started (records and objects); once it ends they go', async () => {
  await using t = await tempDir();
  const cacheDir = path.join(t.dir, 'cache');
  const store = await CacheStore.open(cacheDir);
  const old = await stored(store, 'old', { 'o.txt': 'written before the run' });
  await new Promise((r) => setTimeout(r, 1100)); // the run's lock is taken later than the slack gc allows
  // A live run: this process holds the workspace lock, and the workspace has state in this cache.
  const ws = path.join(t.dir, 'ws');
  fs.mkdirSync(ws);
  await WorkspaceState.open(cacheDir, ws);
  const lock = await lockWorkspace(ws);
  assert.ok(lock.ok);
  try {
    // What the run stores before its workspace state names it: a record no kept key holds, and its object.
    const mid = await stored(store, 'mid', { 'm.txt': 'written by the run' });
    const r = await store.gc(new Set(), { graceMs: 0 });
    assert.equal(r.liveRuns, 1);
    assert.ok(await store.readRecord(mid.key), 'the run\'s record and its object stay');
    assert.equal(await store.readRecord(old.key), undefined, 'what was there before the run goes');
    assert.equal(fs.existsSync(store.objectPath(old.m.files[0]!.sha256)), false);
  } finally {
    await lock.value.release();
  }
  const after = await store.gc(new Set(), { graceMs: 0 });
  assert.equal(after.liveRuns, 0);
  assert.equal(after.removedRecords, 1);
  assert.equal(after.removedObjects, 1);
});
