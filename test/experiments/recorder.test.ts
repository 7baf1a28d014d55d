/** `sameAsLatest`: which runs repeat the latest experiment and are not recorded again. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sameAsLatest } from '../../src/experiments/recorder.js';
import type { ExperimentRecord } from '../../src/experiments/record.js';
import { record } from './fixtures.js';

const stages = (status: string, trainKey = 'k2'): ExperimentRecord['stages'] => ({
  prep: { key: 'k1', status, durationMs: 0, metrics: {} },
  train: { key: trainKey, status, durationMs: 0, metrics: {} },
});
const prev = record('a1b2c3d', 1, { lr: 0.1 }, {}, { stages: stages('ran') });

test('an all-fresh run with the same params and keys repeats the latest experiment', () => {
  assert.equal(sameAsLatest(prev, record('', 2, { lr: 0.1 }, {}, { stages: stages('fresh') })), prev);
});

test('anything new is recorded: a stage that ran or was restored, other keys, other params, a name, a failure', () => {
  assert.equal(sameAsLatest(prev, record('', 2, { lr: 0.1 }, {}, { stages: { ...stages('fresh'), train: { key: 'k2', status: 'restored', durationMs: 0, metrics: {} } } })), undefined);
  assert.equal(sameAsLatest(prev, record('', 2, { lr: 0.1 }, {}, { stages: stages('fresh', 'k3') })), undefined);
  assert.equal(sameAsLatest(prev, record('', 2, { lr: 0.2 }, {}, { stages: stages('fresh') })), undefined);
  assert.equal(sameAsLatest(prev, record('', 2, { lr: 0.1 }, {}, { stages: stages('fresh'), name: 'keep' })), undefined);
  assert.equal(sameAsLatest({ ...prev, status: 'failed' }, record('', 2, { lr: 0.1 }, {}, { stages: stages('fresh') })), undefined);
  assert.equal(sameAsLatest(undefined, record('', 2, { lr: 0.1 }, {}, { stages: stages('fresh') })), undefined);
});

test('the latest record is read per pipeline file, through its pointer or, without one, from all records', async () => {
  const fs = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const { readLatestExperiment, writeExperiment } = await import('../../src/experiments/record.js');
  const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'latest-exp-'));
  try {
    const { file, workspace } = prev.pipeline;
    assert.equal(await readLatestExperiment(cache, file, workspace), undefined);
    const other = record('b2c3d4e', 3, { lr: 0.1 }, {}, { stages: stages('ran'), pipeline: { name: 'o', file: '/w/other.yaml', workspace: '/w' } });
    await writeExperiment(cache, prev);
    await writeExperiment(cache, other);
    assert.deepEqual(await readLatestExperiment(cache, file, workspace), prev, 'another pipeline file written later does not count');
    const later = record('c3d4e5f', 5, { lr: 0.2 }, {}, { stages: stages('ran') });
    await writeExperiment(cache, later);
    assert.deepEqual(await readLatestExperiment(cache, file, workspace), later);
    // Without pointers (records from before they existed, or a lost pointer dir) all records are read.
    await fs.rm(path.join(cache, 'experiments', 'latest'), { recursive: true });
    assert.deepEqual(await readLatestExperiment(cache, file, workspace), later);
    assert.deepEqual(await readLatestExperiment(cache, '/w/other.yaml', '/w'), other);
  } finally {
    await fs.rm(cache, { recursive: true, force: true });
  }
  const partial = record('', 4, { lr: 0.1 }, {}, { stages: { prep: { key: 'k1', status: 'fresh', durationMs: 0, metrics: {} } } });
  assert.equal(sameAsLatest(prev, partial), undefined, 'a --stage run of a subset is recorded');
});
