import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { FileHasher } from '../../src/hash/file-hasher.js';
import { compileGlob } from '../../src/hash/glob.js';
import { HashMemo } from '../../src/hash/memo.js';

async function tempDir(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hasher-'));
  return { dir, [Symbol.asyncDispose]: () => fsp.rm(dir, { recursive: true, force: true }) };
}

const sha = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

/** Sets a file's mtime into the past (its ctime becomes now: the racy rule still applies). */
function age(file: string, seconds = 10): void {
  const t = new Date(Date.now() - seconds * 1000);
  fs.utimesSync(file, t, t);
}

function write(root: string, rel: string, content: string): string {
  const f = path.join(root, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
  return f;
}

/** Tests that are not about the racy rule trust every timestamp (a negative window: even this very millisecond's). */
const trusting = { racyWindowMs: -1000 };

test('file hash is the sha256 of its bytes; missing paths are missing', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'a.txt', 'hello');
  const h = await FileHasher.open(path.join(dir, 'memo.bin'), trusting);
  assert.deepEqual(await h.hashDep(dir, 'a.txt'), { kind: 'file', hash: sha('hello'), files: 1 });
  assert.deepEqual(await h.hashDep(dir, 'nope.txt'), { kind: 'missing', files: 0 });
});

test('memo: unchanged files are not re-read after reopening; same-size content change is detected', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  const memo = path.join(dir, 'cache', 'memo.bin');
  const f = write(dir, 'data/x.txt', 'aaaa');
  write(dir, 'data/y.txt', 'bbbb');
  const h1 = await FileHasher.open(memo, trusting);
  const first = await h1.hashDep(dir, 'data');
  assert.equal(h1.stats.hashed, 2);
  await h1.save();

  const h2 = await FileHasher.open(memo, trusting);
  assert.deepEqual(await h2.hashDep(dir, 'data'), first);
  assert.equal(h2.stats.hashed, 0, 'no file re-read');
  assert.equal(h2.stats.memoHits, 2);

  // Same size, different bytes, and mtime forced back to an old value: ctime/mtime change still invalidates.
  fs.writeFileSync(f, 'cccc');
  age(f, 20);
  const h3 = await FileHasher.open(memo, trusting);
  const third = await h3.hashDep(dir, 'data');
  assert.equal(h3.stats.hashed, 1);
  assert.notEqual(third.hash, first.hash);
});

test('racy timestamps: a file hashed within the racy window is re-read next time', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  const memo = path.join(dir, 'memo.bin');
  const f = write(dir, 'r.txt', 'v1'); // mtime = ctime = now: racy
  const racy = { racyWindowMs: 300 };
  const h1 = await FileHasher.open(memo, racy);
  assert.equal((await h1.hashDep(dir, 'r.txt')).hash, sha('v1'));
  await h1.save();
  // Rewrite with the same size and put back the exact old mtime: only the racy rule can catch this
  // (ctime differs too, but the point is the entry was never trusted).
  const before = fs.statSync(f);
  fs.writeFileSync(f, 'v2');
  fs.utimesSync(f, before.atime, before.mtime);
  const h2 = await FileHasher.open(memo, racy);
  assert.equal((await h2.hashDep(dir, 'r.txt')).hash, sha('v2'));
  assert.equal(h2.stats.hashed, 1);
  assert.equal(h2.stats.memoHits, 0);
  // Forcing an old mtime does not make a just-written file trusted: ctime is recent.
  age(f);
  const h3 = await FileHasher.open(memo, racy);
  await h3.hashDep(dir, 'r.txt');
  await h3.save();
  const h4 = await FileHasher.open(memo, racy);
  await h4.hashDep(dir, 'r.txt');
  assert.equal(h4.stats.hashed, 1, 'still racy by ctime');
  // Once both timestamps are older than the window, the entry is memoised and trusted.
  await new Promise((r) => setTimeout(r, 350));
  const h5 = await FileHasher.open(memo, racy);
  await h5.hashDep(dir, 'r.txt');
  await h5.save();
  const h6 = await FileHasher.open(memo, racy);
  assert.equal((await h6.hashDep(dir, 'r.txt')).hash, sha('v2'));
  assert.equal(h6.stats.hashed, 0);
  assert.equal(h6.stats.memoHits, 1);
});

test('dir hash is independent of creation order and changes on rename, add, delete', async () => {
  await using ta = await tempDir();
  const a = ta.dir;
  await using tb = await tempDir();
  const b = tb.dir;
  for (const n of ['z', 'a', 'm/q', 'm/b']) write(a, `d/${n}`, n);
  for (const n of ['m/b', 'a', 'z', 'm/q']) write(b, `d/${n}`, n);
  const h = await FileHasher.open(path.join(a, 'memo.bin'), trusting);
  const ha = await h.hashDep(a, 'd');
  const hb = await h.hashDep(b, 'd');
  assert.equal(ha.kind, 'dir');
  assert.equal(ha.files, 4);
  assert.equal(ha.hash, hb.hash);
  const listing = await h.listDep(a, 'd');
  assert.deepEqual(listing.entries.map((e) => e[0]), ['a', 'm/b', 'm/q', 'z']);

  fs.renameSync(path.join(b, 'd/z'), path.join(b, 'd/y'));
  const renamed = await h.hashDep(b, 'd');
  assert.notEqual(renamed.hash, ha.hash);
  write(b, 'd/z', 'z');
  fs.rmSync(path.join(b, 'd/y'));
  assert.equal((await h.hashDep(b, 'd')).hash, ha.hash, 'back to the same content');
  write(b, 'd/new', '');
  assert.notEqual((await h.hashDep(b, 'd')).hash, ha.hash);
  // An empty directory is a dir with zero files, not missing.
  fs.mkdirSync(path.join(b, 'empty'));
  assert.deepEqual(await h.hashDep(b, 'empty'), { kind: 'dir', hash: (await h.hashDep(b, 'empty')).hash, files: 0 });
});

test('memo drops entries of files deleted from a walked directory', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  const memoFile = path.join(dir, 'memo.bin');
  write(dir, 'd/a', 'a');
  write(dir, 'd/b', 'b');
  const h1 = await FileHasher.open(memoFile, trusting);
  await h1.hashDep(dir, 'd');
  await h1.save();
  assert.equal(HashMemo.load(memoFile).count, 2);
  fs.rmSync(path.join(dir, 'd/b'));
  write(dir, 'd/c', 'c');
  const h2 = await FileHasher.open(memoFile, trusting);
  await h2.hashDep(dir, 'd');
  await h2.save();
  const keys = [...HashMemo.load(memoFile).keys()].map((k) => path.basename(k)).sort();
  assert.deepEqual(keys, ['a', 'c']);
});

test('glob deps hash their matches relative to the workspace', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'src/a.csv', '1');
  write(dir, 'src/sub/b.csv', '2');
  write(dir, 'src/c.txt', '3');
  const h = await FileHasher.open(path.join(dir, 'memo.bin'), trusting);
  const all = await h.listDep(dir, 'src/**/*.csv');
  assert.equal(all.kind, 'glob');
  assert.deepEqual(all.entries.map((e) => e[0]), ['src/a.csv', 'src/sub/b.csv']);
  const top = await h.listDep(dir, 'src/*.csv');
  assert.deepEqual(top.entries.map((e) => e[0]), ['src/a.csv']);
  const none = await h.hashDep(dir, 'src/*.json');
  assert.equal(none.kind, 'glob');
  assert.equal(none.files, 0);
  const before = (await h.hashDep(dir, 'src/**/*.csv')).hash;
  write(dir, 'src/c.txt', '33'); // not matched: no change
  assert.equal((await h.hashDep(dir, 'src/**/*.csv')).hash, before);
  write(dir, 'src/sub/b.csv', '22');
  assert.notEqual((await h.hashDep(dir, 'src/**/*.csv')).hash, before);
});

test('glob matcher: **, ?, classes and braces', () => {
  const g = compileGlob('data/**/img?.{png,jpg}');
  assert.equal(g.base, 'data');
  assert.ok(g.matches('data/img1.png'));
  assert.ok(g.matches('data/x/y/img2.jpg'));
  assert.ok(!g.matches('data/img12.png'));
  assert.ok(!g.matches('other/img1.png'));
  const c = compileGlob('[!a]*.txt');
  assert.equal(c.base, '');
  assert.ok(c.matches('b.txt'));
  assert.ok(!c.matches('a.txt'));
  assert.ok(!c.matches('d/b.txt'));
});

test('a torn memo file loads as empty and everything is re-hashed', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  const memoFile = path.join(dir, 'memo.bin');
  write(dir, 'd/a', 'a');
  const h1 = await FileHasher.open(memoFile, trusting);
  await h1.hashDep(dir, 'd');
  await h1.save();
  const buf = fs.readFileSync(memoFile);
  fs.writeFileSync(memoFile, buf.subarray(0, buf.length - 3));
  const h2 = await FileHasher.open(memoFile, trusting);
  await h2.hashDep(dir, 'd');
  assert.equal(h2.stats.hashed, 1);
  // A flipped byte fails the checksum too.
  buf[30] = buf[30]! ^ 0xff;
  fs.writeFileSync(memoFile, buf);
  assert.equal(HashMemo.load(memoFile).count, 0);
});

test('FIFOs are never opened: as a dependency they are missing, inside a directory they are skipped', async (t) => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  const { spawnSync } = await import('node:child_process');
  write(dir, 'd/a.txt', 'a');
  if (spawnSync('mkfifo', [path.join(dir, 'd/pipe'), path.join(dir, 'p')]).status !== 0) {
    t.skip('mkfifo unavailable');
    return;
  }
  const h = await FileHasher.open(path.join(dir, 'memo.bin'), trusting);
  assert.deepEqual(await h.hashDep(dir, 'p'), { kind: 'missing', files: 0 });
  const l = await h.listDep(dir, 'd');
  assert.deepEqual(l.entries.map((e) => e[0]), ['a.txt']);
});

test('exclude skips a subtree (e.g. the cache inside a workspace depended on as ".")', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'src/a.txt', 'a');
  write(dir, 'cache/objects/x', 'x');
  const h = await FileHasher.open(path.join(dir, 'cache', 'memo.bin'), { ...trusting, exclude: [path.join(dir, 'cache')] });
  const l = await h.listDep(dir, '.');
  assert.deepEqual(l.entries.map((e) => e[0]), ['src/a.txt']);
});

test('diffListings names the files that changed inside a directory dependency', async () => {
  const { diffListings } = await import('../../src/hash/file-hasher.js');
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'd/keep', 'k');
  write(dir, 'd/edit', 'v1');
  write(dir, 'd/drop', 'x');
  const h = await FileHasher.open(path.join(dir, 'memo.bin'), trusting);
  const before = (await h.listDep(dir, 'd')).entries;
  write(dir, 'd/edit', 'v2');
  fs.rmSync(path.join(dir, 'd/drop'));
  write(dir, 'd/sub/new', 'n');
  const after = (await h.listDep(dir, 'd')).entries;
  assert.deepEqual(diffListings(before, after), { added: ['sub/new'], removed: ['drop'], modified: ['edit'] });
});

test('an unreadable file hashes to a stable marker instead of failing the run', async (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    t.skip('needs root to drop to an unprivileged user in a child');
    return;
  }
  await using tdir = await tempDir();
  const dir = tdir.dir;
  fs.chmodSync(dir, 0o755);
  write(dir, 'd/ok.txt', 'ok');
  const secret = write(dir, 'd/secret.txt', 'no');
  fs.chmodSync(secret, 0o600); // root-owned: unreadable for "nobody"
  const { spawnSync } = await import('node:child_process');
  const mod = new URL('../../src/hash/file-hasher.js', import.meta.url).href;
  const script = `process.setgid(65534); process.setuid(65534);
    const { FileHasher } = await import(${JSON.stringify(mod)});
    const h = await FileHasher.open('/nonexistent-dir/memo.bin');
    const l = await h.listDep(${JSON.stringify(dir)}, 'd');
    process.stdout.write(JSON.stringify(l.entries));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0 && /EACCES.*file-hasher|Cannot find module|ERR_MODULE_NOT_FOUND/.test(r.stderr)) {
    t.skip(`the unprivileged child cannot load the build: ${r.stderr.split('\n')[0]}`);
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [['ok.txt', sha('ok')], ['secret.txt', 'unreadable:EACCES']]);
});

test('listDep with the kind:hash hashDep returned reuses that walk; a stale or absent one walks again', async () => {
  await using t = await tempDir();
  for (const n of ['a', 'b', 'c']) write(t.dir, `d/${n}`, n);
  const h = await FileHasher.open(path.join(t.dir, 'memo.bin'), trusting);
  const first = await h.hashDep(t.dir, 'd');
  const id = `${first.kind}:${first.hash}`;
  const statted = h.stats.statted;
  const reused = await h.listDep(t.dir, 'd', id);
  assert.equal(h.stats.statted, statted, 'no walk');
  assert.deepEqual(reused, await h.listDep(t.dir, 'd'), 'the same listing a fresh walk gives');
  assert.ok(h.stats.statted > statted, 'without expect it walks');

  write(t.dir, 'd/b', 'changed');
  const second = await h.hashDep(t.dir, 'd');
  const before = h.stats.statted;
  const stale = await h.listDep(t.dir, 'd', id);
  assert.ok(h.stats.statted > before, 'an expect that is not the last walk walks again');
  assert.equal(stale.hash, second.hash, 'and lists what is there now');
});

test('save while a save is in flight: saves run in order and the last one holds every entry', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  const memo = path.join(dir, 'cache', 'memo.bin');
  write(dir, 'a/x.txt', 'xx');
  write(dir, 'b/y.txt', 'yy');
  const h1 = await FileHasher.open(memo, trusting);
  await h1.hashDep(dir, 'a');
  const early = h1.save(); // in flight while b is hashed
  await h1.hashDep(dir, 'b');
  await Promise.all([early, h1.save()]);
  const h2 = await FileHasher.open(memo, trusting);
  await h2.hashDep(dir, 'a');
  await h2.hashDep(dir, 'b');
  assert.equal(h2.stats.hashed, 0, 'both directories remembered');
  assert.equal(h2.stats.memoHits, 2);
});

/** The `kind:hash` that `hashDep` gives `dep` now (what a stage key holds for it). */
async function depKey(h: FileHasher, dir: string, dep: string): Promise<string> {
  const d = await h.hashDep(dir, dep);
  return `${d.kind}:${d.hash}`;
}

test('plainDirFiles: the walk behind a dir key with sizes; none after a link, a .git or unreadable entry, a FIFO, or for another key', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'data/b/2.txt', 'twotwo');
  write(dir, 'data/a/1.txt', 'one');
  write(dir, 'data/top.txt', '');
  const h = await FileHasher.open(path.join(dir, 'memo.bin'), trusting);
  const key = () => depKey(h, dir, 'data');
  const k1 = await key();
  assert.deepEqual(h.plainDirFiles(dir, 'data', k1), { rels: ['a/1.txt', 'b/2.txt', 'top.txt'], sha256: [sha('one'), sha('twotwo'), sha('')], sizes: [3, 6, 0] });
  assert.equal(h.plainDirFiles(dir, 'data', 'dir:' + '0'.repeat(64)), undefined, 'another key: not this walk');
  assert.equal(h.plainDirFiles(dir, 'nope', k1), undefined, 'never walked');
  // Memo hits (a second walk) carry their stat sizes too.
  const k2 = await key();
  assert.equal(k2, k1);
  assert.deepEqual(h.plainDirFiles(dir, 'data', k2)?.sizes, [3, 6, 0]);
  assert.ok(h.stats.memoHits >= 3);

  fs.symlinkSync(path.join(dir, 'data', 'a', '1.txt'), path.join(dir, 'data', 'b', 'link.txt'));
  assert.equal(h.plainDirFiles(dir, 'data', await key()), undefined, 'a symbolic link: a walk that does not follow links would differ');
  fs.unlinkSync(path.join(dir, 'data', 'b', 'link.txt'));
  assert.ok(h.plainDirFiles(dir, 'data', await key()));

  write(dir, 'data/.git/HEAD', 'ref');
  assert.equal(h.plainDirFiles(dir, 'data', await key()), undefined, '.git is skipped by the engine only');
  fs.rmSync(path.join(dir, 'data', '.git'), { recursive: true });

  const fifo = path.join(dir, 'data', 'a', 'pipe');
  const made = spawnSync('mkfifo', [fifo]);
  if (made.status === 0) {
    assert.equal(h.plainDirFiles(dir, 'data', await key()), undefined, 'a FIFO is skipped by the engine only');
    fs.unlinkSync(fifo);
  }
  assert.ok(h.plainDirFiles(dir, 'data', await key()));
});

test('plainDirFiles: none while an excluded directory (the cache inside the source) is skipped; a plain listing again once it is gone', async () => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'data/a/1.txt', 'one');
  const cache = path.join(dir, 'data', 'cache');
  write(dir, 'data/cache/objects/x', 'object bytes');
  const h = await FileHasher.open(path.join(dir, 'memo.bin'), { ...trusting, exclude: [cache] });
  const key = () => depKey(h, dir, 'data');
  // ingest's own walk would list cache/objects/x; the engine's does not: no listing to hand over.
  assert.equal(h.plainDirFiles(dir, 'data', await key()), undefined);
  fs.rmSync(cache, { recursive: true });
  assert.deepEqual(h.plainDirFiles(dir, 'data', await key()), { rels: ['a/1.txt'], sha256: [sha('one')], sizes: [3] });
});

test('plainDirFiles: a file or directory the walk could not read makes the listing not plain', async (t) => {
  await using tdir = await tempDir();
  const dir = tdir.dir;
  write(dir, 'data/a/1.txt', 'one');
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, 'data'), 0o755);
  fs.chmodSync(path.join(dir, 'data', 'a'), 0o755);
  const f = write(dir, 'data/a/2.txt', 'secret');
  fs.chmodSync(f, 0o000);
  write(dir, 'data2/a/1.txt', 'one');
  fs.chmodSync(path.join(dir, 'data2'), 0o755);
  write(dir, 'data2/hidden/2.txt', 'two');
  fs.chmodSync(path.join(dir, 'data2', 'hidden'), 0o000);
  // Root reads anything: walk as nobody in a child process to get a real EACCES.
  const script = `import { FileHasher } from ${JSON.stringify(new URL('../../src/hash/file-hasher.js', import.meta.url).href)};
const h = await FileHasher.open('/nonexistent-dir-for-memo/memo.bin', { racyWindowMs: -1000 });
const out = {};
for (const dep of ['data', 'data2']) {
  const d = await h.hashDep(${JSON.stringify(dir)}, dep);
  out[dep] = h.plainDirFiles(${JSON.stringify(dir)}, dep, d.kind + ':' + d.hash) ?? null;
}
console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    if (process.getuid?.() !== 0) {
      t.skip(`cannot run as another user here: ${r.error?.message ?? r.stderr}`);
      return;
    }
    assert.fail(r.stderr);
  }
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(out['data'], null, 'an unreadable file');
  assert.equal(out['data2'], null, 'an unreadable directory');
});
