/**
 * The pipeline file argument as a newcomer types it: `-f FILE` is accepted by
 * status, dag, explain and watch (as exp, diff and report need it), and a
 * missing file says which pipeline files are nearby instead of only "does not
 * exist"; watch stops at once instead of waiting for the file to appear.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml } from '../helpers/rig.js';

test('run, status, dag, explain, cache and watch take -f FILE like exp/diff/report; two different files are a usage error', async () => {
  await using rig = await e2eRig();
  await rig.write('data.txt', 'x\n');
  await rig.write('pipelines/demo.yaml', pipelineYaml({ name: 'demo', external: ['../data.txt'], stages: { prep: { cmd: rig.step('prep', '--in', '../data.txt', '--out', 'prep.txt'), deps: ['../data.txt'], outs: ['prep.txt'] } } }));
  const status = await rig.cli(['status', '-f', 'pipelines/demo.yaml']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^prep +stale +never run/);
  const dag = await rig.cli(['dag', '--file', 'pipelines/demo.yaml']);
  assert.equal(dag.code, 0, dag.stderr);
  assert.match(dag.stdout, /demo: 1 stage/);
  const explain = await rig.cli(['explain', 'prep', '-f', 'pipelines/demo.yaml']);
  assert.equal(explain.code, 0, explain.stderr);
  assert.match(explain.stdout, /^prep: /);
  const verify = await rig.cli(['cache', 'verify', '-f', 'pipelines/demo.yaml']);
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /in .*pipelines\/cache\n/, 'the cache beside the file');
  const same = await rig.cli(['status', 'pipelines/demo.yaml', '-f', 'pipelines/demo.yaml']);
  assert.equal(same.code, 0, 'the same file twice is fine');
  const both = await rig.cli(['status', 'pipelines/demo.yaml', '-f', 'other.yaml']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /two pipeline files given: pipelines\/demo\.yaml and -f other\.yaml/);
  const run = await rig.cli(['run', '-f', 'pipelines/demo.yaml']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(await rig.count('prep'), 1, 'run -f ran the file\'s stage');
  const runBoth = await rig.cli(['run', 'pipelines/demo.yaml', '-f', 'other.yaml']);
  assert.equal(runBoth.code, 2);
  assert.match(runBoth.stderr, /two pipeline files given/);
});

test('no pipeline.yaml here: the error lists the pipeline files in . and pipelines/; watch exits 3 at once', async () => {
  await using rig = await e2eRig();
  await rig.write('pipelines/demo.yaml', pipelineYaml({ name: 'demo', stages: { a: { cmd: ['true'] } } }));
  await rig.write('pipelines/settings.yaml', 'not: a pipeline\n');
  const s = await rig.cli(['status']);
  assert.equal(s.code, 3);
  assert.match(s.stderr, /pipeline\.yaml: error: the pipeline file does not exist/);
  assert.match(s.stderr, /hint: pass a pipeline file \(as the file argument or -f FILE\); pipeline files here: pipelines\/demo\.yaml\n/);
  const w = await rig.cli(['watch'], { timeoutMs: 20_000 });
  assert.equal(w.code, 3, w.stdout + w.stderr);
  assert.match(w.stderr, /pipeline files here: pipelines\/demo\.yaml/);
  const wf = await rig.cli(['watch', '-f', 'pipelines/nope.yaml'], { timeoutMs: 20_000 });
  assert.equal(wf.code, 3, 'watch parses -f (a usage error would be exit 2)');
  assert.match(wf.stderr, /pipelines\/nope\.yaml: error: the pipeline file does not exist/);
});

test('a stage name where the file goes (`pipeline run prep`, as in `dvc repro prep`) points to --stage', async () => {
  await using rig = await e2eRig();
  await rig.write('data.txt', 'x\n');
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'demo', stages: { prep: { cmd: rig.step('prep', '--in', 'data.txt', '--out', 'prep.txt'), deps: ['data.txt'], outs: ['prep.txt'] } } }));
  const r = await rig.cli(['run', 'prep']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /hint: `prep` is a stage of pipeline\.yaml, not a pipeline file; stages are picked with `pipeline run --stage prep`/);
  const other = await rig.cli(['run', 'nosuch']);
  assert.equal(other.code, 3);
  assert.doesNotMatch(other.stderr, /--stage/, 'a word that is no stage gets the usual hint');
  assert.equal(await rig.count('prep'), 0);
});
