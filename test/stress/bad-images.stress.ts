/**
 * Bad input → images, the figures (issue 7; scenario in
 * test/reliability/bad-images-scenario.ts):
 * - `bad-images`: every kind through the real CLI (ingest → resize → partition)
 *   in one run, handled with the right pixels or rejected with its reason, N of N;
 * - `bomb-rss`: peak RSS (and wall time) of a child process running ingest on
 *   a 30000×30000 PNG, worst of BOMB_RUNS (default 3), against the same child without it;
 * - `avif-bomb-rss`: the same for a 6000×6000 AVIF of under 1 KB (under the
 *   pixel limit, but decoded whole, so held to max_pixels bytes of frame);
 * - `image-fuzz`: IMAGE_FUZZ_N (default 600) mutated JPEG/PNG/WebP/GIF/TIFF files
 *   through probe + resize without a crash, then the same files through the real
 *   CLI: every file handled, collapsed as a duplicate or rejected with a reason,
 *   the run completes, and each reject reason equals a serial probe's.
 * Seed: IMAGE_FUZZ_SEED (default 20261128).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  runBadImageSet,
  AVIF_BOMB,
  measureBombRejection,
  runPipelineAs,
  tempWorkspace,
} from '../reliability/bad-images-scenario.js';
import { fuzzCases, fuzzImages, judgeFuzzRun, writeFuzzDataset } from '../reliability/bad-images-fuzz.js';
import { recordFigure } from './figures.js';

const FUZZ_N = Number(process.env['IMAGE_FUZZ_N'] ?? 600);
const FUZZ_SEED = Number(process.env['IMAGE_FUZZ_SEED'] ?? 20261128);
const BOMB_RUNS = Number(process.env['BOMB_RUNS'] ?? 3);

test('bad images: every kind handled with the right pixels or rejected with its reason, in one CLI run', { timeout: 10 * 60 * 1000 }, async () => {
  await using ws = await tempWorkspace();
  const { set, run, verdicts } = await runBadImageSet(ws.dir);
  const ok = verdicts.filter((v) => v.ok).length;
  recordFigure({
    id: 'bad-images',
    label: 'bad image kinds handled or rejected with a reason',
    value: ok,
    of: verdicts.length,
    detail: {
      perKind: Object.fromEntries(verdicts.map((v) => [v.kind, { ok: v.ok, outcome: v.outcome, detail: v.detail }])),
      unreadableCase: set.unreadable.how === 'uid' ? `CLI run as uid ${set.unreadable.uid} (we are root)` : set.unreadable.how,
      cliMs: run.ms,
    },
  });
  assert.deepEqual(verdicts.filter((v) => !v.ok), []);
});

test(`bad images: peak RSS of rejecting a 30000x30000 PNG in a child running ingest (worst of ${BOMB_RUNS})`, { timeout: 10 * 60 * 1000 }, async () => {
  const runs = [];
  for (let i = 0; i < BOMB_RUNS; i++) {
    await using ws = await tempWorkspace();
    runs.push(await measureBombRejection(ws.dir));
  }
  for (const m of runs) {
    assert.equal(m.reject?.reason, 'too-many-pixels');
    assert.equal(m.accepted, 1);
  }
  const worst = runs.reduce((a, b) => (b.peakMiB > a.peakMiB ? b : a));
  const slowest = Math.max(...runs.map((m) => m.ms));
  recordFigure({
    id: 'bomb-rss',
    label: 'peak RSS of the 30000x30000 PNG rejection',
    value: Math.round(worst.peakMiB * 10) / 10,
    unit: 'MiB',
    detail: {
      ms: Math.round(slowest),
      msEach: runs.map((m) => Math.round(m.ms)),
      cpuMsEach: runs.map((m) => Math.round(m.cpuMs)),
      probeMsEach: runs.map((m) => Math.round(m.probeMs)),
      baselineMiB: Math.round(worst.baselineMiB * 10) / 10,
      peakEachMiB: runs.map((m) => Math.round(m.peakMiB * 10) / 10),
      what: 'ms = wall time of ingestStage.run over the bomb and one 12x10 PNG (incl. writing its 6 outputs), inside a child node process; cpuMs = its CPU time; probeMs = reading + probing the bomb alone afterwards; peak RSS = that child\'s maxRSS; baseline = the same child without the bomb',
      reject: worst.reject?.detail,
    },
  });
  assert.ok(worst.peakMiB < 300, `peak ${worst.peakMiB} MiB`);
  assert.ok(worst.peakMiB - worst.baselineMiB < 64, `peak ${worst.peakMiB} MiB vs ${worst.baselineMiB} MiB without the bomb`);
  assert.ok(slowest < 1000, `slowest rejection ${slowest} ms`);
});

test('bad images: peak RSS of rejecting a 6000x6000 AVIF of under 1 KB (decoded whole) in a child running ingest', { timeout: 10 * 60 * 1000 }, async () => {
  await using ws = await tempWorkspace();
  const m = await measureBombRejection(ws.dir, AVIF_BOMB);
  recordFigure({
    id: 'avif-bomb-rss',
    label: 'peak RSS of rejecting a 6000x6000 AVIF decoded whole (under max_pixels; its frame is not)',
    value: Math.round(m.peakMiB * 10) / 10,
    unit: 'MiB',
    detail: { ms: Math.round(m.ms), cpuMs: Math.round(m.cpuMs), probeMs: Math.round(m.probeMs), bytesOnDisk: m.bytes, baselineMiB: Math.round(m.baselineMiB * 10) / 10, reject: m.reject?.detail, before: 'probing it decoded the frame: ~683 MiB peak RSS and ~4 s (measured before the whole-frame check)' },
  });
  assert.equal(m.reject?.reason, 'too-many-pixels');
  assert.ok(m.peakMiB - m.baselineMiB < 64, `peak ${m.peakMiB} MiB vs ${m.baselineMiB} MiB without the bomb`);
});

test(`bad images: ${FUZZ_N} mutated image files, 0 crashes, each handled or rejected with a reason (probe + resize, then the real CLI)`, { timeout: 30 * 60 * 1000 }, async () => {
  const t0 = Date.now();
  const direct = await fuzzImages(FUZZ_N, FUZZ_SEED);
  const directMs = Date.now() - t0;

  await using ws = await tempWorkspace('bad-images-fuzz-');
  const cases = await fuzzCases(FUZZ_N, FUZZ_SEED);
  const rels = await writeFuzzDataset(ws.dir, cases);
  const run = await runPipelineAs(ws.dir, { how: 'chmod' }, 10 * 60 * 1000);
  const viaCli = run.code === 0 ? await judgeFuzzRun(ws.dir, cases, rels) : undefined;
  const cliOk = viaCli !== undefined && viaCli.lost.length === 0 && viaCli.reasonMismatches.length === 0;
  recordFigure({
    id: 'image-fuzz',
    label: 'mutated image files without a crash (probe+resize), each handled or rejected with a reason; then all through the CLI',
    value: FUZZ_N - direct.crashes.length,
    of: FUZZ_N,
    detail: {
      seed: FUZZ_SEED,
      handled: direct.handled,
      rejected: direct.rejected,
      bySeed: direct.bySeed,
      crashes: direct.crashes.slice(0, 20),
      directMs,
      cli: viaCli === undefined
        ? { exit: run.code, output: (run.stdout + run.stderr).slice(-2000) }
        : { exit: run.code, ms: run.ms, handled: viaCli.handled, duplicates: viaCli.duplicates, rejected: viaCli.rejected, lost: viaCli.lost.slice(0, 20), reasonMismatches: viaCli.reasonMismatches.slice(0, 20) },
    },
  });
  assert.deepEqual(direct.crashes, []);
  assert.equal(run.code, 0, run.stdout.slice(-3000) + run.stderr);
  assert.ok(cliOk, JSON.stringify(viaCli, null, 1));
  assert.equal(viaCli!.handled + viaCli!.duplicates + Object.values(viaCli!.rejected).reduce((a, b) => a + b, 0), FUZZ_N);
});
