import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CacheStore, type OutputManifest } from '../../src/cache/store.js';
import { WorkspaceState } from '../../src/cache/workspace-state.js';
import { computeKey } from '../../src/fingerprint.js';
import { tempDir, write, read } from './helpers.js';

async function ingest(store: CacheStore, files: Record<string, string>): Promise<OutputManifest> {
  const s = await store.makeStagingDir();
  for (const [k, v] of Object.entries(files)) write(s, k, v);
  const m = await store.ingestDir(s);
  await store.removeStagingDir(s);
  return m;
}

/** A pid that certainly is not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('hardlink falls back to copy across filesystems (cache on disk, workspace on tmpfs)', async (t) => {
  if (!fs.existsSync('/dev/shm') || fs.statSync('/dev/shm').dev === fs.statSync(process.env.TMPDIR ?? '/tmp').dev) {
    t.skip('no second filesystem');
    return;
  }
  await using c = await tempDir();
  const ws = await fsp.mkdtemp('/dev/shm/ws-');
  try {
    const store = await CacheStore.open(path.join(c.dir, 'cache'));
    const m = await ingest(store, { 'a.txt': 'alpha', 'b/c.txt': 'gamma' });
    const r = await store.materialize(m, ws, 'out', { modes: ['hardlink', 'copy'] });
    assert.ok(r.ok);
    assert.equal(r.value.mode, 'copy');
    assert.deepEqual(r.value.counts, { hardlink: 0, reflink: 0, copy: 2 });
    assert.equal(read(ws, 'out/b/c.txt'), 'gamma');
    assert.equal(fs.statSync(path.join(ws, 'out/a.txt')).mode & 0o777, 0o644);
  } finally {
    await fsp.rm(ws, { recursive: true, force: true });
  }
});

test('an in-place edit through a hardlink corrupts the object: seen by state, never restored, stage recomputes', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const m = await ingest(store, { 'model.bin': 'weights v1' });
  const fpr = { engine: 't', stage: { kind: 'builtin' as const, name: 'n', version: '1' }, params: {}, inputs: {}, upstream: {}, env: {}, runtime: { platform: 'p', arch: 'a' } };
  const key = computeKey(fpr);
  assert.ok((await store.writeRecord({ key, fingerprint: fpr, stageId: 's', outputs: m, metrics: {}, log: '', startedAt: '', durationMs: 0 })).ok);
  const r = await store.materialize(m, ws, 'out', { modes: ['hardlink'] });
  assert.ok(r.ok && r.value.mode === 'hardlink');
  const state = await WorkspaceState.open(store.root, ws);
  state.set('s', { key, outputsHash: m.hash, outputs: [r.value.output], at: '' });

  // Root ignores the 0444 mode: an in-place append changes the shared inode.
  fs.appendFileSync(path.join(ws, 'out/model.bin'), ' + edit');
  assert.deepEqual(state.check('s'), [{ path: 'out/model.bin', change: 'modified' }]);
  const again = await store.materialize(m, ws, 'out', { expected: r.value.output });
  assert.equal(again.ok, false);
  if (!again.ok) assert.equal(again.error.reason, 'corrupt-object');
  assert.equal(read(ws, 'out/model.bin'), 'weights v1 + edit', 'the user edit is left in place');
  assert.equal(await store.readRecord(key), undefined, 'record unusable: the stage recomputes');
  assert.equal(fs.readdirSync(store.quarantineDir).length, 1);
});

test('temp files of live processes survive open; siblings left by a dead materialiser are cleaned', async () => {
  await using t = await tempDir();
  const root = path.join(t.dir, 'cache');
  const store = await CacheStore.open(root);
  const staging = await store.makeStagingDir();
  write(staging, 'x', 'x');
  const dead = deadPid();
  const orphan = path.join(store.tmpDir, `${(await import('node:os')).hostname()}~${dead}~~abcdef.stage`);
  fs.mkdirSync(orphan);
  const old = new Date(Date.now() - 3 * 86400_000);
  fs.utimesSync(staging, old, old); // a live owner's staging dir is kept however old
  const otherHost = path.join(store.tmpDir, `some-other-host~1~~abcdef.stage`);
  fs.mkdirSync(otherHost);
  const otherHostOld = path.join(store.tmpDir, `some-other-host~2~~abcdef.stage`);
  fs.mkdirSync(otherHostOld);
  fs.utimesSync(otherHostOld, old, old);
  await CacheStore.open(root);
  assert.ok(fs.existsSync(path.join(staging, 'x')), 'our staging dir kept');
  assert.equal(fs.existsSync(orphan), false, 'dead owner: removed');
  assert.ok(fs.existsSync(otherHost), 'another host, recent: kept');
  assert.equal(fs.existsSync(otherHostOld), false, 'another host, days old: removed');

  const ws = path.join(t.dir, 'ws');
  const leftover = path.join(ws, `.out.pipeline-tmp-${dead}-0badf00d`);
  write(leftover, 'half.txt', 'half');
  const m = await ingest(store, { 'a.txt': 'a' });
  const r = await store.materialize(m, ws, 'out');
  assert.ok(r.ok);
  assert.deepEqual(fs.readdirSync(ws), ['out']);
});

test('a file output replaces a directory the user left there, after backing it up', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  write(ws, 'report/notes.md', 'my notes');
  const m = await ingest(store, { 'report.txt': 'generated' });
  const file = { files: [{ ...m.files[0]!, path: '' }], hash: '' };
  const { makeManifest } = await import('../../src/cache/manifest.js');
  const r = await store.materialize(makeManifest(file.files), ws, 'report');
  assert.ok(r.ok && r.value.backup);
  assert.equal(read(ws, 'report'), 'generated');
  const [b] = await (await WorkspaceState.open(store.root, ws)).backups();
  assert.deepEqual(b!.manifest.files.map((f) => f.path), ['notes.md']);
  assert.equal(fs.readFileSync(store.objectPath(b!.manifest.files[0]!.sha256), 'utf8'), 'my notes');
});
