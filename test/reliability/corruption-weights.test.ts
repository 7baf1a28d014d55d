/**
 * Weights faults (issue 7), fast part: every case of
 * corruption-weights-scenario.ts (real HTTP on 127.0.0.1; about a second).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWeightsCases } from './corruption-weights-scenario.js';

test('weights: interrupted, short, mismatched, cancelled and corrupted downloads are refused, never cached, and the message says what to do', async () => {
  const outcomes = await runWeightsCases();
  assert.equal(outcomes.length, 11);
  assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => `${o.id}: ${o.problems.join('; ')}`), []);
});
