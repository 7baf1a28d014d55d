/**
 * The built-in stage host: a real child process over IPC, running the real
 * `ingest` stage on real PNGs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { runBuiltin } from '../../src/stage-host/host.js';

async function workspace(images: number): Promise<AsyncDisposable & { dir: string; out: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stage-host-'));
  for (let i = 0; i < images; i++) {
    const cls = i % 2 === 0 ? 'a' : 'b';
    await fs.mkdir(path.join(dir, 'img', cls), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: i % 256, g: 40, b: 90 } } })
      .png()
      .toFile(path.join(dir, 'img', cls, `${i}.png`));
  }
  const out = path.join(dir, 'staging');
  await fs.mkdir(out);
  return { dir, out, [Symbol.asyncDispose]: () => fs.rm(dir, { recursive: true, force: true }) };
}

const base = (w: { dir: string; out: string }) => ({
  stageId: 'ingest',
  stageName: 'ingest',
  params: { source: 'img', include: ['**/*'], exclude: [], on_invalid: 'skip', max_pixels: 1_000_000, follow_symlinks: false },
  inputs: {},
  outDir: w.out,
  workspace: w.dir,
  cacheDir: path.join(w.dir, 'cache'),
  seed: 0,
});

test('runs a built-in in a child process and returns its result; outputs land in outDir', async () => {
  await using w = await workspace(4);
  const progress: string[] = [];
  const r = await runBuiltin({ ...base(w), onProgress: (d, t, l) => progress.push(`${d}/${t} ${l}`) });
  assert.equal(r.kind, 'ok', JSON.stringify(r));
  const files = (await fs.readdir(w.out)).sort();
  assert.ok(files.includes('manifest.jsonl') && files.includes('classes.json'), files.join(','));
  assert.equal((await fs.readFile(path.join(w.out, 'manifest.jsonl'), 'utf8')).trim().split('\n').length, 4);
  assert.ok(progress.includes('4/4 probe'), progress.join(';'));
});

test('an unknown stage and a throwing stage are failures with the message, not crashes', async () => {
  await using w = await workspace(0);
  const unknown = await runBuiltin({ ...base(w), stageName: 'no-such-stage' });
  assert.deepEqual(unknown, { kind: 'failed', message: 'unknown built-in stage "no-such-stage"' });
  const bad = await runBuiltin({ ...base(w), params: { ...base(w).params, source: 'does-not-exist', on_invalid: 'fail' } });
  assert.equal(bad.kind, 'failed');
  assert.match((bad as { message: string }).message, /does-not-exist/);
});

test('abort kills the child process group and reports cancelled', async () => {
  await using w = await workspace(64);
  const ac = new AbortController();
  let pid: number | undefined;
  const r = await runBuiltin({
    ...base(w),
    signal: ac.signal,
    killGraceMs: 50,
    onSpawn: (p) => {
      pid = p;
      setTimeout(() => ac.abort(), 30);
      return () => {};
    },
  });
  assert.deepEqual(r, { kind: 'cancelled' });
  assert.ok(pid !== undefined);
  assert.throws(() => process.kill(pid!, 0), 'the child is gone');
});

test('with offerRefs, the host reports each item entry it writes (wrote) and the engine flushes them ahead of adoption', async () => {
  await using w = await workspace(5);
  const ingested = await runBuiltin(base(w));
  assert.equal(ingested.kind, 'ok', JSON.stringify(ingested));
  const { CacheStore } = await import('../../src/cache/store.js');
  const store = await CacheStore.open(path.join(w.dir, 'cache'));
  const staging = await store.makeStagingDir();
  const wrote: string[] = [];
  const r = await runBuiltin({
    ...base(w),
    stageId: 'resize',
    stageName: 'resize',
    params: { size: [4, 4] },
    inputs: { ingest: w.out },
    outDir: staging,
    offerRefs: true,
    onWrote: (files) => {
      wrote.push(...files);
      store.flushSoon(files);
    },
  });
  assert.equal(r.kind, 'ok', JSON.stringify(r));
  if (r.kind !== 'ok') return;
  // One entry per image, each in the resize item cache, each referenced as an output.
  assert.equal(new Set(wrote).size, 5);
  for (const f of wrote) assert.ok(f.startsWith(path.join(w.dir, 'cache', 'items', 'resize') + path.sep) && (await fs.stat(f)).isFile(), f);
  assert.equal(r.refs?.filter((ref) => ref.sha256 !== undefined).length, 5, 'each written entry carries its hash');
  const stored = await store.ingestStaging(staging, { namespace: 'resize', refs: r.refs! });
  assert.ok(stored.ok);
  assert.deepEqual(store.flushStats, { ahead: 5, atAdoption: 0 });
  assert.equal((await store.verify()).corrupt.length, 0);
});
