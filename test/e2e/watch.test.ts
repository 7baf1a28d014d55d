/**
 * End to end: `pipeline watch` with real chokidar and real files. Reads the
 * NDJSON stream (`--json`) to know exactly what ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eRig, pipelineYaml, type E2eRig, type RunningCli } from '../helpers/rig.js';

async function twoStage(rig: E2eRig, opts: { sleep?: number } = {}): Promise<void> {
  await rig.write('a.txt', 'a1\n');
  await rig.write('b.txt', 'b1\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'watched',
      stages: {
        fromA: { cmd: rig.step('fromA', '--in', 'a.txt', '--out', 'out/a.txt', ...(opts.sleep ? ['--sleep', String(opts.sleep)] : [])), deps: ['a.txt'], outs: ['out/a.txt'] },
        fromB: { cmd: rig.step('fromB', '--in', 'b.txt', '--out', 'out/b.txt'), deps: ['b.txt'], outs: ['out/b.txt'] },
        both: { cmd: rig.step('both', '--in', 'out/a.txt', '--in', 'out/b.txt', '--out', 'out/both.txt'), deps: ['out/a.txt', 'out/b.txt'], outs: ['out/both.txt'] },
      },
    }),
  );
}

/** Counts of `watch-idle` events seen so far. */
function idles(w: RunningCli & { text(): string }): number {
  return w.text().split('\n').filter((l) => l.includes('"type":"watch-idle"')).length;
}

function startWatch(rig: E2eRig): RunningCli & { text(): string } {
  const w = rig.start(['watch', '--json', '--debounce', '100']);
  let out = '';
  w.child.stdout!.on('data', (d: string) => (out += d));
  return Object.assign(w, { text: () => out });
}

async function waitIdle(w: RunningCli & { text(): string }, n: number): Promise<void> {
  const re = new RegExp(`(?:[\\s\\S]*"type":"watch-idle"){${n}}`);
  await w.waitFor(re, 30_000);
}

test('watch: an input edit reruns exactly the dependent stages; own outputs never trigger a run', async () => {
  await using rig = await e2eRig();
  await twoStage(rig);
  const w = startWatch(rig);
  await waitIdle(w, 1);
  assert.deepEqual([await rig.count('fromA'), await rig.count('fromB'), await rig.count('both')], [1, 1, 1]);
  await rig.write('a.txt', 'a2\n');
  await waitIdle(w, 2);
  assert.deepEqual([await rig.count('fromA'), await rig.count('fromB'), await rig.count('both')], [2, 1, 2]);
  // Quiet period: the outputs the run wrote must not cause another run.
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(idles(w), 2);
  w.child.kill('SIGINT');
  const done = await w.done;
  assert.equal(done.code, 130, 'Ctrl-C ends the session with the conventional code');
  assert.doesNotMatch(done.stderr, /internal error|Error:/);
});

test('watch: an invalid edit prints a diagnostic and the next valid edit runs', async () => {
  await using rig = await e2eRig();
  await twoStage(rig);
  const w = startWatch(rig);
  await waitIdle(w, 1);
  const good = await rig.read('pipeline.yaml');
  await rig.write('pipeline.yaml', good.replace('"name": "watched"', '"nmae": "watched"'));
  await w.waitFor(/"type":"watch-invalid"/);
  assert.match(w.text(), /nmae/);
  await rig.write('pipeline.yaml', good);
  await rig.write('b.txt', 'b2\n');
  await waitIdle(w, 2);
  assert.equal(await rig.count('fromB'), 2);
  assert.equal(await rig.count('fromA'), 1);
  w.child.kill('SIGINT');
  await w.done;
});

test('watch: an edit during a running stage cancels and reruns it; a failing key is not retried', async () => {
  await using rig = await e2eRig();
  await twoStage(rig, { sleep: 1500 });
  const w = startWatch(rig);
  await w.waitFor(/fromA running/);
  await rig.write('a.txt', 'a2\n');
  await waitIdle(w, 1);
  // The first attempt was cancelled (no record), the second ran on the new content.
  assert.equal(await rig.count('fromA'), 2);
  assert.equal(await rig.read('out/a.txt'), 'a2\n');
  assert.match(w.text(), /"status":"cancelled"/);
  w.child.kill('SIGINT');
  await w.done;
});

test('watch: a stage that failed is not retried until its key changes', async () => {
  await using rig = await e2eRig();
  await rig.write('b.txt', 'b1\n');
  await rig.write('c.txt', 'c1\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'failing',
      stages: {
        bad: { cmd: rig.step('bad', '--fail', '3'), deps: ['c.txt'], outs: ['bad.txt'] },
        fromB: { cmd: rig.step('fromB', '--in', 'b.txt', '--out', 'out/b.txt'), deps: ['b.txt'], outs: ['out/b.txt'] },
      },
    }),
  );
  const w = startWatch(rig);
  await waitIdle(w, 1);
  assert.equal(await rig.count('bad'), 1);
  await rig.write('b.txt', 'b2\n');
  await waitIdle(w, 2);
  assert.equal(await rig.count('fromB'), 2);
  assert.equal(await rig.count('bad'), 1, 'same key: not retried');
  assert.match(w.text(), /already failed with this key/);
  await rig.write('c.txt', 'c2\n');
  await waitIdle(w, 3);
  assert.equal(await rig.count('bad'), 2, 'new key: retried');
  w.child.kill('SIGINT');
  await w.done;
});

test('watch (human output) names the paths it watches and the change it saw', async () => {
  await using rig = await e2eRig();
  await twoStage(rig);
  const w = rig.start(['watch', '--debounce', '100']);
  let out = '';
  w.child.stdout!.on('data', (d: string) => (out += d));
  await w.waitFor(/waiting for changes/, 30_000);
  assert.match(out, /^watching (pipeline\.yaml|a\.txt|b\.txt)(, (pipeline\.yaml|a\.txt|b\.txt)){2}; Ctrl-C to stop\n/);
  await rig.write('b.txt', 'b2\n');
  await w.waitFor(/reran: fromB, both/, 30_000);
  assert.match(out, /\nchanged: b\.txt\n/);
  w.child.kill('SIGINT');
  await w.done;
});
