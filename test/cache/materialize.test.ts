import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CacheStore, type OutputManifest } from '../../src/cache/store.js';
import { WorkspaceState, checkOutput } from '../../src/cache/workspace-state.js';
import { checkOutputDir } from '../../src/cache/materialize.js';
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

/** Materialises `v1` then returns what a later run passes to update it (expected + previous). */
async function placed(store: CacheStore, ws: string, v1: OutputManifest) {
  const r = await store.materialize(v1, ws, 'out', { kind: 'dir' });
  assert.ok(r.ok);
  return { kind: 'dir' as const, expected: r.value.output, previous: v1 };
}

const ino = (ws: string, rel: string): number => fs.statSync(path.join(ws, rel)).ino;

test('an untouched previous output is updated in place: unchanged files keep their inode, changed ones are renamed in, removed ones vanish', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const v1 = await ingest(store, { 'a.txt': 'same', 'b/c.txt': 'old c', 'd/e.txt': 'dir becomes file', 'old/x.txt': 'removed', 'f': 'file becomes dir' });
  const v2 = await ingest(store, { 'a.txt': 'same', 'b/c.txt': 'new c', d: 'now a file', 'n/m.txt': 'new', 'f/g.txt': 'under f' });
  const opts = await placed(store, ws, v1);
  const [dirIno, aIno, cIno] = [ino(ws, 'out'), ino(ws, 'out/a.txt'), ino(ws, 'out/b/c.txt')];

  const r = await store.materialize(v2, ws, 'out', opts);
  assert.ok(r.ok);
  assert.equal(r.value.backup, undefined, 'nothing foreign: no backup');
  assert.equal(r.value.reused, 1);
  assert.equal(ino(ws, 'out'), dirIno, 'the directory itself was not swapped');
  assert.equal(ino(ws, 'out/a.txt'), aIno, 'unchanged file untouched');
  assert.notEqual(ino(ws, 'out/b/c.txt'), cIno, 'changed file replaced by a new inode, not written through');
  assert.equal(read(ws, 'out/b/c.txt'), 'new c');
  assert.equal(read(ws, 'out/d'), 'now a file');
  assert.equal(read(ws, 'out/f/g.txt'), 'under f');
  assert.equal(read(ws, 'out/n/m.txt'), 'new');
  assert.equal(fs.existsSync(path.join(ws, 'out/old')), false, 'removed file and its emptied directory vanish');
  assert.deepEqual(fs.readdirSync(ws), ['out'], 'no temp siblings left');
  // The recorded signatures describe the workspace exactly.
  const state = await WorkspaceState.open(store.root, ws);
  state.set('s', { key: 'k', outputsHash: v2.hash, outputs: [r.value.output], at: '' });
  assert.deepEqual(state.check('s'), []);
  assert.equal(r.value.output.files.length, v2.files.length);
  // The cache objects were never linked into the workspace (copy mode): editing there cannot reach them.
  for (const f of v2.files) assert.notEqual(ino(ws, `out/${f.path}`), fs.statSync(store.objectPath(f.sha256)).ino, f.path);
});

test('in-place update: a user-edited output file is backed up, not lost, then the output is rebuilt', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const v1 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b1' });
  const v2 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b2' });
  const opts = await placed(store, ws, v1);
  fs.chmodSync(path.join(ws, 'out/a.txt'), 0o644);
  fs.writeFileSync(path.join(ws, 'out/a.txt'), 'MY EDIT');
  write(ws, 'out/mine.txt', 'MY FILE');
  const r = await store.materialize(v2, ws, 'out', opts);
  assert.ok(r.ok);
  assert.ok(r.value.backup !== undefined, 'backup recorded');
  const [b] = await (await WorkspaceState.open(store.root, ws)).backups();
  const saved = new Map(b!.manifest.files.map((f) => [f.path, fs.readFileSync(store.objectPath(f.sha256), 'utf8')]));
  assert.equal(saved.get('a.txt'), 'MY EDIT');
  assert.equal(saved.get('mine.txt'), 'MY FILE');
  assert.equal(read(ws, 'out/a.txt'), 'same');
  assert.equal(read(ws, 'out/b.txt'), 'b2');
});

test('in-place update: a corrupt object for a changed file is quarantined and the workspace is left as it was', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const v1 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b1', 'gone.txt': 'g' });
  const v2 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b2' });
  const opts = await placed(store, ws, v1);
  const obj = store.objectPath(v2.files.find((f) => f.path === 'b.txt')!.sha256);
  fs.chmodSync(obj, 0o644);
  fs.writeFileSync(obj, 'b3'); // same size, other bytes
  // Met by a later process, as corruption at rest is (the process that stored it hashed those bytes itself).
  const later = await CacheStore.open(store.root);
  const r = await later.materialize(v2, ws, 'out', opts);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.reason, 'corrupt-object');
  assert.equal(read(ws, 'out/b.txt'), 'b1');
  assert.equal(read(ws, 'out/gone.txt'), 'g', 'nothing removed before every new file was verified');
  assert.deepEqual(fs.readdirSync(ws), ['out']);
  assert.equal(fs.readdirSync(store.quarantineDir).length, 1);
});

test('in-place update killed part-way: the next run saves the mixed directory as a backup and rebuilds it', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const v1 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b1', 'c.txt': 'c1' });
  const v2 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b2', 'c.txt': 'c2' });
  const opts = await placed(store, ws, v1);
  // What a kill -9 between two renames leaves: b.txt already new, c.txt still old, the temp dir of a dead process.
  const dead = deadPid();
  write(ws, `.out.pipeline-tmp-${dead}-0badf00d/1`, 'c2');
  write(ws, `.out.pipeline-tmp-${dead}-0badf00d/0.new`, 'b2');
  fs.renameSync(path.join(ws, `.out.pipeline-tmp-${dead}-0badf00d/0.new`), path.join(ws, 'out/b.txt'));
  const r = await store.materialize(v2, ws, 'out', opts);
  assert.ok(r.ok);
  assert.ok(r.value.backup !== undefined, 'the mixed state is saved, never silently dropped');
  for (const f of v2.files) assert.equal(read(ws, `out/${f.path}`), fs.readFileSync(store.objectPath(f.sha256), 'utf8'));
  assert.deepEqual(fs.readdirSync(ws), ['out'], 'the dead temp dir is cleaned');
});

test('an object this store installed from bytes it hashed is restored without hashing it again; a later store hashes it', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const v1 = await ingest(store, { 'a.txt': 'alpha' });
  const sha = v1.files[0]!.sha256;
  assert.equal(store.hashedInThisProcess(sha), true);
  const later = await CacheStore.open(store.root);
  assert.equal(later.hashedInThisProcess(sha), false, 'another store (process) vouches for nothing');
  assert.ok((await store.materialize(v1, ws, 'out')).ok);
  assert.equal(read(ws, 'out/a.txt'), 'alpha');
});

test('a reuse check made ahead (while the stage ran) serves the update; an edit made since to a file it writes or removes, or a file appearing where it writes, is found and saved first', async () => {
  await using t = await tempDir();
  const ws = path.join(t.dir, 'ws');
  const store = await CacheStore.open(path.join(t.dir, 'cache'));
  const v1 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b1', 'gone.txt': 'g' });
  const v2 = await ingest(store, { 'a.txt': 'same', 'b.txt': 'b2', 'new.txt': 'n' });

  // Nothing touched since the check: in place, from the check (a.txt keeps its inode).
  let opts = await placed(store, ws, v1);
  const a = ino(ws, 'out/a.txt');
  let r = await store.materialize(v2, ws, 'out', { ...opts, checked: checkOutputDir(ws, 'out', opts)! });
  assert.ok(r.ok);
  assert.equal(ino(ws, 'out/a.txt'), a);
  assert.deepEqual([read(ws, 'out/b.txt'), read(ws, 'out/new.txt'), fs.existsSync(path.join(ws, 'out/gone.txt'))], ['b2', 'n', false]);

  // Edits after the check, one per kind of path the update writes or removes: each is saved as a backup first.
  const cases: [string, (w: string) => void][] = [
    ['replaced', (w) => fs.writeFileSync(path.join(w, 'out/b.txt'), 'user b')],
    ['removed', (w) => fs.writeFileSync(path.join(w, 'out/gone.txt'), 'user g')],
    ['appeared', (w) => fs.writeFileSync(path.join(w, 'out/new.txt'), 'user n')],
  ];
  for (const [what, edit] of cases) {
    const w2 = path.join(t.dir, `ws-${what}`);
    opts = await placed(store, w2, v1);
    const checked = checkOutputDir(w2, 'out', opts)!;
    edit(w2);
    r = await store.materialize(v2, w2, 'out', { ...opts, checked });
    assert.ok(r.ok, what);
    if (r.ok) assert.ok(r.value.backup !== undefined, `${what}: the user's file was saved first`);
    assert.deepEqual([read(w2, 'out/b.txt'), read(w2, 'out/new.txt')], ['b2', 'n'], what);
  }

  // An edit since the check to a file the update leaves alone stays (not lost); its recorded signature is the old
  // one, so the next check of the workspace sees it modified.
  const w3 = path.join(t.dir, 'ws-kept');
  opts = await placed(store, w3, v1);
  const checked = checkOutputDir(w3, 'out', opts)!;
  fs.chmodSync(path.join(w3, 'out/a.txt'), 0o644);
  fs.writeFileSync(path.join(w3, 'out/a.txt'), 'SAME');
  r = await store.materialize(v2, w3, 'out', { ...opts, checked });
  assert.ok(r.ok);
  assert.equal(read(w3, 'out/a.txt'), 'SAME');
  if (r.ok) assert.deepEqual(checkOutput(w3, r.value.output).map((c) => [c.path, c.change]), [['out/a.txt', 'modified']]);
});
