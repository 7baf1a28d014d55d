/**
 * Built-in stages end to end: the real `ingest` stage runs in the child
 * process host, writes into a staging dir, is ingested into the cache and
 * materialised at its outDir; a downstream `cmd` stage reads it. Real 8×8
 * PNGs made with sharp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, ndjson, pipelineYaml, statuses } from '../helpers/rig.js';


test('a built-in stage runs in the stage host; its outputs feed a cmd stage; edits rerun, reverts restore', async () => {
  await using rig = await e2eRig();
  await rig.png('images/cat/1.png', [200, 10, 10]);
  await rig.png('images/cat/2.png', [190, 20, 10]);
  await rig.png('images/dog/1.png', [10, 10, 200]);
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'builtin',
      stages: {
        ingest: { uses: 'ingest', with: { source: 'images' } },
        summary: {
          cmd: rig.step('summary', '--in', 'out/ingest/classes.json', '--out', 'out/summary.txt'),
          deps: [{ stage: 'ingest' }],
          outs: ['out/summary.txt'],
        },
      },
    }),
  );
  let r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'ran', summary: 'ran' });
  const manifest = (await rig.read('out/ingest/manifest.jsonl')).trim().split('\n');
  assert.equal(manifest.length, 3, 'ingest found three images');
  assert.match(await rig.read('out/summary.txt'), /cat/);
  assert.ok(ndjson(r.stdout).some((e) => e.type === 'stage-progress' && e.stage === 'ingest'), 'progress reported over IPC');

  r = await rig.cli(['run', '--json']);
  assert.deepEqual(statuses(r.stdout), { ingest: 'fresh', summary: 'fresh' });

  // A new image changes ingest's output → both rerun.
  await rig.png('images/dog/2.png', [20, 20, 190]);
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'ran', summary: 'ran' });
  assert.equal((await rig.read('out/ingest/manifest.jsonl')).trim().split('\n').length, 4);

  // Removing it again → restored from the cache, nothing runs.
  await rig.rm('images/dog/2.png');
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'restored', summary: 'restored' });
  assert.equal((await rig.read('out/ingest/manifest.jsonl')).trim().split('\n').length, 3);
  assert.equal(await rig.count('summary'), 2);
});

test('a built-in that fails reports its error with the stage name and records nothing', async () => {
  await using rig = await e2eRig();
  await rig.png('images/cat/1.png', [200, 10, 10]);
  await rig.write('images/cat/broken.png', 'not a png');
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'bad', stages: { ingest: { uses: 'ingest', with: { source: 'images', on_invalid: 'fail' } } } }));
  const r = await rig.cli(['run']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /✗ ingest stage ingest failed: [^]*broken\.png: not-an-image/);
  assert.equal(await rig.exists('out/ingest'), false, 'nothing materialised');
  const s = await rig.cli(['status', '--json']);
  assert.equal((JSON.parse(s.stdout) as { status: string }[])[0].status, 'stale');
});
