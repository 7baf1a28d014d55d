/**
 * Crash-kill survival, the fast part (the full 50 kills: test/stress/crash-kill.stress.ts):
 * three SIGKILLs of `pipeline run` at seeded-random points of a real pipeline
 * (one per mode: fresh, killed twice, killed while restoring), each followed
 * by a run that must complete with outputs, keys and metrics identical to an
 * uninterrupted run, a clean `cache verify`, no stale lock and no orphan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashKillScenario } from './crash-kill-scenario.js';

test('kill -9 of pipeline run at 3 random points: every next run completes with identical outputs and a clean cache', async () => {
  const r = await crashKillScenario(3, 7, { log: (l) => console.log(`# ${l}`) });
  const failed = r.outcomes.filter((o) => !o.survived);
  assert.deepEqual(
    failed.map((o) => ({ kill: o.index, mode: o.mode, at: o.killAtMs, during: o.runningAtKill, failures: o.failures })),
    [],
  );
  assert.equal(r.survived, 3);
});
