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
