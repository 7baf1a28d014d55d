import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { humanReporter } from '../../src/log/human.js';
import { ndjsonReporter } from '../../src/log/ndjson.js';
import { etaSeconds, formatBar, formatDuration, formatProgress, itemsPerSecond, updateProgress } from '../../src/log/progress.js';
import type { RunEvent } from '../../src/events.js';
import type { StageId } from '../../src/pipeline.js';

function sinkStream(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  }) as Writable & { text: () => string };
  w.text = () => chunks.join('');
  return w;
}

const s = (x: string): StageId => x as StageId;
const events: RunEvent[] = [
  { type: 'run-start', time: 0, pipeline: 'demo', file: '/w/pipeline.yaml', stages: [s('prep'), s('train'), s('eval')], jobs: 2, dry: false },
  { type: 'stage-end', time: 1, stage: s('prep'), status: 'fresh', durationMs: 0, key: 'k1' },
  { type: 'stage-start', time: 1000, stage: s('train'), action: 'run', key: 'k2', reason: 'param train.lr changed: 0.1 → 0.01' },
  { type: 'stage-output', time: 1100, stage: s('train'), stream: 'stdout', line: 'epoch 1' },
  { type: 'stage-progress', time: 1200, stage: s('train'), done: 0, total: 100 },
  { type: 'stage-progress', time: 2200, stage: s('train'), done: 50, total: 100 },
  { type: 'stage-progress', time: 2300, stage: s('train'), done: 52, total: 100 },
  { type: 'stage-end', time: 3500, stage: s('train'), status: 'ran', durationMs: 2500, key: 'k2', metrics: { acc: 0.912345 } },
  { type: 'stage-end', time: 3600, stage: s('eval'), status: 'failed', durationMs: 100, error: 'stage eval failed: exit code 2' },
  { type: 'run-end', time: 3700, ok: false, cancelled: false, durationMs: 3700, counts: { fresh: 1, ran: 1, failed: 1 } },
];

test('plain (non-TTY) human output is exact lines with no escape codes', () => {
  const out = sinkStream();
  const r = humanReporter({ out, tty: false, color: false });
  for (const e of events) r.sink(e);
  r.close();
  assert.equal(
    out.text(),
    [
      '· prep fresh',
      '> train running (param train.lr changed: 0.1 → 0.01)',
      '[train] epoch 1',
      '[train] [..................] 0/100',
      '[train] [#########.........] 50/100 50.0 it/s ETA 1.0s',
      '✓ train ran in 2.5s  acc=0.9123',
      '✗ eval stage eval failed: exit code 2',
      '1 ran, 1 fresh, 1 failed in 3.7s',
      '',
    ].join('\n'),
  );
});

test('TTY output redraws a live block in place and colours when asked', () => {
  const out = sinkStream();
  let t = 1000;
  const r = humanReporter({ out, tty: true, color: true, now: () => t, redrawMs: 1_000_000 });
  for (const e of events.slice(0, 6)) {
    t = e.time;
    r.sink(e);
  }
  const text = out.text();
  assert.match(text, /\x1b\[1A\x1b\[J/, 'moves up and clears the live line before printing above it');
  assert.match(text, /\x1b\[36m[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]\x1b\[39m \x1b\[1mtrain\x1b\[22m running 1\.2s {2}\[#########\.{9}\] 50\/100 50\.0 it\/s ETA 1\.0s/);
  r.close();
});

test('NO colour means no escape codes even on a TTY', () => {
  const out = sinkStream();
  const r = humanReporter({ out, tty: true, color: false, now: () => 0, redrawMs: 1_000_000 });
  r.sink(events[1]);
  r.close();
  assert.equal(out.text(), '· prep fresh\n');
});

test('dry runs print the plan', () => {
  const out = sinkStream();
  const r = humanReporter({ out, tty: false, color: false });
  r.sink({ type: 'run-start', time: 0, pipeline: 'demo', file: '/w/p.yaml', stages: [s('a'), s('b')], jobs: 1, dry: true });
  r.sink({ type: 'stage-plan', time: 0, stage: s('a'), action: 'run', reason: 'input data/x.csv modified' });
  r.sink({ type: 'stage-plan', time: 0, stage: s('b'), action: 'unknown', reason: 'depends on a, which will run' });
  r.sink({ type: 'run-end', time: 0, ok: true, cancelled: false, durationMs: 5, counts: {} });
  assert.equal(out.text(), ['plan for demo (2 stages, dry run):', 'run      a  input data/x.csv modified', 'run?     b  depends on a, which will run', 'dry run: nothing was executed', ''].join('\n'));
});

test('nothing-to-do summary', () => {
  const out = sinkStream();
  const r = humanReporter({ out, tty: false, color: false });
  r.sink({ type: 'run-end', time: 0, ok: true, cancelled: false, durationMs: 40, counts: { fresh: 3 } });
  assert.equal(out.text(), 'nothing to do: 3 stages up to date (0.0s)\n');
});

test('NDJSON writes one parseable event per line', () => {
  const out = sinkStream();
  const sink = ndjsonReporter(out);
  for (const e of events) sink(e);
  const lines = out.text().trimEnd().split('\n');
  assert.equal(lines.length, events.length);
  assert.deepEqual(lines.map((l) => JSON.parse(l)), events);
});

test('progress arithmetic: rate, ETA, bar, durations', () => {
  let p = updateProgress(undefined, 10, 110, 'imgs', 0);
  assert.equal(itemsPerSecond(p), undefined);
  p = updateProgress(p, 60, 110, undefined, 2000);
  assert.equal(itemsPerSecond(p), 25);
  assert.equal(etaSeconds(p), 2);
  assert.equal(formatProgress(p, 12), '[#####.....] 60/110 25.0 it/s ETA 2.0s imgs');
  assert.equal(formatBar(3, 0, 6), '[....]');
  assert.equal(formatBar(9, 3, 6), '[####]');
  assert.deepEqual([0, 9_950, 42_000, 185_000, 3_720_000].map(formatDuration), ['0.0s', '9.9s', '42s', '3m05s', '1h02m']);
});

const sweepEvents: RunEvent[] = [
  { type: 'sweep-start', time: 0, sweep: 'abc123', shared: [s('prep')], variants: [{ index: 1, label: 'lr=0.1', overrides: { lr: 0.1 } }, { index: 2, label: 'lr=0.2', overrides: { lr: 0.2 } }] },
  { type: 'stage-end', time: 1, stage: s('prep'), status: 'ran', durationMs: 100, key: 'k1' },
  { type: 'stage-start', time: 1000, stage: s('train'), action: 'run', key: 'k2', variant: 'lr=0.1' },
  { type: 'stage-start', time: 1000, stage: s('train'), action: 'run', key: 'k3', variant: 'lr=0.2' },
  { type: 'stage-output', time: 1100, stage: s('train'), stream: 'stdout', line: 'epoch 1', variant: 'lr=0.2' },
  { type: 'stage-end', time: 2000, stage: s('train'), status: 'ran', durationMs: 1000, key: 'k2', metrics: { acc: 0.5 }, variant: 'lr=0.1' },
  { type: 'variant-end', time: 2000, variant: 'lr=0.1', index: 1, status: 'succeeded', durationMs: 2000, experiment: 'e1e1e1e', metrics: { 'train.acc': 0.5 } },
  { type: 'stage-end', time: 2500, stage: s('train'), status: 'failed', durationMs: 1500, key: 'k3', error: 'stage train failed: exit code 1', variant: 'lr=0.2' },
  { type: 'variant-end', time: 2500, variant: 'lr=0.2', index: 2, status: 'failed', durationMs: 2500, experiment: 'f2f2f2f', metrics: {} },
  { type: 'sweep-apply', time: 2600, variant: 'lr=0.1', index: 1, stages: [s('train')], problems: ['train: output log.txt is not cached (cache: false), so it stays as it was in the workspace'] },
];

test('sweeps: each variant\'s stage lines carry its label; variants end with their experiment id', () => {
  const out = sinkStream();
  const r = humanReporter({ out, tty: false, color: false });
  for (const e of sweepEvents) r.sink(e);
  r.close();
  assert.equal(
    out.text(),
    [
      'sweep abc123: 2 experiments (shared, run once: prep)',
      '  1. lr=0.1',
      '  2. lr=0.2',
      '✓ prep ran in 0.1s',
      '> train [lr=0.1] running',
      '> train [lr=0.2] running',
      '[train lr=0.2] epoch 1',
      '✓ train [lr=0.1] ran in 1.0s  acc=0.5',
      '■ experiment 1 [lr=0.1] succeeded in 2.0s, recorded as e1e1e1e  train.acc=0.5',
      '✗ train [lr=0.2] stage train failed: exit code 1',
      '■ experiment 2 [lr=0.2] failed after 2.5s, recorded as f2f2f2f',
      '↺ workspace holds experiment 1 [lr=0.1]',
      '  train: output log.txt is not cached (cache: false), so it stays as it was in the workspace',
      '',
    ].join('\n'),
  );
});

test('sweeps on a TTY: one live line per variant of the same stage', () => {
  const out = sinkStream();
  const r = humanReporter({ out, tty: true, color: false, now: () => 1500, redrawMs: 1_000_000 });
  for (const e of sweepEvents.slice(0, 4)) r.sink(e);
  const text = out.text();
  const lastBlock = text.slice(text.lastIndexOf('\x1b[J') + 3);
  assert.match(lastBlock, /train \[lr=0\.1\] running 0\.5s\n.*train \[lr=0\.2\] running 0\.5s\n$/);
  r.close();
});
