/**
 * `pipeline cache gc --grace`: unreferenced objects younger than the grace
 * period stay (and the human output says so); `--grace 0` frees them at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, type E2eRig } from '../helpers/rig.js';

const pipeline = (rig: E2eRig, v: string): string =>
  pipelineYaml({ name: 'gc', params: { v }, stages: { make: { cmd: rig.step('make', '--out', 'out/m.txt', '--text', '${params.v}'), outs: ['out/m.txt'] } } });

test('gc keeps young unreferenced objects and says so; --grace 0 removes them', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 'old'));
  assert.equal((await rig.cli(['run'])).code, 0);
  await rig.write('pipeline.yaml', pipeline(rig, 'new'));
  assert.equal((await rig.cli(['run'])).code, 0);

  const kept = await rig.cli(['cache', 'gc', '--keep-last', '0']);
  assert.equal(kept.code, 0, kept.stderr);
  assert.match(kept.stdout, /^removed 1 record and 0 objects \(0\.0 MiB\); kept 1 key\nobjects written in the last 1 h are kept until a later gc \(a run may be using them\); --grace 0 removes them now\n$/);

  const freed = await rig.cli(['cache', 'gc', '--keep-last', '0', '--grace', '0', '--json']);
  assert.equal(freed.code, 0, freed.stderr);
  const r = JSON.parse(freed.stdout) as { removedObjects: number; graceSeconds: number };
  assert.equal(r.graceSeconds, 0);
  assert.ok(r.removedObjects >= 1, 'the old value\'s output object is gone');
  assert.match((await rig.cli(['cache', 'verify'])).stdout, /cache is clean/);
  // The current output is still restorable.
  await rig.rm('out/m.txt');
  assert.equal((await rig.cli(['run'])).code, 0);
  assert.equal(await rig.read('out/m.txt'), 'new');
  assert.equal(await rig.count('make'), 2, 'restored, not rerun');
});
