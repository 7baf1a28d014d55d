import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffExperiments, renderDiff, type ExperimentSnapshot } from '../../src/experiments/diff.js';

const a: ExperimentSnapshot = {
  id: 'a1b2c3d',
  name: 'baseline',
  params: { train: { lr: 0.001, epochs: 5 }, resize: { size: [32, 32] }, augment: { copies: 1 } },
  stageKeys: { ingest: 'k-ingest-000', train: 'k-train-aaaa', evaluate: 'k-eval-aaaaa' },
  metrics: { 'evaluate.accuracy': 0.81, 'train.loss': 0.52 },
};
const b: ExperimentSnapshot = {
  id: 'b2c3d4e',
  params: { train: { lr: 0.01, epochs: 5 }, resize: { size: [32, 32] }, seed: 7 },
  stageKeys: { ingest: 'k-ingest-000', train: 'k-train-bbbb', evaluate: '?' },
  metrics: { 'evaluate.accuracy': 0.86, 'train.loss': 0.41 },
};

test('diff: params old → new, metric deltas, stages with different keys (golden text)', () => {
  assert.equal(
    renderDiff(diffExperiments(a, b), 'text'),
    [
      'diff a1b2c3d (baseline) → b2c3d4e',
      '',
      'params:',
      '  train.lr: 0.001 → 0.01',
      '  augment.copies: 1 → —',
      '  seed: — → 7',
      '',
      'metrics:',
      '  evaluate.accuracy  0.81 → 0.86  (+0.05)',
      '  train.loss         0.52 → 0.41  (-0.11)',
      '',
      'stages with different keys:',
      '  train: k-train-aa → k-train-bb',
      '  evaluate: k-eval-aaa → ?',
      '',
    ].join('\n'),
  );
});

test('diff: markdown drops into a PR comment (golden)', () => {
  assert.equal(
    renderDiff(diffExperiments(a, b), 'md'),
    [
      '### a1b2c3d (baseline) → b2c3d4e',
      '',
      '| param | old | new |',
      '|---|---|---|',
      '| `train.lr` | 0.001 | 0.01 |',
      '| `augment.copies` | 1 | — |',
      '| `seed` | — | 7 |',
      '',
      '| metric | old | new | Δ |',
      '|---|---:|---:|---:|',
      '| evaluate.accuracy | 0.81 | 0.86 | +0.05 |',
      '| train.loss | 0.52 | 0.41 | -0.11 |',
      '',
      'Stages with different keys: `train`, `evaluate`',
      '',
    ].join('\n'),
  );
});

test('diff of identical snapshots lists no changes', () => {
  const d = diffExperiments(a, a);
  assert.deepEqual(d.params, []);
  assert.deepEqual(d.stages, []);
  assert.deepEqual(d.metrics.map((m) => m.delta), [0, 0]);
  assert.deepEqual(JSON.parse(renderDiff(d, 'json')).params, []);
});
