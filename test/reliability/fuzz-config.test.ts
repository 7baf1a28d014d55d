/**
 * Fast part of the pipeline-file fuzzer (the stress run does 10,000 cases):
 * a few hundred seeded mutations of the example pipelines through
 * `loadPipeline`, and a sample through the real CLI process. No throw, no
 * stack trace, every failure a diagnostic located inside its file, no
 * output accepted outside the workspace, each load within its budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzzConfig, makeCase, seedTexts } from './fuzz-config-scenario.js';

test('fuzzed pipeline files: no crash, every failure located, bounded time and memory', async () => {
  const r = await runFuzzConfig({ count: 500, seed: 7, cliSample: 6 });
  console.log(`# fuzz-config fast: ${r.passed}/${r.count}, max ${r.maxMs.toFixed(0)} ms CPU (${r.maxMsMutator}), max heap growth ${r.maxHeapMiB.toFixed(0)} MiB, CLI ${r.cliCases} cases`);
  assert.deepEqual(
    r.problems.map((p) => `#${p.index} ${p.mutator} ${p.kind}: ${p.message.slice(0, 300)}\n  ${p.sample}`),
    [],
  );
  assert.equal(r.passed, r.count);
  assert.equal(r.cliCases, 6);
  // Every mutator ran, and both outcomes happen (a fuzzer that only produces rejects tests little).
  for (const [name, s] of Object.entries(r.byMutator)) assert.ok(s.cases > 0, `mutator ${name} never ran`);
  const accepted = Object.values(r.byMutator).reduce((n, s) => n + s.accepted, 0);
  const rejected = Object.values(r.byMutator).reduce((n, s) => n + s.rejected, 0);
  assert.ok(accepted > 20 && rejected > 100, `accepted ${accepted}, rejected ${rejected}`);
});

test('the fuzzer is deterministic: a case is rebuilt from (seed, index)', () => {
  const seeds = seedTexts();
  assert.ok(seeds.length >= 10, 'the example pipelines and the fixtures are the seeds');
  for (const i of [0, 17, 499]) assert.deepEqual(makeCase(7, i, seeds), makeCase(7, i, seeds));
  assert.notDeepEqual(makeCase(7, 1, seeds), makeCase(8, 1, seeds));
});
