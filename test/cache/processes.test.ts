/** Crash safety, lock contention and concurrent writers, with real child processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CacheStore } from '../../src/cache/store.js';
import { acquireLock } from '../../src/cache/lock.js';
import { tempDir } from './helpers.js';
import { workerKey } from './fixtures/fingerprint.js';

const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'cache-worker.js');
const KEY = workerKey;

function start(args: string[]): { child: ChildProcess; lines: string[]; waitFor(line: string): Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiters: { prefix: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of waiters.filter((w) => line.startsWith(w.prefix))) w.resolve();
    }
  });
  const exited = new Promise<number | null>((res) =>
    child.on('close', (code) => {
      // A child that exits before printing what a test waits for fails the test with its stderr.
      for (const w of waiters) w.reject(new Error(`worker ${args[0]} exited (${code}) before '${w.prefix}': ${stderr}`));
      res(code);
    }),
  );
  return {
    child,
    lines,
    waitFor: (prefix) => (lines.some((l) => l.startsWith(prefix)) ? Promise.resolve() : new Promise<void>((resolve, reject) => waiters.push({ prefix, resolve, reject }))),
    exited,
  };
}

test('SIGKILL during ingest/record: never a record pointing at missing objects; tmp cleaned; verify clean', async () => {
  await using t = await tempDir();
  const root = path.join(t.dir, 'cache');
  let sawRecord = 0;
  let sawNoRecord = 0;
  // Kill at increasing delays after staging so kills land during ingest, fsyncs and the record write.
  for (const delayMs of [0, 5, 20, 40, 80, 150, 400]) {
    const w = start(['ingest', root, '600', `seed${delayMs}`]);
    await w.waitFor('staged');
    await new Promise((r) => setTimeout(r, delayMs));
    w.child.kill('SIGKILL');
    await w.exited;
    const store = await CacheStore.open(root); // cleans tmp of the dead child
    const rec = await store.readRecord(KEY);
    if (fs.existsSync(store.recordPath(KEY))) {
      assert.ok(rec, 'an existing record is complete and usable');
      assert.equal(rec.outputs.files.length, 600);
      sawRecord++;
    } else sawNoRecord++;
    assert.deepEqual(fs.readdirSync(store.tmpDir), [], 'dead process tmp files removed');
    const v = await store.verify();
    assert.deepEqual({ corrupt: v.corrupt, missing: v.missing, bad: v.badRecords }, { corrupt: [], missing: [], bad: [] });
    fs.rmSync(path.join(root, 'records'), { recursive: true, force: true });
  }
  assert.ok(sawNoRecord > 0, 'at least one kill landed before the record');
  assert.ok(sawRecord + sawNoRecord === 7);
});

test('two processes storing the same objects concurrently both succeed and the cache verifies', async () => {
  await using t = await tempDir();
  const root = path.join(t.dir, 'cache');
  const a = start(['ingest', root, '800', 'same']);
  const b = start(['ingest', root, '800', 'same']);
  assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
  const da = a.lines.find((l) => l.startsWith('done'));
  const db = b.lines.find((l) => l.startsWith('done'));
  assert.ok(da && da === db, 'same manifest hash from both');
  const store = await CacheStore.open(root);
  const v = await store.verify();
  assert.equal(v.objects, 800);
  assert.deepEqual(v.corrupt, []);
  assert.ok(await store.readRecord(KEY));
});

test('workspace lock: a second process is refused while the first holds it, and gets it after release', async () => {
  await using t = await tempDir();
  const file = path.join(t.dir, '.pipeline', 'lock');
  const holder = start(['lock', file, '1500']);
  await holder.waitFor('locked');
  const other = start(['lock', file, '0']);
  await other.exited;
  assert.deepEqual(other.lines, [`busy ${holder.child.pid}`]);
  const mine = await acquireLock(file);
  assert.equal(mine.ok, false);
  if (!mine.ok) assert.equal(mine.error.pid, holder.child.pid);
  await holder.exited;
  assert.ok(holder.lines.includes('released'));
  const after = await acquireLock(file);
  assert.ok(after.ok);
  await after.value.release();
  assert.equal(fs.existsSync(file), false);
});

test('a lock left by a SIGKILLed process is reclaimed', async () => {
  await using t = await tempDir();
  const file = path.join(t.dir, 'lock');
  const holder = start(['lock', file, '60000']);
  await holder.waitFor('locked');
  holder.child.kill('SIGKILL');
  await holder.exited;
  assert.ok(fs.existsSync(file), 'stale lock file left behind');
  const r = await acquireLock(file);
  assert.ok(r.ok, 'reclaimed');
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
  // Waiting acquisition: a second acquirer in this process waits for release.
  const waiting = acquireLock(file, { waitMs: 5000, pollMs: 20 });
  setTimeout(() => void r.value.release(), 100);
  const w = await waiting;
  assert.ok(w.ok);
  await w.value.release();
});

test('a lock whose pid was recycled by another process (different start time) is stale', async () => {
  await using t = await tempDir();
  const file = path.join(t.dir, 'lock');
  // Our own pid is alive, but with a start time that is not ours it denotes a dead predecessor.
  fs.writeFileSync(file, JSON.stringify({ pid: process.pid, hostname: (await import('node:os')).hostname(), start: '1', since: 'x', token: 't' }));
  const r = await acquireLock(file);
  assert.ok(r.ok);
  await r.value.release();
});

test('temp files left by a process killed while taking the lock are removed by the next owner', async () => {
  await using t = await tempDir();
  const file = path.join(t.dir, 'lock');
  const r0 = spawn(process.execPath, ['-e', '0']);
  await new Promise((res) => r0.on('exit', res));
  const litter = `${file}.${r0.pid}.deadbeef.tmp`;
  fs.writeFileSync(litter, '{}');
  const r = await acquireLock(file);
  assert.ok(r.ok);
  assert.equal(fs.existsSync(litter), false);
  await r.value.release();
});
