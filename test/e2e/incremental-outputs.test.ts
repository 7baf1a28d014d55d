/**
 * Incremental workspace outputs through the real CLI: after adding an image,
 * `resize` reruns and its output directory is updated in place (unchanged
 * per-image packs keep their inode, the directory is not swapped), and a file
 * the user left in the output directory is saved as a backup before the
 * engine replaces the directory. Real 8×8 PNGs through real sharp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs/promises';
import { e2eRig, pipelineYaml, statuses, type E2eRig } from '../helpers/rig.js';
import { WorkspaceState } from '../../src/cache/workspace-state.js';


/** rel path under out/resize → inode, for every file there. */
async function inodes(rig: E2eRig): Promise<Map<string, number>> {
  const root = path.join(rig.dir, 'out', 'resize');
  const out = new Map<string, number>();
  for (const e of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    out.set(path.relative(root, abs), (await fs.stat(abs)).ino);
  }
  return out;
}

test('adding an image updates out/resize in place: unchanged packs keep their inode; a user file there is backed up first', async () => {
  await using rig = await e2eRig();
  for (let i = 0; i < 6; i++) await rig.png(`images/${i % 2 ? 'cat' : 'dog'}/${i}.png`, [40 * i, 10, 255 - 40 * i]);
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'inc', cache: 'cache', stages: { ingest: { uses: 'ingest', with: { source: 'images' } }, resize: { uses: 'resize', with: { size: [4, 4] } } } }));
  let r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const before = await inodes(rig);
  const packs = [...before.keys()].filter((k) => k.endsWith('.px'));
  assert.equal(packs.length, 6);
  const dirIno = (await fs.stat(path.join(rig.dir, 'out', 'resize'))).ino;

  await rig.png('images/cat/new.png', [1, 2, 3]);
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'ran', resize: 'ran' });
  const after = await inodes(rig);
  assert.equal((await fs.stat(path.join(rig.dir, 'out', 'resize'))).ino, dirIno, 'directory updated in place, not swapped');
  for (const p of packs) assert.equal(after.get(p), before.get(p), `${p} untouched`);
  assert.equal([...after.keys()].filter((k) => k.endsWith('.px')).length, 7, 'the new pack is there');
  const state = await WorkspaceState.open(path.join(rig.dir, 'cache'), rig.dir);
  assert.equal((await state.backups()).length, 0, 'only engine output was there: nothing backed up');

  // A file the user put in the output dir survives as a backup when the output changes again.
  await rig.write('out/resize/notes.txt', 'mine');
  await rig.png('images/dog/new.png', [3, 2, 1]);
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const backups = await state.backups();
  assert.equal(backups.length, 1);
  const saved = backups[0]!.manifest.files.find((f) => f.path === 'notes.txt');
  assert.ok(saved, 'notes.txt is in the backup');
  const { CacheStore } = await import('../../src/cache/store.js');
  const store = await CacheStore.open(path.join(rig.dir, 'cache'));
  assert.equal(await fs.readFile(store.objectPath(saved.sha256), 'utf8'), 'mine');
  assert.equal([...(await inodes(rig)).keys()].filter((k) => k.endsWith('.px')).length, 8);

  // Removing an image removes its pack (from the cache: restored, in place or not, the pack is gone).
  await rig.rm('images/dog/new.png');
  await rig.rm('images/cat/new.png');
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual([...(await inodes(rig)).keys()].filter((k) => k.endsWith('.px')).sort(), packs.sort());
});
