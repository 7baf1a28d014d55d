/**
 * Processes and signals end to end: resource pools, the workspace lock,
 * kill -9 of the CLI mid-stage, Ctrl-C (SIGINT).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, statuses, waitForExit, isAlive } from '../helpers/rig.js';

test('stages holding gpu: 1 never overlap, even with free job slots', async () => {
  await using rig = await e2eRig();
  const gpuStage = (n: string) => ({ cmd: rig.step(n, '--sleep', '250', '--stamp'), resources: { gpu: 1 } });
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'gpu', stages: { g1: gpuStage('g1'), g2: gpuStage('g2'), g3: gpuStage('g3'), cpu: { cmd: rig.step('cpu', '--sleep', '250', '--stamp') } } }));
  const r = await rig.cli(['run', '--jobs', '4', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const stamps = (await rig.read('stamps.log'))
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .map(([name, s, e]) => ({ name, start: Number(s), end: Number(e) }));
  const gpu = stamps.filter((s) => s.name.startsWith('g')).sort((a, b) => a.start - b.start);
  assert.equal(gpu.length, 3);
  for (let i = 1; i < gpu.length; i++) assert.ok(gpu[i].start >= gpu[i - 1].end, `${gpu[i].name} started before ${gpu[i - 1].name} ended`);
  // (That stages without the resource still run alongside is a scheduler unit test: wall-clock overlap is not reliable on a loaded machine.)
  assert.ok(stamps.some((s) => s.name === 'cpu'));
});

test('a second concurrent run gets the lock error (exit 4), or waits with --wait; the first completes; the cache verifies clean', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'lock', stages: { slow: { cmd: rig.step('slow', '--sleep', '1500', '--out', 'out/s.txt', '--text', 's'), outs: ['out/s.txt'] } } }));
  const first = rig.start(['run']);
  await first.waitFor(/\[slow\] slow running/);
  const waiting = rig.start(['run', '--wait', '30', '--json']);
  const second = await rig.cli(['run']);
  assert.equal(second.code, 4);
  assert.match(second.stderr, /another run \(pid \d+ .*\) holds the workspace lock/);
  const r1 = await first.done;
  assert.equal(r1.code, 0, r1.stderr);
  // The run started with --wait got the lock after the first finished, and found everything fresh.
  const r3 = await waiting.done;
  assert.equal(r3.code, 0, r3.stderr);
  assert.deepEqual(statuses(r3.stdout), { slow: 'fresh' });
  assert.equal(await rig.count('slow'), 1);
  const v = await rig.cli(['cache', 'verify']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /cache is clean/);
  // Read-only commands do not need the lock.
  assert.equal((await rig.cli(['status'])).code, 0);
});

test('kill -9 of `pipeline run` mid-stage: the orphan is reaped, the next run is correct, the cache verifies clean', async () => {
  await using rig = await e2eRig();
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'crash',
      stages: {
        first: { cmd: rig.step('first', '--out', 'out/1.txt', '--text', 'one'), outs: ['out/1.txt'] },
        slow: { cmd: rig.step('slow', '--in', 'out/1.txt', '--sleep', '10000', '--out', 'out/2.txt', '--text', 'two'), deps: ['out/1.txt'], outs: ['out/2.txt'] },
      },
    }),
  );
  const run = rig.start(['run']);
  await run.waitFor(/\[slow\] slow running/);
  const orphan = await rig.pid('slow');
  run.child.kill('SIGKILL');
  const dead = await run.done;
  assert.equal(dead.signal, 'SIGKILL');
  assert.equal(await isAlive(orphan), true, 'the stage survives its killed parent (own process group)');

  await rig.write('pipeline.yaml', (await rig.read('pipeline.yaml')).replace('"10000"', '"10"'));
  const r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await waitForExit(orphan, 2000), true, 'the next run killed the orphaned stage');
  assert.deepEqual(statuses(r.stdout), { first: 'fresh', slow: 'ran' });
  assert.equal(await rig.read('out/2.txt'), 'onetwo');
  const v = await rig.cli(['cache', 'verify']);
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout, /cache is clean/);
  const again = await rig.cli(['run', '--json']);
  assert.deepEqual(statuses(again.stdout), { first: 'fresh', slow: 'fresh' });
});

test('Ctrl-C (SIGINT): the stage process group is killed, nothing is recorded, exit 130, lock released', async () => {
  await using rig = await e2eRig();
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'int',
      stages: {
        slow: { cmd: rig.step('slow', '--sleep', '10000', '--out', 'out/s.txt', '--text', 's'), outs: ['out/s.txt'] },
        after: { cmd: rig.step('after'), needs: ['slow'] },
      },
    }),
  );
  const run = rig.start(['run', '--json']);
  await run.waitFor(/slow running/);
  const pid = await rig.pid('slow');
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(await waitForExit(pid, 3000), true, 'the stage was killed');
  assert.deepEqual(statuses(r.stdout), { slow: 'cancelled', after: 'cancelled' });
  assert.equal(await rig.exists('out/s.txt'), false);
  assert.equal(await rig.count('after'), 0);
  // No record: status says it still has to run; and the lock is free for the next run.
  const s = await rig.cli(['status', '--json']);
  assert.equal((JSON.parse(s.stdout) as { status: string }[])[0].status, 'stale');
  assert.equal(await rig.exists('.pipeline/lock'), false);
});
