/**
 * End to end: sweeps (`pipeline run -S a=1,2 -S b=1,2`) run every variant
 * under one scheduler. Real CLI, real child processes, real files: the stage
 * commands append to counts/NAME and write `NAME start end` stamps, which is
 * how invocations and overlap are proven (never wall-clock thresholds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { readExperiments } from '../../src/experiments/record.js';
import { e2eRig, ndjson, pipelineYaml, waitForExit, type E2eRig } from '../helpers/rig.js';

/** prep (shared) → feat (reads a, b) → train (reads a, b; holds the gpu) → metrics. */
async function sweepPipeline(rig: E2eRig, opts: { failAt?: string; sleep?: number } = {}): Promise<void> {
  const sleep = String(opts.sleep ?? 300);
  await rig.write('data.txt', 'hello\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'sweep',
      params: { a: 1, b: 1 },
      stages: {
        prep: { cmd: rig.step('prep', '--in', 'data.txt', '--out', 'prep.txt', '--stamp'), deps: ['data.txt'], outs: ['prep.txt'] },
        feat: {
          cmd: rig.step('feat-${params.a}-${params.b}', '--in', 'prep.txt', '--out', 'feat/out.txt', '--text', 'a=${params.a} b=${params.b}\n', '--sleep', sleep, '--stamp'),
          deps: ['prep.txt'],
          params: ['a', 'b'],
          outs: ['feat'],
        },
        ...(opts.failAt !== undefined
          ? { check: { cmd: ['node', '-e', `process.exit("\${params.a}-\${params.b}" === ${JSON.stringify(opts.failAt)} ? 3 : 0)`], deps: ['feat/out.txt'], params: ['a', 'b'], outs: [] } }
          : {}),
        train: {
          cmd: [...rig.step('train-${params.a}-${params.b}', '--in', 'feat/out.txt', '--out', 'model.txt', '--sleep', '100', '--stamp', '--metrics', 'metrics.json'), '{"acc": 0.${params.a}${params.b}}'],
          deps: ['feat/out.txt'],
          ...(opts.failAt !== undefined ? { needs: ['check'] } : {}),
          params: ['a', 'b'],
          outs: ['model.txt'],
          metrics: ['metrics.json'],
          resources: { gpu: 1 },
        },
      },
    }),
  );
}

/** `name → [start, end]` from stamps.log. */
async function stamps(rig: E2eRig): Promise<Map<string, [number, number]>> {
  const text = await rig.read('stamps.log');
  const out = new Map<string, [number, number]>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [name, start, end] = line.split(' ');
    assert.ok(!out.has(name!), `${name} ran twice`);
    out.set(name!, [Number(start), Number(end)]);
  }
  return out;
}

const overlaps = (x: [number, number], y: [number, number]): boolean => x[0] < y[1] && y[0] < x[1];

/** The most intervals open at once. */
function maxConcurrent(intervals: readonly [number, number][]): number {
  const points = intervals.flatMap(([s, e]) => [[s, 1], [e, -1]] as const).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (cur += d));
  return max;
}

interface Exp {
  id: string;
  status: string;
  params: { a: number; b: number };
  metrics: Record<string, number>;
  stages: Record<string, { key: string; status: string; durationMs: number }>;
  sweep?: { id: string; overrides: Record<string, unknown> };
  durationMs: number;
  createdAt: string;
}

async function experiments(rig: E2eRig): Promise<Exp[]> {
  return (await readExperiments(path.join(rig.dir, 'cache'))) as unknown as Exp[];
}

test('a 4-variant sweep under --jobs 2: shared upstream once, variants overlap, the gpu stage never does, 4 experiments recorded', async () => {
  await using rig = await e2eRig();
  await sweepPipeline(rig);
  await rig.write('model.txt', 'my own notes\n'); // user content where the sweep's output goes
  const r = await rig.cli(['run', '-S', 'a=1,2', '-S', 'b=1,2', '--jobs', '2', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);

  // Shared upstream exactly once; each variant's own stages exactly once.
  assert.equal(await rig.count('prep'), 1);
  for (const v of ['1-1', '1-2', '2-1', '2-2']) {
    assert.equal(await rig.count(`feat-${v}`), 1, `feat-${v}`);
    assert.equal(await rig.count(`train-${v}`), 1, `train-${v}`);
  }

  // Overlap and limits, from the children's own timestamps.
  const st = await stamps(rig);
  const feats = ['1-1', '1-2', '2-1', '2-2'].map((v) => st.get(`feat-${v}`)!);
  const trains = ['1-1', '1-2', '2-1', '2-2'].map((v) => st.get(`train-${v}`)!);
  assert.ok(feats.some((x, i) => feats.some((y, j) => i !== j && overlaps(x, y))), `two variants' feat stages overlap: ${JSON.stringify(feats)}`);
  for (const [i, x] of trains.entries()) for (const [j, y] of trains.entries()) if (i < j) assert.ok(!overlaps(x, y), `train ${i} and ${j} both held the gpu: ${JSON.stringify(trains)}`);
  assert.ok(maxConcurrent([...st.values()]) <= 2, `never more than --jobs 2 stages at once: ${JSON.stringify([...st])}`);
  const prep = st.get('prep')!;
  for (const f of feats) assert.ok(prep[1] <= f[0], 'variants start after the shared stage');

  // Four experiments, as four sequential runs would record them.
  const exps = await experiments(rig);
  assert.equal(exps.length, 4);
  assert.deepEqual(exps.map((e) => [e.params.a, e.params.b]), [[1, 1], [1, 2], [2, 1], [2, 2]]);
  assert.deepEqual(exps.map((e) => e.metrics['train.acc']), [0.11, 0.12, 0.21, 0.22]);
  assert.deepEqual(exps.map((e) => e.status), ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  assert.equal(new Set(exps.map((e) => e.sweep?.id)).size, 1);
  assert.deepEqual(exps.map((e) => e.sweep?.overrides), [{ a: 1, b: 1 }, { a: 1, b: 2 }, { a: 2, b: 1 }, { a: 2, b: 2 }]);
  assert.equal(new Set(exps.map((e) => e.stages['prep']!.key)).size, 1, 'one key for the shared stage');
  assert.equal(new Set(exps.map((e) => e.stages['feat']!.key)).size, 4);
  assert.equal(new Set(exps.map((e) => e.stages['train']!.key)).size, 4);
  assert.deepEqual(exps.map((e) => e.stages['prep']!.status), ['ran', 'fresh', 'fresh', 'fresh']);
  for (const e of exps) assert.equal(e.stages['train']!.status, 'ran');

  // Events: each variant's stage events carry its label; the shared stage's carry none.
  const events = ndjson(r.stdout);
  const ends = events.filter((e) => e.type === 'stage-end');
  assert.equal(ends.length, 1 + 4 * 2);
  assert.equal(ends.find((e) => e.stage === 'prep')!['variant'], undefined);
  assert.deepEqual(ends.filter((e) => e.stage === 'train').map((e) => e['variant']).sort(), ['a=1 b=1', 'a=1 b=2', 'a=2 b=1', 'a=2 b=2']);
  for (const e of events.filter((x) => x.type === 'stage-output' && String(x['line']).startsWith('train-'))) {
    assert.equal(String(e['line']), `train-${String(e['variant']).replace('a=', '').replace(' b=', '-')} running`, 'output lines are labelled with their own variant');
  }
  assert.deepEqual(events.find((e) => e.type === 'sweep-start')!['shared'], ['prep']);
  const vends = events.filter((e) => e.type === 'variant-end');
  assert.deepEqual(vends.map((e) => e['experiment']).sort(), exps.map((e) => e.id).sort());

  // The workspace holds the last variant's outputs; the user's file was saved to the cache first.
  assert.equal(await rig.read('model.txt'), 'hello\na=2 b=2\n');
  assert.equal(await rig.read('feat/out.txt'), 'hello\na=2 b=2\n');
  const backups = await fs.readdir(path.join(rig.dir, 'cache', 'workspaces')).then((ds) => Promise.all(ds.map((d) => fs.readdir(path.join(rig.dir, 'cache', 'workspaces', d, 'backups')).catch(() => [] as string[]))));
  assert.equal(backups.flat().length, 1, 'the user content at model.txt was backed up');
  assert.deepEqual(await fs.readdir(path.join(rig.dir, 'cache', 'sweeps')).then((ds) => Promise.all(ds.map((d) => fs.readdir(path.join(rig.dir, 'cache', 'sweeps', d))))), [[]], 'scratch dirs are removed');

  // Running the last variant again is a no-op; another variant restores, running nothing.
  const again = await rig.cli(['run', '-S', 'a=2', '-S', 'b=2', '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(ndjson(again.stdout).filter((e) => e.type === 'stage-end').map((e) => e.status), ['fresh', 'fresh', 'fresh']);
  const other = await rig.cli(['run', '-S', 'a=1', '-S', 'b=2']);
  assert.equal(other.code, 0, other.stderr);
  assert.equal(await rig.read('model.txt'), 'hello\na=1 b=2\n');
  assert.equal(await rig.count('train-1-2'), 1);
  // Any variant's outputs come back by experiment id.
  const co = await rig.cli(['exp', 'checkout', exps[0]!.id]);
  assert.equal(co.code, 0, co.stderr);
  assert.equal(await rig.read('model.txt'), 'hello\na=1 b=1\n');
  assert.equal(await rig.count('train-1-1'), 1);
});

test('a sweep of named stages runs only those and their upstream per variant; the full sweep after it runs only what is left', async () => {
  await using rig = await e2eRig();
  await sweepPipeline(rig, { sleep: 20 });
  const r = await rig.cli(['run', '--stage', 'feat', '-S', 'a=1,2', '--jobs', '2', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(await rig.count('prep'), 1);
  for (const v of ['1-1', '2-1']) assert.equal(await rig.count(`feat-${v}`), 1, `feat-${v}`);
  for (const v of ['1-1', '2-1']) assert.equal(await rig.count(`train-${v}`), 0, `train-${v} was not asked for`);
  const ends = ndjson(r.stdout).filter((e) => e.type === 'stage-end');
  assert.deepEqual([...new Set(ends.map((e) => e.stage))].sort(), ['feat', 'prep']);

  const full = await rig.cli(['run', '-S', 'a=1,2', '--jobs', '2', '--json']);
  assert.equal(full.code, 0, full.stderr + full.stdout);
  assert.equal(await rig.count('prep'), 1);
  for (const v of ['1-1', '2-1']) {
    assert.equal(await rig.count(`feat-${v}`), 1, `feat-${v} comes from the cache`);
    assert.equal(await rig.count(`train-${v}`), 1, `train-${v}`);
  }
  const exps = await experiments(rig);
  const last = exps.slice(-2);
  assert.deepEqual(last.map((e) => [e.params.a, e.stages['feat']!.status, e.stages['train']!.status]), [[1, 'restored', 'ran'], [2, 'restored', 'ran']]);
});

test('a failing variant under --keep-going: the other three run and are recorded; exit code 1', async () => {
  await using rig = await e2eRig();
  await sweepPipeline(rig, { failAt: '1-2', sleep: 50 });
  const r = await rig.cli(['run', '-S', 'a=1,2', '-S', 'b=1,2', '--jobs', '2', '--keep-going']);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /✗ check \[a=1 b=2\]/);
  assert.match(r.stdout, /experiment 2 \[a=1 b=2\] failed/);
  const exps = await experiments(rig);
  assert.deepEqual(exps.map((e) => [e.params.a, e.params.b, e.status]), [[1, 1, 'succeeded'], [1, 2, 'failed'], [2, 1, 'succeeded'], [2, 2, 'succeeded']]);
  assert.deepEqual(exps.map((e) => e.metrics['train.acc']), [0.11, undefined, 0.21, 0.22]);
  assert.equal(exps[1]!.stages['train']!.status, 'skipped-upstream-failed');
  assert.equal(await rig.count('train-1-2'), 0);
  assert.equal(await rig.count('prep'), 1);
  // The last variant succeeded, so the workspace holds it.
  assert.equal(await rig.read('model.txt'), 'hello\na=2 b=2\n');
});

test('without --keep-going a failing variant stops only itself', async () => {
  await using rig = await e2eRig();
  await sweepPipeline(rig, { failAt: '2-2', sleep: 50 });
  const r = await rig.cli(['run', '-S', 'a=1,2', '-S', 'b=1,2', '--jobs', '2']);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const exps = await experiments(rig);
  assert.deepEqual(exps.map((e) => e.status), ['succeeded', 'succeeded', 'succeeded', 'failed']);
  // The last variant failed: the workspace holds the last one that succeeded.
  assert.equal(await rig.read('model.txt'), 'hello\na=2 b=1\n');
});

test('Ctrl-C during a sweep: exit 130, running stages killed, a finished variant recorded, the cut one not, scratch removed', async () => {
  await using rig = await e2eRig();
  await rig.write('data.txt', 'hello\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'interrupt',
      params: { ms: 0 },
      stages: {
        prep: { cmd: rig.step('prep', '--in', 'data.txt', '--out', 'prep.txt'), deps: ['data.txt'], outs: ['prep.txt'] },
        work: { cmd: rig.step('work-${params.ms}', '--in', 'prep.txt', '--out', 'work.txt', '--sleep', '${params.ms}'), deps: ['prep.txt'], params: ['ms'], outs: ['work.txt'] },
      },
    }),
  );
  await rig.write('work.txt', 'keep me\n');
  const run = rig.start(['run', '-S', 'ms=10,30000', '--jobs', '2']);
  await run.waitFor(/experiment 1 \[ms=10\] succeeded/);
  await run.waitFor(/work-30000 running/);
  const pid = await rig.pid('work-30000');
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stdout + r.stderr);
  assert.match(r.stdout, /experiment 2 \[ms=30000\] cancelled after .*, not recorded/);
  assert.ok(await waitForExit(pid), 'the running stage process is gone');
  const exps = await experiments(rig);
  assert.deepEqual(exps.map((e) => [e.sweep?.overrides, e.status]), [[{ ms: 10 }, 'succeeded']], 'only the finished variant is recorded');
  assert.equal(await rig.read('work.txt'), 'keep me\n', 'an interrupted sweep applies nothing to the workspace');
  const records = await fs.readdir(path.join(rig.dir, 'cache', 'records'), { recursive: true });
  assert.equal(records.filter((n) => n.endsWith('.json')).length, 2, 'records for prep and the finished work only');
  assert.deepEqual(await fs.readdir(path.join(rig.dir, 'cache', 'sweeps')).then((ds) => Promise.all(ds.map((d) => fs.readdir(path.join(rig.dir, 'cache', 'sweeps', d))))), [[]]);
});

test('built-in stages in a sweep: the shared ingest runs once in the workspace, each variant resizes in its own scratch', async () => {
  await using rig = await e2eRig();
  const sharp = (await import('sharp')).default;
  for (const [rel, r] of [['images/cat/1.png', 200], ['images/dog/1.png', 10]] as const) {
    await fs.mkdir(path.dirname(path.join(rig.dir, rel)), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r, g: 10, b: 10 } } }).png().toFile(path.join(rig.dir, rel));
  }
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'builtin-sweep',
      params: { s: 4 },
      stages: {
        ingest: { uses: 'ingest', with: { source: 'images' } },
        resize: { uses: 'resize', with: { size: ['${params.s}', '${params.s}'] } },
        summary: { cmd: rig.step('summary-${params.s}', '--in', 'out/resize/index.json', '--out', 'summary.json'), deps: [{ stage: 'resize' }], outs: ['summary.json'] },
      },
    }),
  );
  const r = await rig.cli(['run', '-S', 's=4,6', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const ends = ndjson(r.stdout).filter((e) => e.type === 'stage-end');
  assert.deepEqual(ends.filter((e) => e.stage === 'ingest').map((e) => [e.status, e['variant']]), [['ran', undefined]]);
  assert.deepEqual(ends.filter((e) => e.stage === 'resize').map((e) => [e.status, e['variant']]).sort(), [['ran', 's=4'], ['ran', 's=6']]);
  assert.equal(await rig.count('summary-4'), 1);
  assert.equal(await rig.count('summary-6'), 1);
  // Each variant's summary read its own resize output (size differs), and the workspace holds the last.
  const exps = await experiments(rig);
  assert.equal(exps.length, 2);
  assert.notEqual(exps[0]!.stages['summary']!.key, exps[1]!.stages['summary']!.key);
  const index = JSON.parse(await rig.read('out/resize/index.json')) as { height: number; width: number };
  assert.deepEqual([index.height, index.width], [6, 6]);
  assert.equal(await rig.read('summary.json'), await rig.read('out/resize/index.json'));
});

test('equal keys across variants run once: a stage that does not read the swept param is restored in the other variants', async () => {
  await using rig = await e2eRig();
  await rig.write('data.txt', 'hello\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'coalesce',
      params: { a: 1, c: 1 },
      stages: {
        train: { cmd: rig.step('train-${params.a}', '--in', 'data.txt', '--out', 'model.txt', '--text', '${params.a}', '--sleep', '200'), deps: ['data.txt'], params: ['a'], outs: ['model.txt'] },
        score: { cmd: rig.step('score-${params.a}-${params.c}', '--in', 'model.txt', '--out', 'score.txt', '--text', '${params.c}'), deps: ['model.txt'], params: ['c'], outs: ['score.txt'] },
      },
    }),
  );
  const r = await rig.cli(['run', '-S', 'a=1,2', '-S', 'c=1,2', '--jobs', '2', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(await rig.count('train-1'), 1);
  assert.equal(await rig.count('train-2'), 1);
  for (const v of ['1-1', '1-2', '2-1', '2-2']) assert.equal(await rig.count(`score-${v}`), 1);
  const trains = ndjson(r.stdout).filter((e) => e.type === 'stage-end' && e.stage === 'train');
  assert.deepEqual(trains.map((e) => e.status).sort(), ['ran', 'ran', 'restored', 'restored']);
  const starts = ndjson(r.stdout).filter((e) => e.type === 'stage-start' && e.stage === 'train' && e['action'] === 'restore');
  assert.equal(starts.length, 2);
  for (const s of starts) {
    const m = /^same key as experiment \d \[a=(\d) c=\d\], which just ran it$/.exec(String(s['reason']));
    assert.ok(m, String(s['reason']));
    assert.equal(`a=${m[1]}`, String(s['variant']).split(' ')[0], 'it waited for the variant with the same a');
  }
  // Each variant's score read its own variant's model.
  const exps = await experiments(rig);
  assert.deepEqual(exps.map((e) => e.stages['train']!.key === exps[e.params.a === 1 ? 0 : 2]!.stages['train']!.key), [true, true, true, true]);
  assert.equal(await rig.read('score.txt'), 'hello\n22');
});

test('a script that finds its project root through its own real path writes into its variant\'s scratch dir, not the workspace', async () => {
  await using rig = await e2eRig();
  // Node resolves the main module's symlinks, so a linked script would see the real workspace as its root.
  await rig.write(
    'tools/train.mjs',
    [
      "import fs from 'node:fs';",
      "const root = new URL('..', import.meta.url).pathname;",
      "const [a] = process.argv.slice(2);",
      "fs.writeFileSync(root + 'model.txt', 'model ' + a + '\\n');",
      "await new Promise((r) => setTimeout(r, 200));",
      '',
    ].join('\n'),
  );
  await rig.write('model.txt', 'mine\n');
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({ name: 'selfroot', params: { a: 1 }, stages: { train: { cmd: ['node', 'tools/train.mjs', '${params.a}'], deps: ['tools/train.mjs'], params: ['a'], outs: ['model.txt'] } } }),
  );
  const run = rig.start(['run', '-S', 'a=1,2', '--jobs', '2']);
  // While the variants run, the workspace file is untouched.
  await run.waitFor(/> train \[a=2\] running/);
  assert.equal(await rig.read('model.txt'), 'mine\n');
  const r = await run.done;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const exps = await experiments(rig);
  assert.deepEqual(exps.map((e) => e.status), ['succeeded', 'succeeded']);
  assert.equal(await rig.read('model.txt'), 'model 2\n');
  assert.equal(await rig.read('tools/train.mjs').then((t) => t.includes('import.meta.url')), true, 'the script itself is untouched');
});
