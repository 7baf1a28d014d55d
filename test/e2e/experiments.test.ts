/**
 * End to end: experiments recorded by real runs, `exp list`, `diff`, `exp show`,
 * `exp checkout`, sweeps (shared upstream computed once) and `report`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { e2eRig, pipelineYaml, type E2eRig } from '../helpers/rig.js';

async function demo(rig: E2eRig): Promise<void> {
  await rig.write('data.txt', 'hello\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'demo',
      params: { train: { lr: 0.01, epochs: 3 } },
      stages: {
        prep: { cmd: rig.step('prep', '--in', 'data.txt', '--out', 'prep.txt'), deps: ['data.txt'], outs: ['prep.txt'] },
        train: {
          cmd: [...rig.step('train', '--in', 'prep.txt', '--out', 'model.txt', '--text', '${params.train.lr}', '--metrics', 'metrics.json'), '{"accuracy": 0.5}'],
          deps: ['prep.txt'],
          params: ['train.lr'],
          outs: ['model.txt'],
          metrics: ['metrics.json'],
        },
      },
    }),
  );
}

test('each run records an experiment; exp list shows differing params and metrics; diff compares', async () => {
  await using rig = await e2eRig();
  await demo(rig);
  assert.equal((await rig.cli(['run', '-n', 'base'])).code, 0);
  const second = await rig.cli(['run', '-S', 'train.lr=0.1']);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(await rig.count('prep'), 1, 'prep is shared');
  assert.equal(await rig.count('train'), 2);

  const list = await rig.cli(['exp', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Record<string, unknown>[];
  assert.equal(rows.length, 2);
  assert.deepEqual(rows.map((r) => r['train.lr']), [0.01, 0.1]);
  assert.equal(rows[0]!['name'], 'base');
  assert.equal(rows[0]!['train.accuracy'], 0.5);
  assert.ok(!('train.epochs' in rows[0]!), 'params that do not differ are not columns');

  const diff = await rig.cli(['diff']);
  assert.equal(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /params:\n  train\.lr: 0\.01 → 0\.1\n/);
  assert.match(diff.stdout, /stages with different keys:\n  train: \w+ → \w+\n/);
  assert.doesNotMatch(diff.stdout, /  prep:/);

  // One id: against the current pipeline file (which has lr 0.01 in the file).
  const vsCurrent = await rig.cli(['diff', 'base', '--json']);
  assert.equal(vsCurrent.code, 0, vsCurrent.stderr);
  const d = JSON.parse(vsCurrent.stdout) as { params: unknown[]; stages: unknown[] };
  assert.deepEqual(d.params, []);
  assert.deepEqual(d.stages, []);

  const show = await rig.cli(['exp', 'show', 'base']);
  assert.match(show.stdout, /experiment \w{7} \(base\)/);
  assert.match(show.stdout, /train\.lr = 0\.01/);
});

test('exp checkout restores an experiment\'s outputs without touching config files', async () => {
  await using rig = await e2eRig();
  await demo(rig);
  assert.equal((await rig.cli(['run', '-n', 'first'])).code, 0);
  assert.equal((await rig.cli(['run', '-S', 'train.lr=0.5'])).code, 0);
  assert.equal(await rig.read('model.txt'), 'hello\n0.5');
  const config = await rig.read('pipeline.yaml');
  const co = await rig.cli(['exp', 'checkout', 'first']);
  assert.equal(co.code, 0, co.stderr);
  assert.equal(await rig.read('model.txt'), 'hello\n0.01');
  assert.equal(await rig.read('pipeline.yaml'), config);
  assert.equal(await rig.count('train'), 2, 'checkout runs nothing');
});

test('a sweep of 4 experiments runs shared upstream once and records 4 experiments', async () => {
  await using rig = await e2eRig();
  await demo(rig);
  const r = await rig.cli(['run', '-S', 'train.lr=0.1,0.2', '-S', 'train.epochs=1,2']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(await rig.count('prep'), 1, 'shared upstream runs once');
  // train reads train.lr only, so epochs does not change its key: 2 distinct keys.
  assert.equal(await rig.count('train'), 2);
  const rows = JSON.parse((await rig.cli(['exp', 'list', '--json'])).stdout) as Record<string, unknown>[];
  assert.equal(rows.length, 4);
  assert.deepEqual(rows.map((x) => [x['train.lr'], x['train.epochs']]), [[0.1, 1], [0.1, 2], [0.2, 1], [0.2, 2]]);
});

test('report writes a self-contained page and PNG charts from recorded runs', async () => {
  await using rig = await e2eRig();
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'curves',
      stages: {
        train: {
          cmd: ['node', '-e', "require('fs').mkdirSync('out',{recursive:true});require('fs').writeFileSync('out/history.jsonl','{\"epoch\":1,\"loss\":1,\"acc\":0.5,\"val_loss\":1.1,\"val_acc\":0.45}\\n{\"epoch\":2,\"loss\":0.6,\"acc\":0.7,\"val_loss\":0.8,\"val_acc\":0.66}\\n');require('fs').writeFileSync('out/confusion.json',JSON.stringify({classes:['a','b'],matrix:[[3,1],[0,4]]}))"],
          outs: ['out'],
        },
      },
    }),
  );
  assert.equal((await rig.cli(['run'])).code, 0);
  const rep = await rig.cli(['report', '-o', 'rep/index.html']);
  assert.equal(rep.code, 0, rep.stderr);
  const html = await rig.read('rep/index.html');
  assert.match(html, /Loss per epoch/);
  assert.match(html, /Confusion matrix/);
  assert.ok(await rig.exists('rep/loss.png'));
  assert.ok(await rig.exists('rep/accuracy.svg'));
});

test('a no-op run does not record a second copy of the latest experiment; a run that restores does', async () => {
  await using rig = await e2eRig();
  await demo(rig);
  assert.equal((await rig.cli(['run'])).code, 0);
  const noop = await rig.cli(['run']);
  assert.equal(noop.code, 0, noop.stderr);
  const count = async (): Promise<number> => (JSON.parse((await rig.cli(['exp', 'list', '--json'])).stdout) as unknown[]).length;
  assert.equal(await count(), 1, 'the no-op run is the same experiment');
  assert.equal((await rig.cli(['run', '-S', 'train.lr=0.1'])).code, 0);
  assert.equal((await rig.cli(['run'])).code, 0, 'back to 0.01: train restored from the cache');
  assert.equal(await count(), 3);
  assert.equal((await rig.cli(['run'])).code, 0);
  assert.equal(await count(), 3, 'no-op again');
  // diff with no ids compares the last two runs that did something.
  const diff = await rig.cli(['diff']);
  assert.match(diff.stdout, /params:\n  train\.lr: 0\.1 → 0\.01\n/);
  // A named run is always recorded, even when nothing ran.
  assert.equal((await rig.cli(['run', '-n', 'again'])).code, 0);
  assert.equal(await count(), 4);
});

test('pipelines sharing a cache: -f FILE lists only that file\'s runs; without a file every run, with a pipeline column; empty results say where they looked', async () => {
  await using rig = await e2eRig();
  await demo(rig);
  await fs.rename(path.join(rig.dir, 'pipeline.yaml'), path.join(rig.dir, 'a.yaml'));
  await rig.write('b.yaml', pipelineYaml({ name: 'other', stages: { only: { cmd: rig.step('only', '--in', 'data.txt', '--out', 'b.txt'), deps: ['data.txt'], outs: ['b.txt'] } } }));
  assert.equal((await rig.cli(['run', 'a.yaml'])).code, 0);
  assert.equal((await rig.cli(['run', 'b.yaml'])).code, 0);
  const ofA = JSON.parse((await rig.cli(['exp', 'list', '--json', '-f', 'a.yaml'])).stdout) as Record<string, unknown>[];
  assert.equal(ofA.length, 1);
  const every = await rig.cli(['exp', 'list']);
  assert.match(every.stdout, /^id +name +pipeline +created/);
  assert.match(every.stdout, / demo /);
  assert.match(every.stdout, / other /);
  // diff -f a.yaml: only one run of a.yaml, although the cache holds two experiments.
  const diff = await rig.cli(['diff', '-f', 'a.yaml']);
  assert.equal(diff.code, 2);
  assert.match(diff.stderr, /found 1 \(looked in cache for runs of a\.yaml; 1 of other pipelines in that cache\)/);
  const none = await rig.cli(['exp', 'list', '--cache', 'elsewhere']);
  assert.match(none.stdout, /no experiments recorded yet \(looked in elsewhere: there is no pipeline\.yaml here; pass -f FILE/);
  // The shell turns ~0 into the cwd before we see it.
  const tilde = await rig.cli(['exp', 'show', rig.dir]);
  assert.equal(tilde.code, 2);
  assert.match(tilde.stderr, /your shell expanded ~0 to the current directory: write HEAD~0/);
});
