/**
 * Crash-kill survival, the full count (issue 7): 50 SIGKILLs of `pipeline run`
 * at seeded-random points of a real pipeline (ingest, resize, partition,
 * build-model, features, train, evaluate and a `cmd` stage; see
 * test/reliability/crash-kill-scenario.ts for the checks after each kill).
 * Records the figure `crash-kill` (survived of 50, kills by running stage) and
 * asserts 50/50. Seed: CRASH_KILL_SEED (default 20261128); count: CRASH_KILL_N (default 50).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashKillScenario } from '../reliability/crash-kill-scenario.js';
import { recordFigure } from './figures.js';

const N = Number(process.env['CRASH_KILL_N'] ?? 50);
const SEED = Number(process.env['CRASH_KILL_SEED'] ?? 20261128);

test(`kill -9 of pipeline run at ${N} random points: every next run completes, identical outputs, clean cache`, { timeout: 3 * 60 * 60 * 1000 }, async () => {
  const t0 = Date.now();
  const r = await crashKillScenario(N, SEED, { log: (l) => console.log(`# ${l}`) });
  const failed = r.outcomes.filter((o) => !o.survived);
  const byMode = (m: string) => r.outcomes.filter((o) => o.mode === m);
  recordFigure({
    id: 'crash-kill',
    label: 'crash-kill survival (kill -9 of pipeline run; the next run completes, outputs+metrics identical to an uninterrupted run, cache verify clean, no stale lock/orphan/partial record)',
    value: r.survived,
    of: N,
    detail: {
      seed: SEED,
      killsByStage: r.killsByStage,
      modes: Object.fromEntries(['fresh', 'double', 'restore'].map((m) => [m, `${byMode(m).filter((o) => o.survived).length}/${byMode(m).length}`])),
      coldRunMs: r.coldRunMs,
      restoreRunMs: r.restoreRunMs,
      seconds: Math.round((Date.now() - t0) / 1000),
      failures: failed.map((o) => ({ kill: o.index, mode: o.mode, atMs: o.killAtMs, during: o.runningAtKill, failures: o.failures.slice(0, 5) })),
    },
  });
  assert.deepEqual(failed.map((o) => ({ kill: o.index, mode: o.mode, at: o.killAtMs, during: o.runningAtKill, failures: o.failures })), []);
  assert.equal(r.survived, N);
});
