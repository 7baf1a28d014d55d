/**
 * Regression for a crash-kill finding: a process killed (-9) while writing a
 * record atomically left its temp file in the cache's tmp/ for good
 * (`<key>.json.<pid>.<rnd>.tmp`: the store's cleaner could not tell whose it
 * was). Temps in tmp/ now carry their owner (`<host>~<pid>~<start>~…`), so the
 * next `CacheStore.open` removes a dead writer's temp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CacheStore } from '../../src/cache/store.js';
import { writeFileAtomic } from '../../src/cache/atomic.js';

const atomicJs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cache', 'atomic.js');

test('a writer killed (-9) mid writeFileAtomic into the cache tmp/ leaves a temp that the next CacheStore.open removes', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'crash-kill-tmp-'));
  try {
    const tmpDir = path.join(root, 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    const target = path.join(root, 'records', 'ab', 'abcdef.json');
    // 256 MiB: long enough to be caught mid-write.
    const script = `const m = await import(${JSON.stringify(atomicJs)}); const b = Buffer.alloc(256 << 20, 1); process.send('go'); await m.writeFileAtomic(${JSON.stringify(target)}, b, { tmpDir: ${JSON.stringify(tmpDir)} });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const gone = new Promise((r) => child.on('exit', r));
    await new Promise((r) => child.once('message', r));
    let seen: string[] = [];
    for (let i = 0; i < 5000 && seen.length === 0; i++) {
      seen = await fs.readdir(tmpDir);
      if (seen.length === 0) await new Promise((r) => setTimeout(r, 1));
    }
    child.kill('SIGKILL');
    await gone;
    assert.equal(seen.length, 1, 'the writer was caught with its temp file in tmp/');
    assert.equal(await fs.access(target).then(() => true, () => false), false, 'killed before the rename');
    assert.match(seen[0]!, new RegExp(`^${os.hostname()}~${child.pid}~\\d*~[0-9a-f]+\\.abcdef\\.json\\.tmp$`));

    await CacheStore.open(root);
    assert.deepEqual(await fs.readdir(tmpDir), [], 'the dead writer\'s temp is removed');

    // The normal path: the temp is renamed away.
    await writeFileAtomic(path.join(root, 'x.json'), 'x', { tmpDir });
    assert.deepEqual(await fs.readdir(tmpDir), [], 'a completed write leaves nothing');
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('workspace state, the hash memo and experiment records stage their temps in the cache tmp/ (owner-named), never beside the file', async () => {
  const { WorkspaceState } = await import('../../src/cache/workspace-state.js');
  const { FileHasher } = await import('../../src/hash/file-hasher.js');
  const { writeExperiment } = await import('../../src/experiments/record.js');
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'crash-kill-tmp-'));
  try {
    const cache = path.join(root, 'cache');
    const ws = path.join(root, 'ws');
    await fs.mkdir(ws, { recursive: true });
    await fs.writeFile(path.join(ws, 'a.txt'), 'a');
    const tmpDir = path.join(cache, 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    const seen = new Set<string>();
    const watcher = (await import('node:fs')).watch(tmpDir, (_e, name) => name !== null && seen.add(String(name)));
    try {
      const state = await WorkspaceState.open(cache, ws);
      state.set('s', { key: 'k', outputs: [] } as unknown as Parameters<typeof state.set>[1]);
      await state.save();
      const hasher = await FileHasher.open(state.memoFile, { tmpDir, racyWindowMs: 0 });
      await hasher.hashDep(ws, 'a.txt');
      await hasher.save();
      await writeExperiment(cache, { format: 'pipeline.experiment/v1', id: 'abc1234', createdAt: new Date().toISOString(), pipeline: { name: 'p', file: path.join(ws, 'pipeline.yaml'), workspace: ws }, params: {}, stages: {}, metrics: {}, status: 'succeeded', durationMs: 1 } as unknown as Parameters<typeof writeExperiment>[1]);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      watcher.close();
    }
    const owner = new RegExp(`^${os.hostname()}~${process.pid}~\\d*~[0-9a-f]+\\.`);
    for (const suffix of ['.state.json.tmp', '.hash-memo.bin.tmp', '.abc1234.json.tmp']) {
      assert.ok([...seen].some((n) => owner.test(n) && n.endsWith(suffix)), `a temp *${suffix} named after its owner passed through tmp/: ${[...seen].join(', ')}`);
    }
    const { readdir } = fs;
    const all = await readdir(cache, { recursive: true });
    assert.deepEqual(all.filter((f) => f.endsWith('.tmp')), [], 'no temp left anywhere');
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
