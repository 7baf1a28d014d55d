/**
 * Full disk, long part (issue 7; `npm run test:stress full-disk`): the cases
 * of test/reliability/full-disk-scenario.ts with the free space swept, so the
 * disk fills at many points (while a cmd output is copied into the cache,
 * while a record or the experiment is written, while resize writes packs or
 * item-cache entries, while outputs are restored into the workspace). At each
 * size the run either fits (then it must be correct) or fails cleanly: stage
 * named, ENOSPC in plain words, no partial record, verify clean, earlier
 * outputs restore, and after freeing space the next run completes with the
 * outputs of a run that never met a full disk.
 *
 * Figure `full-disk`: sizes handled of sizes tried (detail: how many met the
 * full disk, and the messages seen).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheFull, canMount, experimentFull, itemsFull, workspaceFull, type DiskOutcome } from '../reliability/full-disk-scenario.js';
import { recordFigure } from './figures.js';

const mount = canMount();

test('full disk at many points: every run fails cleanly or completes correctly', { skip: mount.ok ? false : mount.reason, timeout: 3600_000 }, async () => {
  const outcomes: DiskOutcome[] = [];
  for (const leaveKiB of [0, 4, 16, 48, 96, 160, 240, 320, 400, 480]) outcomes.push(await cacheFull({ kib: 1024, leaveKiB, bigKb: 400 }));
  for (const leaveKiB of [0, 8, 48, 200, 400]) outcomes.push(await workspaceFull({ kib: 2048, leaveKiB, bigKb: 400 }));
  for (const leaveKiB of [0, 8, 32, 64, 100, 140]) outcomes.push(await itemsFull({ kib: 256, leaveKiB }));
  for (const kib of [512, 1024]) outcomes.push(await experimentFull({ kib }));
  const failed = outcomes.filter((o) => !o.ok);
  recordFigure({
    id: 'full-disk',
    label: 'full-disk cases handled (stage named with ENOSPC, no partial record, verify clean, earlier outputs restore, completes after freeing space)',
    value: outcomes.length - failed.length,
    of: outcomes.length,
    detail: {
      metFullDisk: outcomes.filter((o) => o.hitFull).length,
      messages: [...new Set(outcomes.flatMap((o) => (o.message ? [o.message.replace(/\/tmp\/[^ ;]+/g, '<path>')] : [])))],
      cases: outcomes.map((o) => `${o.ok ? 'ok' : 'FAILED'} ${o.id}${o.hitFull ? '' : ' (fit: no full disk met)'}`),
      failures: failed.map((o) => `${o.id}: ${o.problems.join('; ').slice(0, 600)}`),
      seconds: Math.round(outcomes.reduce((s, o) => s + o.seconds, 0)),
    },
  });
  assert.deepEqual(failed.map((o) => `${o.id}: ${o.problems.join('; ')}`), []);
});
