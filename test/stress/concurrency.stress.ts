/**
 * Issue 7, concurrency (long part of `test/reliability/concurrency.test.ts`):
 * many rounds of 3 simultaneous `pipeline run`s in one workspace and of two
 * workspaces on one cache (with gc, verify, status and exp list running
 * meanwhile), plus repeated kill -9 of the lock holder. Records the figures
 * `concurrency` (clean rounds of all) and `lock-reclaim` (kills after which
 * the next run reclaimed the lock and was correct). Rounds: CONCURRENCY_ROUNDS
 * (default 20 of each overlap scenario), CONCURRENCY_RESTORES (default 5 of
 * each gc-under-restore variant), CONCURRENCY_KILLS (default 10).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig } from '../helpers/rig.js';
import { recordFigure } from './figures.js';
import { gcDuringRestoreRound, killHolderRound, pidReuseCases, sameWorkspaceRound, sharedCacheRound, type RoundResult } from '../reliability/concurrency-scenario.js';

const ROUNDS = Number(process.env['CONCURRENCY_ROUNDS'] ?? 20);
const KILLS = Number(process.env['CONCURRENCY_KILLS'] ?? 10);
const RESTORES = Number(process.env['CONCURRENCY_RESTORES'] ?? 5);

function summary(results: readonly RoundResult[]): Record<string, unknown> {
  const failures = results.filter((r) => r.problems.length > 0).map((r) => ({ scenario: r.scenario, round: r.round, problems: r.problems.slice(0, 5) }));
  const counts: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.counts)) counts[`${r.scenario}.${k}`] = (counts[`${r.scenario}.${k}`] ?? 0) + v;
  return { counts, failures };
}

test(`concurrency: ${ROUNDS} rounds of 3 runs in one workspace, ${ROUNDS} rounds of two workspaces on one cache, ${2 * RESTORES} gc-under-restore rounds, without corruption`, { timeout: 3_600_000 }, async () => {
  const results: RoundResult[] = [];
  const t0 = Date.now();
  {
    await using rig = await e2eRig();
    for (let round = 0; round < ROUNDS; round++) results.push(await sameWorkspaceRound(rig, round));
  }
  {
    await using rig = await e2eRig();
    for (let round = 0; round < ROUNDS; round++) results.push(await sharedCacheRound(rig, round));
  }
  {
    // gc in a loop under a restore: in the workspace that has state (gc must keep what it restores), and in new
    // workspaces on the same cache (gc cannot see them: it may delete under the restore, which must fall back).
    await using rig = await e2eRig();
    for (let round = 0; round < RESTORES; round++) results.push(await gcDuringRestoreRound(rig, round, { files: 300, graceS: 2 }));
    for (let round = 0; round < RESTORES; round++) results.push(await gcDuringRestoreRound(rig, 100 + round, { files: 1500, graceS: 6, freshWorkspace: true }));
  }
  const clean = results.filter((r) => r.problems.length === 0).length;
  recordFigure({
    id: 'concurrency',
    label: 'concurrent runs without corruption (rounds of 3 runs on one workspace + 2 workspaces on one cache with gc/verify/status/exp + gc under a restore; verify clean, records parse, outputs match records, reruns fresh)',
    value: clean,
    of: results.length,
    detail: { rounds: ROUNDS, restoreRounds: 2 * RESTORES, seconds: Math.round((Date.now() - t0) / 1000), ...summary(results) },
  });
  assert.deepEqual(results.filter((r) => r.problems.length > 0).map((r) => `${r.scenario} #${r.round}: ${r.problems.join('; ')}`), []);
});

test(`lock reclaim: ${KILLS} kill -9s of the lock holder mid-stage, plus a recycled-pid lock`, { timeout: 1_800_000 }, async () => {
  const results: RoundResult[] = [];
  const t0 = Date.now();
  {
    await using rig = await e2eRig();
    for (let round = 0; round < KILLS; round++) results.push(await killHolderRound(rig, round));
    results.push(await pidReuseCases(rig));
  }
  const clean = results.filter((r) => r.problems.length === 0).length;
  recordFigure({
    id: 'lock-reclaim',
    label: 'lock reclaimed after its holder died (kill -9 mid-stage, or a recycled pid): next run proceeds without --wait, says so, outputs correct, verify clean',
    value: clean,
    of: results.length,
    detail: { kills: KILLS, pidReuse: 1, seconds: Math.round((Date.now() - t0) / 1000), ...summary(results) },
  });
  assert.deepEqual(results.filter((r) => r.problems.length > 0).map((r) => `${r.scenario} #${r.round}: ${r.problems.join('; ')}`), []);
});
