/**
 * Failures end to end: exit codes, messages naming the stage, no records for
 * failed stages, --keep-going, config diagnostics, argv injection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, statuses } from '../helpers/rig.js';

test('a failing stage: exit 1, "stage X failed: exit code N", nothing recorded, downstream skipped', async () => {
  await using rig = await e2eRig();
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'fail',
      stages: {
        bad: { cmd: rig.step('bad', '--fail', '3'), outs: [] },
        after: { cmd: rig.step('after'), needs: ['bad'] },
      },
    }),
  );
  let r = await rig.cli(['run']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /\[bad\] bad failing/, 'stderr of the command is streamed with the stage prefix');
  assert.match(r.stdout, /✗ bad stage bad failed: exit code 3/);
  assert.match(r.stdout, /- after skipped \(upstream stage bad failed\)/);
  // No record: the next run tries again.
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 1);
  assert.deepEqual(statuses(r.stdout), { bad: 'failed', after: 'skipped-upstream-failed' });
  assert.equal(await rig.count('bad'), 2);
  assert.equal(await rig.count('after'), 0);
});

test('--keep-going runs independent branches; without it nothing new starts after a failure', async () => {
  await using rig = await e2eRig();
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'kg',
      stages: {
        bad: { cmd: rig.step('bad', '--fail', '1') },
        after: { cmd: rig.step('after'), needs: ['bad'] },
        slow: { cmd: rig.step('slow', '--sleep', '800') },
        good: { cmd: rig.step('good', '--out', 'out/good.txt', '--text', 'ok'), outs: ['out/good.txt'], needs: ['slow'] },
      },
    }),
  );
  // bad fails while slow is running: slow may finish, but good (after slow) must not start.
  let r = await rig.cli(['run', '--json', '--jobs', '2']);
  assert.equal(r.code, 1);
  assert.deepEqual(statuses(r.stdout), { bad: 'failed', after: 'skipped-upstream-failed', slow: 'ran', good: 'cancelled' });
  assert.equal(await rig.count('good'), 0);

  r = await rig.cli(['run', '--json', '--jobs', '2', '--keep-going']);
  assert.equal(r.code, 1);
  assert.deepEqual(statuses(r.stdout), { bad: 'failed', after: 'skipped-upstream-failed', slow: 'fresh', good: 'ran' });
  assert.equal(await rig.read('out/good.txt'), 'ok');
});

test('a declared output the command did not write fails the stage with a clear message', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'miss', stages: { lazy: { cmd: rig.step('lazy'), outs: ['out/never.txt'] } } }));
  const r = await rig.cli(['run']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /stage lazy failed: declared output out\/never\.txt was not written by the command/);
  const s = await rig.cli(['status', '--json']);
  assert.equal((JSON.parse(s.stdout) as { status: string }[])[0].status, 'stale', 'no record was written');
});

test('a command that does not exist is reported with the stage name', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'nocmd', stages: { ghost: { cmd: ['no-such-program-xyz', 'arg'] } } }));
  const r = await rig.cli(['run']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /stage ghost failed: command not found: no-such-program-xyz/);
});

test('injection: a param holding shell syntax reaches the command as one argv element and nothing else runs', async () => {
  await using rig = await e2eRig();
  const evil = '"; rm -rf ~; touch pwned; echo "';
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({ name: 'inject', params: { msg: evil }, stages: { echo: { cmd: [...rig.step('echo', '--echo-args'), '${params.msg}', 'tail $(touch pwned2)'] } } }),
  );
  const r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const line = r.stdout.split('\n').find((l) => l.includes('ARGS '))!;
  const args = JSON.parse((JSON.parse(line) as { line: string }).line.slice('ARGS '.length)) as string[];
  assert.deepEqual(args, ['--echo-args', evil, 'tail $(touch pwned2)']);
  assert.equal(await rig.exists('pwned'), false);
  assert.equal(await rig.exists('pwned2'), false);
});

test('a config error prints located diagnostics and exits 3, without a stack trace', async () => {
  await using rig = await e2eRig();
  await rig.write(
    'pipeline.yaml',
    ['name: broken', 'stages:', '  a:', '    cmd: [echo, hi]', '    outz: [x.txt]', '  b:', '    cmd: [echo, b]', '    needs: [nosuch]', ''].join('\n'),
  );
  for (const cmd of [['run'], ['status'], ['explain', 'a'], ['dag']]) {
    const r = await rig.cli(cmd);
    assert.equal(r.code, 3, `${cmd[0]}: ${r.stderr}`);
    assert.match(r.stderr, /pipeline\.yaml:5:5/, 'the unknown key is located');
    assert.match(r.stderr, /outz/);
    assert.match(r.stderr, /pipeline\.yaml:8:\d+/, 'the unknown stage is located too (all errors at once)');
    assert.match(r.stderr, /nosuch/);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/, 'no stack trace');
    assert.equal(r.stdout, '');
  }
});

test('usage errors exit 2: unknown option, unknown stage (with a suggestion), unknown command', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'u', stages: { train: { cmd: rig.step('train') } } }));
  let r = await rig.cli(['run', '--frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option --frobnicate/);
  r = await rig.cli(['run', '--stage', 'trian']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown stage "trian"; did you mean 'train'\?/);
  r = await rig.cli(['frobnicate']);
  assert.equal(r.code, 2);
  r = await rig.cli(['run', '--jobs', 'many']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--jobs needs a positive integer/);
  assert.equal(await rig.count('train'), 0);
});

test('a corrupted cache object is never restored: the stage is recomputed, and verify reports it', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'corrupt', stages: { make: { cmd: rig.step('make', '--out', 'out/m.txt', '--text', 'good bytes'), outs: ['out/m.txt'] } } }));
  assert.equal((await rig.cli(['run'])).code, 0);
  // Flip the stored object's bytes (same size) behind the engine's back.
  const { createHash } = await import('node:crypto');
  const sha = createHash('sha256').update('good bytes').digest('hex');
  const obj = `cache/objects/${sha.slice(0, 2)}/${sha}`;
  const fs = await import('node:fs/promises');
  await fs.chmod(`${rig.dir}/${obj}`, 0o644);
  await rig.write(obj, 'evil bytes');
  await rig.rm('out/m.txt');
  const r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { make: 'ran' }, 'recomputed, not restored');
  assert.equal(await rig.read('out/m.txt'), 'good bytes');
  assert.equal(await rig.count('make'), 2);
  const v = await rig.cli(['cache', 'verify']);
  assert.equal(v.code, 0, `the corrupt object was quarantined during the restore attempt and re-stored by the rerun: ${v.stdout}`);
});

test('a missing working directory is reported as such, not as "command not found"', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'cwd', stages: { s: { cmd: rig.step('s'), cwd: 'nowhere' } } }));
  const r = await rig.cli(['run']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /stage s failed: working directory nowhere does not exist/);
});
