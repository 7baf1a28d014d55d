/**
 * Freshness end to end (issue #2 "Tests it must have"): real CLI, real child
 * processes, `cmd` stages counting their invocations in files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, statuses, type E2eRig } from '../helpers/rig.js';

/**
 * a: data/a.txt → out/a.txt (reads param a.sleep, which does not change its output)
 * b: data/b.txt + param b.suffix → out/b.txt
 * c: out/a.txt + out/b.txt → out/c.txt
 */
function abc(rig: E2eRig, params: { sleep: number; suffix: string } = { sleep: 0, suffix: 'x' }): string {
  return pipelineYaml({
    name: 'abc',
    params: { a: { sleep: params.sleep }, b: { suffix: params.suffix } },
    stages: {
      a: { cmd: rig.step('a', '--in', 'data/a.txt', '--out', 'out/a.txt', '--sleep', '${params.a.sleep}'), deps: ['data/a.txt'], outs: ['out/a.txt'] },
      b: { cmd: rig.step('b', '--in', 'data/b.txt', '--out', 'out/b.txt', '--text', '${params.b.suffix}'), deps: ['data/b.txt'], outs: ['out/b.txt'] },
      c: { cmd: rig.step('c', '--in', 'out/a.txt', '--in', 'out/b.txt', '--out', 'out/c.txt'), deps: ['out/a.txt', 'out/b.txt'], outs: ['out/c.txt'] },
    },
  });
}

async function counts(rig: E2eRig): Promise<[number, number, number]> {
  return [await rig.count('a'), await rig.count('b'), await rig.count('c')];
}

test('run, rerun, edit, revert, param change, early cutoff', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', abc(rig));
  await rig.write('data/a.txt', 'A\n');
  await rig.write('data/b.txt', 'B\n');

  // First run: everything runs once.
  let r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'ran', b: 'ran', c: 'ran' });
  assert.deepEqual(await counts(rig), [1, 1, 1]);
  assert.equal(await rig.read('out/c.txt'), 'A\nB\nx');

  // Two runs → 1 invocation each.
  r = await rig.cli(['run']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /nothing to do: 3 stages up to date/);
  assert.deepEqual(await counts(rig), [1, 1, 1]);

  // An edited input → only the stages downstream of it rerun.
  await rig.write('data/b.txt', 'B2\n');
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'fresh', b: 'ran', c: 'ran' });
  assert.deepEqual(await counts(rig), [1, 2, 2]);
  assert.equal(await rig.read('out/c.txt'), 'A\nB2\nx');

  // The reverted edit → restored from the cache, 0 invocations.
  await rig.write('data/b.txt', 'B\n');
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'fresh', b: 'restored', c: 'restored' });
  assert.deepEqual(await counts(rig), [1, 2, 2]);
  assert.equal(await rig.read('out/c.txt'), 'A\nB\nx');

  // A param change → only the stage reading it (and its downstream) reruns.
  await rig.write('pipeline.yaml', abc(rig, { sleep: 0, suffix: 'y' }));
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'fresh', b: 'ran', c: 'ran' });
  assert.deepEqual(await counts(rig), [1, 3, 3]);
  assert.equal(await rig.read('out/c.txt'), 'A\nB\ny');

  // Early cutoff: a reruns (its param changed) but writes identical bytes → c stays fresh.
  await rig.write('pipeline.yaml', abc(rig, { sleep: 1, suffix: 'y' }));
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'ran', b: 'fresh', c: 'fresh' });
  assert.deepEqual(await counts(rig), [2, 3, 3]);

  // -S overrides a param for one run without editing the file.
  r = await rig.cli(['run', '--json', '-S', 'b.suffix=x']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'fresh', b: 'restored', c: 'restored' });
  assert.deepEqual(await counts(rig), [2, 3, 3]);
});

test('a deleted or edited output is restored, not rerun; --force reruns; --stage limits the run', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', abc(rig));
  await rig.write('data/a.txt', 'A\n');
  await rig.write('data/b.txt', 'B\n');
  assert.equal((await rig.cli(['run'])).code, 0);

  await rig.rm('out/c.txt');
  await rig.write('out/a.txt', 'user scribble\n');
  let r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'restored', b: 'fresh', c: 'restored' });
  assert.equal(await rig.read('out/a.txt'), 'A\n');
  assert.equal(await rig.read('out/c.txt'), 'A\nB\nx');
  assert.deepEqual(await counts(rig), [1, 1, 1]);

  r = await rig.cli(['run', '--json', '--force', 'b']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { a: 'fresh', b: 'ran', c: 'fresh' }, 'b reran with identical output: c stays fresh');
  assert.deepEqual(await counts(rig), [1, 2, 1]);

  await rig.write('data/a.txt', 'A2\n');
  await rig.write('data/b.txt', 'B2\n');
  r = await rig.cli(['run', '--json', '--stage', 'b']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { b: 'ran' }, 'only b (it has no upstream) is in the run');
  assert.deepEqual(await counts(rig), [1, 3, 1]);
});

test('--dry prints the plan with reasons and runs nothing', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', abc(rig));
  await rig.write('data/a.txt', 'A\n');
  await rig.write('data/b.txt', 'B\n');
  assert.equal((await rig.cli(['run'])).code, 0);
  await rig.write('data/a.txt', 'A2\n');
  const r = await rig.cli(['run', '--dry']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    ['plan for abc (3 stages, dry run):', 'run      a  input data/a.txt modified', 'fresh    b', 'run?     c  upstream a will run first', 'dry run: nothing was executed', ''].join('\n'),
  );
  assert.deepEqual(await counts(rig), [1, 1, 1]);
});

test('NDJSON: one event per line, in order, with keys and durations', async () => {
  await using rig = await e2eRig();
  await rig.write('pipeline.yaml', abc(rig));
  await rig.write('data/a.txt', 'A\n');
  await rig.write('data/b.txt', 'B\n');
  const r = await rig.cli(['run', '--json', '--jobs', '1']);
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; stage?: string; key?: string; durationMs?: number; line?: string; status?: string });
  assert.equal(events[0].type, 'run-start');
  assert.equal(events.at(-1)!.type, 'run-end');
  const ends = events.filter((e) => e.type === 'stage-end');
  // a and b are independent: with one job either may take the slot first; c needs both.
  assert.deepEqual(ends.slice(0, 2).map((e) => e.stage).sort(), ['a', 'b']);
  assert.equal(ends[2]?.stage, 'c');
  for (const e of ends) {
    assert.match(e.key!, /^[0-9a-f]{64}$/);
    assert.equal(typeof e.durationMs, 'number');
  }
  assert.ok(events.some((e) => e.type === 'stage-output' && e.stage === 'a' && e.line === 'a running'), 'command output is streamed as events');
  const order = events.map((e) => `${e.type}:${e.stage ?? ''}`);
  assert.ok(order.indexOf('stage-end:a') < order.indexOf('stage-start:c'), 'c starts after a ends');
});
