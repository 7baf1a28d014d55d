/**
 * `pipeline status`, `pipeline explain` and `pipeline dag` end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, type E2eRig } from '../helpers/rig.js';

function pipeline(rig: E2eRig, lr: number, extraEnv = 'x'): string {
  return pipelineYaml({
    name: 'st',
    params: { train: { lr, epochs: 3 } },
    stages: {
      prep: { cmd: rig.step('prep', '--in', 'data/raw.txt', '--out', 'out/prep.txt'), deps: ['data/raw.txt'], outs: ['out/prep.txt'] },
      train: {
        cmd: rig.step('train', '--in', 'out/prep.txt', '--out', 'out/model.txt', '--text', 'lr=${params.train.lr}'),
        deps: ['out/prep.txt'],
        params: ['train.epochs'],
        env: { MODE: extraEnv },
        outs: ['out/model.txt'],
      },
      report: { cmd: rig.step('report', '--in', 'out/model.txt', '--out', 'out/report.txt'), deps: ['out/model.txt'], outs: ['out/report.txt'] },
    },
  });
}

test('status: fresh, stale with the reason, will-run, restorable', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 0.1));
  await rig.write('data/raw.txt', 'raw\n');

  let s = await rig.cli(['status']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, ['prep    stale       never run in this workspace', 'train   will-run    upstream prep will run first', 'report  will-run    upstream train will run first', ''].join('\n'));

  assert.equal((await rig.cli(['run'])).code, 0);
  s = await rig.cli(['status']);
  assert.equal(s.stdout, ['prep    fresh', 'train   fresh', 'report  fresh', ''].join('\n'));

  await rig.write('pipeline.yaml', pipeline(rig, 0.01));
  s = await rig.cli(['status']);
  assert.equal(s.stdout, ['prep    fresh', 'train   stale       param train.lr changed: 0.1 → 0.01 (and 1 more)', 'report  will-run    upstream train will run first', ''].join('\n'));

  assert.equal((await rig.cli(['run'])).code, 0);
  await rig.write('pipeline.yaml', pipeline(rig, 0.1));
  s = await rig.cli(['status', '--json']);
  const rows = JSON.parse(s.stdout) as { stage: string; status: string; reason?: string }[];
  assert.deepEqual(
    rows.map((r) => [r.stage, r.status]),
    [
      ['prep', 'fresh'],
      ['train', 'restorable'],
      ['report', 'restorable'],
    ],
    'the old lr is in the cache, and so is report for the old model',
  );
});

test('explain lists exactly what changed: param path old → new, input file, upstream, env, command', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 0.1));
  await rig.write('data/raw.txt', 'raw\n');
  assert.equal((await rig.cli(['run'])).code, 0);

  let e = await rig.cli(['explain', 'train']);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /^train: fresh: nothing changed since its last run\n {2}last run \S+ \(key [0-9a-f]{12}\)\n$/);

  await rig.write('pipeline.yaml', pipeline(rig, 0.01, 'y'));
  e = await rig.cli(['explain', 'train']);
  const lines = e.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'train: stale: the next run executes it');
  assert.match(lines[1], /^ {2}last run \S+ \(key [0-9a-f]{12}\)$/);
  assert.deepEqual(lines.slice(2), ['  param train.lr changed: 0.1 → 0.01', '  env MODE changed: "x" → "y"', '  command changed: argument 8 "lr=0.1" → "lr=0.01"']);

  // An input edit upstream: prep is stale; train waits for it but its own inputs are listed as unchanged.
  await rig.write('pipeline.yaml', pipeline(rig, 0.1));
  await rig.write('data/raw.txt', 'raw2\n');
  e = await rig.cli(['explain', 'prep']);
  assert.deepEqual(e.stdout.trimEnd().split('\n').slice(2), ['  input data/raw.txt modified']);
  e = await rig.cli(['explain', 'train']);
  assert.deepEqual(e.stdout.trimEnd().split('\n'), [
    'train: will run after prep (its key depends on their new outputs)',
    e.stdout.split('\n')[1],
    '  nothing of its own changed; only upstream stages will rerun',
    '  upstream stage prep will run first',
  ]);

  // After the run, train's upstream output changed.
  assert.equal((await rig.cli(['run', '--stage', 'prep'])).code, 0);
  e = await rig.cli(['explain', 'train', '--json']);
  const j = JSON.parse(e.stdout) as { action: string; changes: { kind: string; text: string }[] };
  assert.equal(j.action, 'run');
  assert.deepEqual(j.changes.map((c) => c.text), ['input out/prep.txt modified', 'upstream stage prep produced different outputs']);

  e = await rig.cli(['explain', 'nope']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /unknown stage "nope"/);
});

test('dag prints text and mermaid', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 0.1));
  const t = await rig.cli(['dag']);
  assert.equal(t.code, 0);
  assert.match(t.stdout, /^st: 3 stages\n/);
  assert.match(t.stdout, /report +\(cmd .*\) +<- train/);
  const m = await rig.cli(['dag', '--mermaid']);
  assert.match(m.stdout, /^flowchart TD\n/);
  assert.match(m.stdout, /n0 --> n1\n {2}n1 --> n2\n$/);
});
