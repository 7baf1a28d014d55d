/**
 * The git state an experiment records, through the real CLI in a real git
 * repository: the commit the run started from (a commit made while a stage
 * runs is not it) and whether tracked files were modified. Skipped where git
 * is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { e2eRig, pipelineYaml } from '../helpers/rig.js';
import { readExperiments } from '../../src/experiments/record.js';

const IDENTITY = ['-c', 'user.name=pipeline-test', '-c', 'user.email=test@example.invalid', '-c', 'commit.gpgsign=false'];

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

test('an experiment records the commit its run started from and whether tracked files were dirty', async (t) => {
  if (spawnSync('git', ['--version']).status !== 0) {
    t.skip('git is not installed');
    return;
  }
  await using rig = await e2eRig();
  await rig.write('data.txt', 'hello\n');
  await rig.write('.gitignore', 'cache/\nprep.txt\n');
  // The stage waits, then commits: by then the engine has asked git for the commit the run started from.
  const commitDuringRun = `sleep 1 && git ${IDENTITY.join(' ')} commit -q --allow-empty -m "during the run"`;
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'gitinfo',
      cache: 'cache',
      stages: { prep: { cmd: ['sh', '-c', `${commitDuringRun} && cp data.txt prep.txt`], deps: ['data.txt'], outs: ['prep.txt'] } },
    }),
  );
  git(rig.dir, 'init', '-q');
  git(rig.dir, 'add', '.');
  git(rig.dir, ...IDENTITY, 'commit', '-q', '-m', 'base');
  const base = git(rig.dir, 'rev-parse', 'HEAD');

  let r = await rig.cli(['run']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const during = git(rig.dir, 'rev-parse', 'HEAD');
  assert.notEqual(during, base, 'the stage committed');
  let records = await readExperiments(path.join(rig.dir, 'cache'));
  assert.equal(records.length, 1);
  assert.deepEqual(records[0]!.git, { commit: base, dirty: false });

  await rig.write('data.txt', 'changed\n'); // a tracked file: the next run is dirty
  r = await rig.cli(['run']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  records = await readExperiments(path.join(rig.dir, 'cache'));
  assert.equal(records.length, 2);
  const second = records.find((e) => e.git?.commit !== base);
  assert.deepEqual(second?.git, { commit: during, dirty: true });
});

test('outside a git repository an experiment has no git state', async () => {
  await using rig = await e2eRig();
  await rig.write('data.txt', 'hello\n');
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'nogit', cache: 'cache', stages: { prep: { cmd: rig.step('prep', '--in', 'data.txt', '--out', 'prep.txt'), deps: ['data.txt'], outs: ['prep.txt'] } } }));
  const r = await rig.cli(['run']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const records = await readExperiments(path.join(rig.dir, 'cache'));
  assert.equal(records.length, 1);
  assert.equal(records[0]!.git, undefined);
});
