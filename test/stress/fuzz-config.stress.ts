/**
 * Stress: 10,000 fuzzed pipeline files through `loadPipeline` (and 100 of
 * them through the CLI process), recorded as the `fuzz-config` figure. The
 * scenario and its oracle are in `test/reliability/fuzz-config-scenario.ts`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzzConfig } from '../reliability/fuzz-config-scenario.js';
import { recordFigure } from './figures.js';

const count = Number(process.env['FUZZ_CONFIG_COUNT'] ?? 10_000);
const seed = Number(process.env['FUZZ_CONFIG_SEED'] ?? 20261128);

test(`fuzz-config: ${count} fuzzed pipeline files without a crash, every failure located`, { timeout: 3_600_000 }, async () => {
  const started = Date.now();
  const r = await runFuzzConfig({ count, seed, cliSample: 100 });
  const kinds: Record<string, number> = {};
  for (const p of r.problems) kinds[`${p.mutator}/${p.kind}`] = (kinds[`${p.mutator}/${p.kind}`] ?? 0) + 1;
  recordFigure({
    id: 'fuzz-config',
    label: 'fuzzed pipeline files without a crash, every failure located',
    value: r.passed,
    of: r.count,
    detail: {
      seed,
      byMutator: r.byMutator,
      problems: kinds,
      firstProblems: r.problems.slice(0, 5).map((p) => ({ index: p.index, mutator: p.mutator, kind: p.kind, message: p.message.slice(0, 300) })),
      maxMs: Math.round(r.maxMs),
      maxMsMeaning: 'slowest load, CPU ms (user+system); budget 1000 ms + 2000 ms per MiB of input; heap budget 64 MiB + 128x input',
      maxMsMutator: r.maxMsMutator,
      maxWallMs: Math.round(r.maxWallMs),
      maxHeapMiB: Math.round(r.maxHeapMiB),
      maxRssMiB: Math.round(r.maxRssMiB),
      cliCases: r.cliCases,
      cliMaxMs: Math.round(r.cliMaxMs),
      seconds: Math.round((Date.now() - started) / 1000),
    },
  });
  assert.deepEqual(
    r.problems.slice(0, 20).map((p) => `#${p.index} ${p.mutator} ${p.kind}: ${p.message.slice(0, 300)}\n  ${p.sample}`),
    [],
  );
  assert.equal(r.passed, r.count);
  assert.equal(r.cliCases, 100);
});
