/**
 * Full disk (issue 7), fast part: one case of each kind from
 * full-disk-scenario.ts on real size-limited tmpfs mounts (root only; skipped
 * with the reason otherwise): the cache full while storing a cmd output, the
 * workspace full while restoring outputs, resize's item-cache writes on a
 * full disk, and the experiment record write on a full disk. The stress file
 * sweeps the free space so the disk fills at many different points.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheFull, canMount, experimentFull, itemsFull, workspaceFull, type DiskOutcome } from './full-disk-scenario.js';

const mount = canMount();
const skip = mount.ok ? false : mount.reason;

function expectHandled(o: DiskOutcome): void {
  assert.ok(o.hitFull, `${o.id}: the run never met the full disk (the case is too small to test anything)`);
  assert.deepEqual(o.problems, [], o.id);
}

test('full cache: the failing stage is named with ENOSPC in plain words, nothing partial is left, earlier outputs restore and the run completes once space is freed', { skip }, async () => {
  const o = await cacheFull({ kib: 1024, leaveKiB: 200, bigKb: 500, images: 3 });
  expectHandled(o);
  assert.match(o.message!, /^✗ big stage big failed: no space left on device \(ENOSPC\); nothing was recorded for it: free some space \(`pipeline cache gc` removes unused cache entries; add --grace 0 when no other run is going, to include what this run stored\) and run again$/);
});

test('full workspace: restoring outputs fails cleanly (no temp files left), then restores once space is freed', { skip }, async () => {
  const o = await workspaceFull({ kib: 2048, leaveKiB: 100, bigKb: 500 });
  expectHandled(o);
  assert.match(o.message!, /stage big failed: no space left on device \(ENOSPC\) writing .*\/ws\/out\/\.big\.bin\.pipeline-tmp-/);
});

test("full disk under resize's item cache: resize fails with ENOSPC in plain words, ingest's result survives, the rerun is identical", { skip }, async () => {
  const o = await itemsFull({ kib: 256, leaveKiB: 16 });
  expectHandled(o);
  assert.match(o.message!, /resize stage resize failed: no space left on device \(ENOSPC\)/);
});

test('full disk under the experiment records: a plain warning, no partial record, earlier experiments listed, recorded again once space is freed', { skip }, async () => {
  const o = await experimentFull({ kib: 512 });
  expectHandled(o);
  assert.match(o.message!, /could not record the experiment: .*no space left on device/);
});
