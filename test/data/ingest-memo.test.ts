/**
 * The re-run path of `ingest`: files the stat memo and the probe memo both
 * know are settled from a stat without being read, and nothing that made a
 * re-run trustworthy is weakened by it: files inside the racy window are read
 * again, a change that keeps size, mtime and inode is still seen (ctime), and
 * rejects, duplicates and label conflicts come out byte-identical from memo
 * hits as from a cold run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { INGEST_DEFAULTS, ingestStage, ingestParams, probeMemoKeys, type IngestParams } from '../../stages/ingest.js';
import { directoryItemCache, itemEntryFile } from '../../src/cache/item-cache.js';
import { decodeProbeOutcomes } from '../../stages/lib/probe-memo.js';
import { readManifest } from '../../stages/lib/manifest.js';
import { ingestEdgeCases, ingestOutputs, pngOf, writeTree } from './fixtures.js';

/** Racy window of the stat memo (src/hash/file-hasher.ts default), plus a margin. */
const PAST_RACY_WINDOW_MS = 1100;

test('ingest memo: a file inside the racy window is read on every run until it is old enough to trust', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  await writeTree(src, { 'c0/a.png': await pngOf(1), 'c1/b.png': await pngOf(2) });
  // An mtime a minute ahead keeps a.png inside the racy window however slow this machine is.
  const ahead = new Date(Date.now() + 60_000);
  await fs.utimes(path.join(src, 'c0/a.png'), ahead, ahead);
  const run = async () => ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' })));

  assert.equal((await run()).metrics?.['read'], 2);
  await new Promise((r) => setTimeout(r, PAST_RACY_WINDOW_MS));
  // b.png is old now (memoised from here on); a.png's mtime is still "just now or later".
  assert.equal((await run()).metrics?.['read'], 2, 'b.png was young at the first run, so it is read once more');
  assert.equal((await run()).metrics?.['read'], 1, 'only the racy a.png is read');
  assert.equal((await run()).metrics?.['read'], 1, 'a.png is never trusted while it stays racy');

  const past = new Date(Date.now() - 60_000);
  await fs.utimes(path.join(src, 'c0/a.png'), past, past); // ctime is now: young for one more window
  await new Promise((r) => setTimeout(r, PAST_RACY_WINDOW_MS));
  assert.equal((await run()).metrics?.['read'], 1);
  const last = await run();
  assert.equal(last.metrics?.['read'], 0);
  assert.equal(last.metrics?.['images'], 2);
});

test('ingest memo: new bytes with the same size, inode and restored mtime are read again (ctime) and get their new hash', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  const before = await pngOf(10);
  let after: Buffer | undefined;
  for (let seed = 11; seed < 400 && after === undefined; seed++) {
    const b = await pngOf(seed);
    if (b.length === before.length && !b.equals(before)) after = b;
  }
  assert.ok(after !== undefined, 'no same-size PNG found');
  await writeTree(src, { 'c0/a.png': before, 'c0/b.png': await pngOf(500), 'c1/c.png': await pngOf(501) });
  const file = path.join(src, 'c0/a.png');
  const hourAgo = Math.floor(Date.now() / 1000) - 3600; // whole seconds: set twice, read back exactly
  await fs.utimes(file, hourAgo, hourAgo);
  await new Promise((r) => setTimeout(r, PAST_RACY_WINDOW_MS));
  const run = async () => {
    const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
    return { result: await ingestStage.run(ctx), outDir: ctx.outDir };
  };
  assert.equal((await run()).result.metrics?.['read'], 3);
  assert.equal((await run()).result.metrics?.['read'], 0);

  const st = await fs.stat(file);
  await fs.writeFile(file, after); // same inode, same size
  await fs.utimes(file, hourAgo, hourAgo); // mtime as before: only ctime tells
  const st2 = await fs.stat(file);
  assert.equal(st2.ino, st.ino);
  assert.equal(st2.size, st.size);
  assert.equal(st2.mtimeMs, st.mtimeMs);
  const changed = await run();
  assert.equal(changed.result.metrics?.['read'], 1);
  const entry = readManifest(changed.outDir).entries.find((e) => e.rel === 'c0/a.png');
  assert.equal(entry?.sha256, createHash('sha256').update(after).digest('hex'));
});

test('ingest memo: rejects, duplicates and label conflicts settled from the memo give the same bytes as a cold run', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  // A duplicate within cat (collapsed), the same bytes in cat and dog (both rejected), no image, empty, hidden (excluded).
  await writeTree(src, await ingestEdgeCases(20));
  await new Promise((r) => setTimeout(r, PAST_RACY_WINDOW_MS));
  const run = async (cacheDir?: string) => {
    const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
    const c = cacheDir === undefined ? ctx : { ...ctx, cacheDir };
    return { result: await ingestStage.run(c), out: await ingestOutputs(ctx.outDir), warnings: ctx.log.warnings };
  };
  const first = await run();
  const memoised = await run();
  // Everything but the empty file (never memoised: it has no content to hash) is settled from a stat.
  assert.equal(first.result.metrics?.['read'], 7);
  assert.equal(memoised.result.metrics?.['read'], 1);
  assert.deepEqual(memoised.out, first.out);
  assert.equal(memoised.result.summary, first.result.summary);
  assert.equal(memoised.result.metrics?.['probed'], 0);
  assert.deepEqual(memoised.warnings, first.warnings);
  const cold = await run(path.join(rig.dir, 'cold-cache'));
  assert.deepEqual(cold.out, first.out);

  const rejects = first.out['rejects.jsonl']!.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { rel: string; reason: string });
  assert.deepEqual(
    rejects.map((r) => [r.rel, r.reason]),
    [
      ['cat/3.png', 'label-conflict'],
      ['dog/4.png', 'label-conflict'],
      ['dog/empty.png', 'empty'],
      ['dog/notes.png', 'not-an-image'],
    ],
  );
  assert.match(first.out['duplicates.jsonl']!, /"rel":"cat\/2\.png","keptRel":"cat\/1\.png"/);
  assert.equal(first.out['manifest.jsonl']!.split('\n').filter(Boolean).length, 2);
});

test('ingest: an abort while new files are queued for probing rejects with the reason and leaves no unhandled rejection', async () => {
  await using rig = await stageRig();
  const files: Record<string, Buffer> = {};
  const png = await pngOf(1);
  for (let i = 0; i < 600; i++) files[`c${i % 2}/${String(i).padStart(4, '0')}.png`] = i % 50 === 0 ? await pngOf(1000 + i) : png;
  await writeTree(path.join(rig.dir, 'src'), files);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    for (const when of ['at start', 'while files are queued', 'at first progress'] as const) {
      const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
      const ac = new AbortController();
      const reason = new Error(`stop ${when}`);
      if (when === 'at start') ac.abort(reason);
      // 'while files are queued': the abort comes at the third look at the signal: the walk's first
      // check, then the first queued tasks' (one of them then fails while the walk goes on).
      let looks = 0;
      const signal =
        when === 'while files are queued'
          ? new Proxy(ac.signal, {
              get(target, key) {
                if (key === 'aborted' && ++looks === 3) ac.abort(reason);
                return Reflect.get(target, key) as unknown;
              },
            })
          : ac.signal;
      const aborting = { ...ctx, signal, log: { ...ctx.log, progress: () => when === 'at first progress' && ac.abort(reason) } };
      await assert.rejects(ingestStage.run(aborting), (e) => e === reason);
      if (when === 'while files are queued') assert.ok(looks > 3, `the walk went on after the abort (${looks} looks)`);
    }
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(unhandled, []);
});

test('ingest memo: probe outcomes go to a small delta entry until it reaches 1/8 of the base, then fold into the base', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  const items = directoryItemCache(path.join(rig.cacheDir, 'items', 'ingest'));
  const keys = probeMemoKeys(INGEST_DEFAULTS.max_pixels);
  const stored = async () => ({ base: await items.get(keys.base), delta: await items.get(keys.delta) });
  const count = (entry: Buffer | undefined) => decodeProbeOutcomes(entry).size;
  const run = async () => (await ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' })))).metrics?.['probed'];
  let seed = 3000;
  const add = async (n: number) => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < n; i++, seed++) files[`c${seed % 2}/${seed}.png`] = await pngOf(seed);
    await writeTree(src, files);
  };

  await add(40);
  assert.equal(await run(), 40);
  const first = await stored();
  const baseFile = itemEntryFile(path.join(rig.cacheDir, 'items', 'ingest'), keys.base);
  const baseInode = (await fs.stat(baseFile)).ino;
  assert.equal(count(first.base), 40);
  assert.equal(count(first.delta), 0);

  await add(2);
  assert.equal(await run(), 2);
  const second = await stored();
  assert.deepEqual(second.base, first.base, 'two new outcomes do not rewrite the base');
  assert.equal(count(second.delta), 2);

  await add(2);
  assert.equal(await run(), 2);
  assert.deepEqual((await stored()).base, first.base);
  assert.equal((await fs.stat(baseFile)).ino, baseInode, 'the base entry was not replaced');
  assert.equal(count((await stored()).delta), 4);

  await add(4); // 8 in the delta: 1/5 of the base's size, past 1/8
  assert.equal(await run(), 4);
  const folded = await stored();
  assert.equal(count(folded.base), 48);
  assert.equal(count(folded.delta), 0);
  assert.equal(await run(), 0, 'everything is known after the fold');

  // An unreadable delta loses only its own outcomes: those files are probed again.
  await add(1);
  assert.equal(await run(), 1);
  await items.put(keys.delta, Buffer.from('{not json'));
  assert.equal(await run(), 1);
  assert.equal(await run(), 0);
});

test('ingest memo: a source reached through a symlink keeps its workspace paths in the manifest, is settled by stat on re-runs, and a change is still seen', async () => {
  await using rig = await stageRig();
  const real = path.join(rig.dir, 'elsewhere', 'images');
  await writeTree(real, { 'c0/a.png': await pngOf(40), 'c1/b.png': await pngOf(41) });
  await fs.symlink(real, path.join(rig.dir, 'src'));
  const hourAgo = Math.floor(Date.now() / 1000) - 3600;
  for (const f of ['c0/a.png', 'c1/b.png']) await fs.utimes(path.join(real, f), hourAgo, hourAgo);
  await new Promise((r) => setTimeout(r, PAST_RACY_WINDOW_MS));
  const run = async () => {
    const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
    return { result: await ingestStage.run(ctx), outDir: ctx.outDir };
  };
  const first = await run();
  assert.equal(first.result.metrics?.['read'], 2);
  assert.deepEqual(
    readManifest(first.outDir).entries.map((e) => e.path),
    [path.join(rig.dir, 'src', 'c0', 'a.png'), path.join(rig.dir, 'src', 'c1', 'b.png')],
  );
  const second = await run();
  assert.equal(second.result.metrics?.['read'], 0);
  assert.equal(await fs.readFile(path.join(second.outDir, 'manifest.jsonl'), 'utf8'), await fs.readFile(path.join(first.outDir, 'manifest.jsonl'), 'utf8'));
  await fs.writeFile(path.join(real, 'c1', 'b.png'), await pngOf(42));
  const third = await run();
  assert.equal(third.result.metrics?.['read'], 1);
  assert.equal(readManifest(third.outDir).entries.find((e) => e.rel === 'c1/b.png')?.sha256, createHash('sha256').update(await pngOf(42)).digest('hex'));
});
