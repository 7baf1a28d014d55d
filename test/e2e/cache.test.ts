/**
 * `pipeline cache gc` / `verify` end to end, and the cache dir rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, statuses, type E2eRig } from '../helpers/rig.js';

const pipeline = (rig: E2eRig, v: string): string =>
  pipelineYaml({ name: 'gc', params: { v }, stages: { make: { cmd: rig.step('make', '--out', 'out/m.txt', '--text', '${params.v}'), outs: ['out/m.txt'] } } });

test('gc keeps what the workspace holds and drops the rest; verify stays clean', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 'old'));
  assert.equal((await rig.cli(['run'])).code, 0);
  await rig.write('pipeline.yaml', pipeline(rig, 'new'));
  assert.equal((await rig.cli(['run'])).code, 0);

  const gc = await rig.cli(['cache', 'gc', '--keep-last', '0', '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  const report = JSON.parse(gc.stdout) as { removedRecords: number; kept: number };
  assert.equal(report.removedRecords, 1, 'the record of the old value is gone');
  assert.equal(report.kept, 1);
  assert.match((await rig.cli(['cache', 'verify'])).stdout, /cache is clean/);

  // The current outputs are still restorable...
  await rig.rm('out/m.txt');
  let r = await rig.cli(['run', '--json']);
  assert.deepEqual(statuses(r.stdout), { make: 'restored' });
  // ...while the old value has to be recomputed.
  await rig.write('pipeline.yaml', pipeline(rig, 'old'));
  r = await rig.cli(['run', '--json']);
  assert.deepEqual(statuses(r.stdout), { make: 'ran' });
  assert.equal(await rig.count('make'), 3);
});

test('--cache and PIPELINE_CACHE choose the cache directory; verify on an empty cache is clean', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 'a'));
  assert.equal((await rig.cli(['run', '--cache', 'elsewhere'])).code, 0);
  assert.equal(await rig.exists('elsewhere/records'), true);
  assert.equal(await rig.exists('cache'), false);
  // Same key, different cache: nothing recorded there yet → runs again.
  let r = await rig.cli(['run', '--json'], { env: { PIPELINE_CACHE: 'envcache' } });
  assert.deepEqual(statuses(r.stdout), { make: 'ran' });
  assert.equal(await rig.exists('envcache/records'), true);
  r = await rig.cli(['cache', 'verify', '--cache', 'elsewhere']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^verified \d+ objects? in .*elsewhere\ncache is clean\n$/);
});

test('cache verify reports a corrupt item-cache entry, quarantines it and exits 1', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipeline(rig, 'a'));
  assert.equal((await rig.cli(['run'])).code, 0);
  const key = 'ab' + '0'.repeat(62);
  // An entry is its value followed by the value's sha256; these 64 bytes end in no such digest.
  await rig.write(`cache/items/resize/ab/${key}`, 'x'.repeat(64));
  const r = await rig.cli(['cache', 'verify']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`corrupt item-cache entry items/resize/ab/${key} \\(moved to quarantine`));
  assert.match(r.stdout, /1 problem found/);
  assert.equal(await rig.exists(`cache/items/resize/ab/${key}`), false);
  assert.match((await rig.cli(['cache', 'verify'])).stdout, /cache is clean/);
});
