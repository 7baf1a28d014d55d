/**
 * Issue 7, concurrency (fast part; `test/stress/concurrency.stress.ts` runs
 * the same scenarios for many rounds): overlapping `pipeline run`s in one
 * workspace and in two workspaces sharing one cache never interleave writes
 * or leave a torn record; a killed or recycled-pid lock holder's lock is
 * reclaimed. See `concurrency-scenario.ts` for what each round checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { e2eRig } from '../helpers/rig.js';
import { tempDir } from '../helpers/temp-dir.js';
import { CacheStore } from '../../src/cache/store.js';
import { WorkspaceState, workspaceLockPath, type StageState } from '../../src/cache/workspace-state.js';
import { acquireLock } from '../../src/cache/lock.js';
import { computeKey, type StageFingerprint } from '../../src/fingerprint.js';
import { makeManifest } from '../../src/cache/manifest.js';
import { gcDuringRestoreRound, killHolderRound, pidReuseCases, sameWorkspaceRound, sharedCacheRound } from './concurrency-scenario.js';

test('three simultaneous runs in one workspace (one without --wait): one at a time in the workspace, the rest wait or get the lock error; outputs, records and experiments whole', async () => {
  await using rig = await e2eRig();
  for (let round = 0; round < 2; round++) {
    const r = await sameWorkspaceRound(rig, round);
    assert.deepEqual(r.problems, [], `round ${round}`);
  }
});

test('two workspaces sharing one cache run at once (shared and own keys) while gc, verify, status and exp list run: both correct, cache clean, reruns fresh', async () => {
  await using rig = await e2eRig();
  for (let round = 0; round < 2; round++) {
    const r = await sharedCacheRound(rig, round);
    assert.deepEqual(r.problems, [], `round ${round}`);
  }
});

test('cache gc in a loop while a run restores an old, unkept key: the record being restored and its objects stay; the restore is whole; the rerun is fresh', async () => {
  await using rig = await e2eRig();
  const r = await gcDuringRestoreRound(rig, 0, { files: 100 });
  assert.deepEqual(r.problems, []);
  assert.equal(r.counts.restored, 1, 'restored, not recomputed');
});

test('kill -9 of the lock holder mid-stage: the next run reclaims the lock (and says so), reaps the orphan, and is correct', async () => {
  await using rig = await e2eRig();
  const r = await killHolderRound(rig, 0);
  assert.deepEqual(r.problems, []);
});

test('a lock whose pid now belongs to an unrelated live process is reclaimed (start time differs); a live holder with its real start time is respected', async () => {
  await using rig = await e2eRig();
  const r = await pidReuseCases(rig);
  assert.deepEqual(r.problems, []);
});

function stageState(key: string): StageState {
  return { key, outputsHash: `h-${key}`, outputs: [], at: new Date().toISOString() };
}

test('workspace state: a stage set while an earlier save is being written is saved by the next save (was lost)', async () => {
  await using t = await tempDir('concurrency-');
  const state = await WorkspaceState.open(path.join(t.dir, 'cache'), path.join(t.dir, 'ws'));
  state.set('resize', stageState('k1'));
  const first = state.save(); // in flight
  state.set('thumb', stageState('k2')); // another stage finishes meanwhile
  await first;
  await state.save();
  const again = await WorkspaceState.open(path.join(t.dir, 'cache'), path.join(t.dir, 'ws'));
  assert.deepEqual(again.stageIds(), ['resize', 'thumb']);
});

/** Stores one object and a record for a fresh key whose manifest names it. */
async function recordOne(store: CacheStore, text: string): Promise<string> {
  const sha = await store.putBytes(Buffer.from(text));
  const fingerprint = { engine: 'test', stage: { kind: 'cmd', argv: ['x', text], cwd: '' }, params: {}, inputs: {}, upstream: {}, env: {}, runtime: { platform: 'p', arch: 'a' } } as unknown as StageFingerprint;
  const key = computeKey(fingerprint);
  const w = await store.writeRecord({ key, fingerprint, stageId: 's', outputs: makeManifest([{ path: 'o.txt', sha256: sha, size: Buffer.byteLength(text), mode: 0o644 }]), metrics: {}, log: '', startedAt: new Date().toISOString(), durationMs: 1 });
  assert.ok(w.ok);
  return key;
}

test('cache gc while a run holds a workspace lock keeps what the run wrote or read since it started, whatever the grace; without a live run unkept records go as before', async () => {
  await using t = await tempDir('concurrency-');
  const cacheDir = path.join(t.dir, 'cache');
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(cacheDir);
  const state = await WorkspaceState.open(cacheDir, ws);
  state.set('old', stageState('0'.repeat(64)));
  await state.save();
  // Two records from before the run (gc gives a live run what it wrote since it started, plus a second of slack).
  const old = await recordOne(store, 'recorded long ago');
  const old2 = await recordOne(store, 'recorded long ago, restored now');
  await new Promise((r) => setTimeout(r, 1600));
  const lock = await acquireLock(workspaceLockPath(ws), { purpose: 'pipeline run' });
  assert.ok(lock.ok);
  const key = await recordOne(store, 'just written by the run');
  const during = await store.gc(new Set([old, old2]));
  assert.equal(during.removedRecords, 0);
  assert.equal(during.liveRuns, 1);
  assert.ok(await store.readRecord(key), 'the in-flight record and its object are whole');
  // The run reads old2 to restore it: young again. With --grace 0 only the unread old record goes.
  assert.ok(await store.readRecord(old2));
  const zero = await store.gc(new Set(), { graceMs: 0 });
  assert.equal(zero.removedRecords, 1, 'old and unread: it goes even during a run');
  assert.equal(await store.readRecord(old), undefined);
  assert.ok(await store.readRecord(key), 'the run\'s own record stays, grace 0 or not');
  assert.ok(await store.readRecord(old2), 'just read by the run: kept with its objects');
  await lock.value.release();
  const after = await store.gc(new Set());
  assert.equal(after.liveRuns, 0);
  assert.equal(after.removedRecords, 2, 'no live run: unkept records go, whatever their age');
  assert.equal(await store.readRecord(key), undefined);
});

test('storing bytes the cache already holds refreshes the object, so a concurrent gc grace keeps it until the record is written', async () => {
  await using t = await tempDir('concurrency-');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const sha = await store.putBytes(Buffer.from('same bytes'));
  await new Promise((r) => setTimeout(r, 1500));
  // A second run produces the same bytes (dedup: nothing is written) and is about to record them.
  assert.equal(await store.putBytes(Buffer.from('same bytes')), sha);
  const r = await store.gc(new Set(), { graceMs: 1000 });
  assert.equal(r.removedObjects, 0, 'the reused object counts as young');
  assert.equal(store.hasObject(sha), true);
  await new Promise((r2) => setTimeout(r2, 1100));
  assert.equal((await store.gc(new Set(), { graceMs: 1000 })).removedObjects, 1, 'unreferenced and past the grace: it goes');
});

test('a lock left by a dead process is reclaimed and the new holder learns whose it was', async () => {
  await using t = await tempDir('concurrency-');
  const file = path.join(t.dir, 'lock');
  await fs.writeFile(file, JSON.stringify({ pid: 2 ** 22 + 7, hostname: os.hostname(), since: '2026-01-01T00:00:00.000Z', token: 'dead', purpose: 'pipeline run' }));
  const lock = await acquireLock(file);
  assert.ok(lock.ok);
  assert.deepEqual(lock.value.reclaimed, { pid: 2 ** 22 + 7, hostname: os.hostname(), since: '2026-01-01T00:00:00.000Z', purpose: 'pipeline run', why: 'owner-dead' });
  await lock.value.release();
  const clean = await acquireLock(file);
  assert.ok(clean.ok);
  assert.equal(clean.value.reclaimed, undefined, 'a free lock reclaims nothing');
  await clean.value.release();
});

test('a stale lock whose breaker file was left by a process killed while reclaiming it is taken at once (not after the 10 s breaker timeout)', async () => {
  await using t = await tempDir('concurrency-');
  const file = path.join(t.dir, 'lock');
  const dead = { pid: 2 ** 22 + 9, hostname: os.hostname() };
  await fs.writeFile(file, JSON.stringify({ ...dead, since: '2026-01-01T00:00:00.000Z', token: 'dead' }));
  await fs.writeFile(`${file}.break`, JSON.stringify(dead));
  const lock = await acquireLock(file);
  assert.ok(lock.ok, 'taken without waiting');
  assert.equal(lock.value.reclaimed?.pid, dead.pid);
  assert.equal(await fs.access(`${file}.break`).then(() => true, () => false), false, 'the dead breaker is gone');
  await lock.value.release();
});

test("a workspace's first run is visible to gc before its first stage finishes: its young records stay", async () => {
  await using t = await tempDir('concurrency-');
  const cacheDir = path.join(t.dir, 'cache');
  const ws = path.join(t.dir, 'new-ws');
  const store = await CacheStore.open(cacheDir);
  const lock = await acquireLock(workspaceLockPath(ws), { purpose: 'pipeline run' });
  assert.ok(lock.ok);
  await WorkspaceState.open(cacheDir, ws); // what the run does after taking the lock; nothing saved yet
  const key = await recordOne(store, 'first stage of a new workspace');
  assert.equal((await store.gc(new Set())).removedRecords, 0);
  assert.ok(await store.readRecord(key));
  await lock.value.release();
});
