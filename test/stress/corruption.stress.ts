/**
 * Cache corruption, long part (issue 7; `npm run test:stress corruption`):
 * every fixed case of test/reliability/corruption-scenario.ts (each kind of
 * cache file: cmd and built-in output objects, a directory manifest, a
 * directory listing, resize packs and item-cache entries, run records,
 * experiment records, workspace state; each kind of damage: flipped byte,
 * truncation, deletion, a directory or symlink in an object's place), then
 * random byte flips in random cache files (CORRUPTION_FLIPS, default 60;
 * seeds 1..N, so a failure is reproducible with `randomFlipCase(seed)`).
 *
 * Figure `corruption`: cases where the fault was reported (verify, or
 * exp list for an experiment record), the next run recomputed what needed it,
 * and every workspace output equalled a clean run's; or, for a flip that
 * changed no data (the name of a record's checksum field), the run was clean.
 *
 * Figure `weights-faults`: the weights download faults of
 * corruption-weights-scenario.ts (cut, short, md5/sha256 mismatch, wrong
 * size, 404, offline, cancelled, a garbage partial, a wrong hand-placed file,
 * a cached copy corrupted on disk) refused, never cached, message says what
 * to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CASES, corruptionRig, randomFlipCase, type CaseOutcome } from '../reliability/corruption-scenario.js';
import { runWeightsCases } from '../reliability/corruption-weights-scenario.js';
import { recordFigure } from './figures.js';

const FLIPS = Number(process.env['CORRUPTION_FLIPS'] ?? 60);

test(`corruption: ${CASES.length} fixed cases and ${FLIPS} random byte flips are detected and recomputed, never restored`, { timeout: 3600_000 }, async () => {
  await using c = await corruptionRig();
  const outcomes: CaseOutcome[] = [];
  for (const k of CASES) outcomes.push(await c.runCase(k));
  for (let seed = 1; seed <= FLIPS; seed++) outcomes.push(await c.runCase(randomFlipCase(seed)));
  const failed = outcomes.filter((o) => !o.ok);
  const fixed = outcomes.slice(0, CASES.length);
  const flips = outcomes.slice(CASES.length);
  const byFile: Record<string, number> = {};
  for (const o of flips) {
    const kind = o.note.split('/')[0]!;
    byFile[kind] = (byFile[kind] ?? 0) + 1;
  }
  recordFigure({
    id: 'corruption',
    label: 'corruption cases detected and recomputed (verify reports it, next run recomputes, outputs equal a clean run)',
    value: outcomes.length - failed.length,
    of: outcomes.length,
    detail: {
      fixedCases: `${fixed.filter((o) => o.ok).length}/${fixed.length}`,
      randomFlips: `${flips.filter((o) => o.ok).length}/${flips.length}`,
      flipsChangingNoData: flips.filter((o) => o.harmless).map((o) => o.note),
      flipsByArea: byFile,
      cases: fixed.map((o) => `${o.ok ? 'ok' : 'FAILED'} ${o.id}: ${o.what}`),
      failures: failed.map((o) => `${o.id} (${o.note}): ${o.problems.join('; ').slice(0, 600)}`),
      seconds: Math.round(outcomes.reduce((s, o) => s + o.seconds, 0)),
    },
  });
  assert.deepEqual(failed.map((o) => `${o.id} (${o.note}): ${o.problems.join('; ')}`), []);
});

test('weights: interrupted downloads and hash mismatches are refused, never cached, and say what to do', async () => {
  const outcomes = await runWeightsCases();
  const failed = outcomes.filter((o) => !o.ok);
  recordFigure({
    id: 'weights-faults',
    label: 'weights download faults refused, never cached, message says what to do (real HTTP on 127.0.0.1)',
    value: outcomes.length - failed.length,
    of: outcomes.length,
    detail: { cases: outcomes.map((o) => `${o.ok ? 'ok' : 'FAILED'} ${o.id}: ${o.what}`), failures: failed.map((o) => `${o.id}: ${o.problems.join('; ')}`) },
  });
  assert.deepEqual(failed.map((o) => `${o.id}: ${o.problems.join('; ')}`), []);
});
