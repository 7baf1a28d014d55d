/** `pipeline explain` names the files inside a directory dependency that changed since the stage's last run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml } from '../helpers/rig.js';

test('explain lists modified, added and removed files of a directory dependency', async () => {
  await using rig = await e2eRig();
  await rig.write('data/a.txt', 'a\n');
  await rig.write('data/b.txt', 'b\n');
  await rig.write('data/sub/c.txt', 'c\n');
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'x', stages: { count: { cmd: ['sh', '-c', 'ls -R data > count.txt'], deps: ['data'], outs: ['count.txt'] } } }));
  assert.equal((await rig.cli(['run'])).code, 0);
  await rig.write('data/a.txt', 'a2\n');
  await rig.write('data/new.txt', 'n\n');
  await rig.rm('data/sub/c.txt');
  const r = await rig.cli(['explain', 'count']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /input data (changed|modified)[^\n]*\n {4}modified: a\.txt\n {4}added: new\.txt\n {4}removed: sub\/c\.txt\n/);
});
