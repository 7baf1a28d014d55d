/**
 * The programmatic runner API (`runPipeline`) that watch mode, sweeps and
 * experiments use: real pipeline files, real cmd stages, real cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../../src/config/load.js';
import { lockWorkspace, resolveCacheDir, runPipeline, type RunSummary } from '../../src/runner.js';
import type { RunEvent } from '../../src/events.js';
import type { PipelineGraph, StageId } from '../../src/pipeline.js';
import { flattenMetrics, readMetricsFiles } from '../../src/run/metrics.js';

const node = process.execPath;

async function workspace(stages: Record<string, unknown>): Promise<AsyncDisposable & { dir: string; graph: () => Promise<PipelineGraph> }> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'runner-')));
  await fs.writeFile(path.join(dir, 'pipeline.yaml'), JSON.stringify({ name: 'r', params: { k: 1 }, stages }));
  return {
    dir,
    async graph() {
      const g = await loadPipeline(path.join(dir, 'pipeline.yaml'));
      if (!g.ok) throw new Error(JSON.stringify(g.error));
      return g.value;
    },
    [Symbol.asyncDispose]: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

const writeJs = (file: string, content: string) => [node, '-e', `require('fs').mkdirSync(require('path').dirname(${JSON.stringify(file)}),{recursive:true});require('fs').writeFileSync(${JSON.stringify(file)}, ${content})`];

test('runPipeline: summary with statuses, keys, output hashes, metrics; afterRun; events in order', async () => {
  await using w = await workspace({
    make: { cmd: writeJs('out/a.txt', "'a'"), outs: ['out/a.txt'] },
    score: { cmd: writeJs('m.json', 'JSON.stringify({val:{acc:0.75,loss:0.5},note:"x",list:[1]})'), deps: ['out/a.txt'], metrics: ['m.json'] },
  });
  const graph = await w.graph();
  const cacheDir = resolveCacheDir(graph, undefined, {}, w.dir);
  assert.equal(cacheDir, path.join(w.dir, 'cache'));
  const events: RunEvent[] = [];
  let after: RunSummary | undefined;
  const lock = await lockWorkspace(graph.workspace);
  assert.ok(lock.ok);
  const s = await runPipeline(graph, { cacheDir, jobs: 2, onEvent: (e) => events.push(e), afterRun: async (x) => void (after = x) });
  await lock.value.release();
  assert.equal(s.ok, true);
  assert.equal(after, s);
  assert.deepEqual(s.order, ['make', 'score']);
  const make = s.stages.get('make' as StageId)!;
  const score = s.stages.get('score' as StageId)!;
  assert.equal(make.status, 'ran');
  assert.match(make.key!, /^[0-9a-f]{64}$/);
  assert.match(make.outputsHash!, /^[0-9a-f]{64}$/);
  assert.deepEqual(score.metrics, { 'val.acc': 0.75, 'val.loss': 0.5 });
  assert.deepEqual(events.map((e) => e.type).filter((t) => t !== 'stage-output'), ['run-start', 'stage-plan', 'stage-start', 'stage-end', 'stage-plan', 'stage-start', 'stage-end', 'run-end']);

  // Second run: fresh, metrics still reported from the record (experiments need them).
  const again = await runPipeline(graph, { cacheDir, jobs: 2 });
  assert.equal(again.stages.get('score' as StageId)!.status, 'fresh');
  assert.deepEqual(again.stages.get('score' as StageId)!.metrics, { 'val.acc': 0.75, 'val.loss': 0.5 });
  assert.equal(again.stages.get('make' as StageId)!.key, make.key);
});

test('runPipeline: abort kills the running stage, records nothing, later stages are cancelled', async () => {
  await using w = await workspace({
    slow: { cmd: [node, '-e', "console.log('started'); setTimeout(() => require('fs').writeFileSync('s.txt','s'), 20000)"], outs: ['s.txt'] },
    after: { cmd: writeJs('t.txt', "'t'"), deps: ['s.txt'], outs: ['t.txt'] },
  });
  const graph = await w.graph();
  const ac = new AbortController();
  const s = await runPipeline(graph, {
    cacheDir: path.join(w.dir, 'cache'),
    signal: ac.signal,
    onEvent: (e) => {
      if (e.type === 'stage-output' && e.line === 'started') ac.abort();
    },
  });
  assert.equal(s.cancelled, true);
  assert.equal(s.ok, false);
  assert.equal(s.stages.get('slow' as StageId)!.status, 'cancelled');
  assert.equal(s.stages.get('after' as StageId)!.status, 'cancelled');
  const records = await fs.readdir(path.join(w.dir, 'cache', 'records')).catch(() => []);
  assert.deepEqual(records, [], 'no record written');
});

test('runPipeline: an interrupt:false stage finishes and records on abort; nothing new starts', async () => {
  await using w = await workspace({
    train: { cmd: [node, '-e', "console.log('started'); setTimeout(() => require('fs').writeFileSync('model.txt','m'), 600)"], outs: ['model.txt'], interrupt: false },
    next: { cmd: writeJs('n.txt', "'n'"), deps: ['model.txt'], outs: ['n.txt'] },
  });
  const graph = await w.graph();
  const ac = new AbortController();
  const s = await runPipeline(graph, {
    cacheDir: path.join(w.dir, 'cache'),
    signal: ac.signal,
    onEvent: (e) => {
      if (e.type === 'stage-output' && e.line === 'started') ac.abort();
    },
  });
  assert.equal(s.cancelled, true);
  assert.equal(s.stages.get('train' as StageId)!.status, 'ran');
  assert.equal(s.stages.get('next' as StageId)!.status, 'cancelled');
  const again = await runPipeline(graph, { cacheDir: path.join(w.dir, 'cache') });
  assert.equal(again.stages.get('train' as StageId)!.status, 'fresh', 'its record was written');
  assert.equal(again.stages.get('next' as StageId)!.status, 'ran');
});

test('runPipeline: --dry plans without running and includes the plan in the summary', async () => {
  await using w = await workspace({ a: { cmd: writeJs('a.txt', "'a'"), outs: ['a.txt'] }, b: { cmd: writeJs('b.txt', "'b'"), deps: ['a.txt'], outs: ['b.txt'] } });
  const graph = await w.graph();
  const s = await runPipeline(graph, { cacheDir: path.join(w.dir, 'cache'), dry: true });
  assert.deepEqual(s.plan!.map((p) => [p.stage, p.action]), [
    ['a', 'run'],
    ['b', 'unknown'],
  ]);
  await assert.rejects(fs.access(path.join(w.dir, 'a.txt')));
});

test('metrics: nested numbers flatten to dotted names; bad files are errors naming the file', async () => {
  assert.deepEqual(flattenMetrics({ a: 1, b: { c: 2.5, d: 'x', e: [1, 2], f: { g: -1 } }, h: null, i: true }), { a: 1, 'b.c': 2.5, 'b.f.g': -1 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'metrics-'));
  try {
    await fs.writeFile(path.join(dir, 'bad.json'), '{oops');
    await fs.writeFile(path.join(dir, 'list.json'), '[1]');
    await fs.writeFile(path.join(dir, 'ok.json'), '{"acc": 0.5}');
    assert.deepEqual(await readMetricsFiles(dir, ['ok.json']), { ok: true, value: { acc: 0.5 } });
    const bad = await readMetricsFiles(dir, ['bad.json']);
    assert.equal(bad.ok, false);
    assert.match((bad as { error: string }).error, /^metrics file bad\.json is not valid JSON/);
    assert.deepEqual(await readMetricsFiles(dir, ['list.json']), { ok: false, error: 'metrics file list.json must hold a JSON object' });
    assert.deepEqual(await readMetricsFiles(dir, ['nope.json']), { ok: false, error: 'metrics file nope.json was not written' });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** A workspace whose one stage copies in.txt (now "one") to out.txt, with one engine kept across runs (watch mode); `run` gives the stage's status. */
async function copyWithEngine() {
  const w = await workspace({ copy: { cmd: [node, '-e', "require('fs').copyFileSync('in.txt','out.txt')"], deps: ['in.txt'], outs: ['out.txt'] } });
  await fs.writeFile(path.join(w.dir, 'in.txt'), 'one');
  const graph = await w.graph();
  const cacheDir = path.join(w.dir, 'cache');
  const { openEngine } = await import('../../src/runner.js');
  const engine = await openEngine(graph, cacheDir);
  const run = async () => (await runPipeline(graph, { cacheDir, engine })).stages.get('copy' as StageId)!.status;
  return { w, engine, run };
}

test('runPipeline: an engine reused across runs (watch mode) still sees edits', async () => {
  const c = await copyWithEngine();
  await using w = c.w;
  const { run } = c;
  assert.equal(await run(), 'ran');
  assert.equal(await run(), 'fresh');
  await fs.writeFile(path.join(w.dir, 'in.txt'), 'two!');
  assert.equal(await run(), 'ran');
  assert.equal(await fs.readFile(path.join(w.dir, 'out.txt'), 'utf8'), 'two!');
  await fs.writeFile(path.join(w.dir, 'in.txt'), 'one');
  assert.equal(await run(), 'restored');
  assert.equal(await fs.readFile(path.join(w.dir, 'out.txt'), 'utf8'), 'one');
});

test('runPipeline: an engine reused across runs (watch mode) hashes an object again before restoring it', async () => {
  const c = await copyWithEngine();
  await using w = c.w;
  const { engine, run } = c;
  assert.equal(await run(), 'ran');
  await fs.writeFile(path.join(w.dir, 'in.txt'), 'two!');
  assert.equal(await run(), 'ran');
  // Between runs, the object of the first output rots at rest (same size): this process stored it, runs ago.
  const obj = engine.store.objectPath(crypto.createHash('sha256').update('one').digest('hex'));
  await fs.chmod(obj, 0o644);
  await fs.writeFile(obj, 'ONE');
  await fs.chmod(obj, 0o444);
  await fs.writeFile(path.join(w.dir, 'in.txt'), 'one');
  const status = await run();
  assert.equal(await fs.readFile(path.join(w.dir, 'out.txt'), 'utf8'), 'one', 'corrupt bytes are never restored');
  assert.equal(status, 'ran', 'the stage is recomputed');
});

test('runPipeline: the stages after ingest (resize, partition) both start in hosts forked while ingest ran', async () => {
  const sharp = (await import('sharp')).default;
  const { stageHosts } = await import('../../src/stage-host/host.js');
  await using w = await workspace({ ingest: { uses: 'ingest', with: { source: 'img' } }, resize: { uses: 'resize', with: { size: [8, 8] } }, partition: { uses: 'partition' } });
  for (let i = 0; i < 6; i++) {
    await fs.mkdir(path.join(w.dir, 'img', `c${i % 2}`), { recursive: true });
    await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: i * 40, g: 20, b: 200 } } }).png().toFile(path.join(w.dir, 'img', `c${i % 2}`, `${i}.png`));
  }
  const graph = await w.graph();
  const lock = await lockWorkspace(graph.workspace);
  assert.ok(lock.ok);
  const before = stageHosts.spawned;
  let atIngestEnd = -1;
  const idleAtEnd: number[] = [];
  const s = await runPipeline(graph, {
    cacheDir: resolveCacheDir(graph, undefined, {}, w.dir),
    jobs: 2,
    onEvent: (e) => {
      if (e.type === 'stage-end' && e.stage === 'ingest') atIngestEnd = stageHosts.spawned - before;
      if (e.type === 'stage-end') idleAtEnd.push(stageHosts.idleCount);
    },
  });
  await lock.value.release();
  assert.equal(s.ok, true);
  assert.deepEqual([...s.stages.values()].map((x) => x.status), ['ran', 'ran', 'ran']);
  // When the last stage ends, no stage is left to take a warm host: they were retired as soon as they answered.
  assert.equal(idleAtEnd.at(-1), 0, `idle hosts at each stage end: ${idleAtEnd.join(', ')}`);
  // ingest's own host plus one prewarmed beside it; ingest's host is free again for the second dependent.
  assert.equal(atIngestEnd, 2, 'two hosts by the time ingest ended');
  assert.equal(stageHosts.spawned - before, 2, 'no host forked after ingest: both dependents started warm');
});

test('runPipeline: a run whose first stage is a shared-host built-in starts its host before planning, and ingest runs in it', async () => {
  const sharp = (await import('sharp')).default;
  const { stageHosts } = await import('../../src/stage-host/host.js');
  await using w = await workspace({ ingest: { uses: 'ingest', with: { source: 'img' } } });
  await fs.mkdir(path.join(w.dir, 'img', 'a'), { recursive: true });
  await sharp({ create: { width: 5, height: 5, channels: 3, background: { r: 9, g: 9, b: 9 } } }).png().toFile(path.join(w.dir, 'img', 'a', '0.png'));
  const graph = await w.graph();
  const lock = await lockWorkspace(graph.workspace);
  assert.ok(lock.ok);
  await stageHosts.close();
  const before = stageHosts.spawned;
  let atPlan = -1;
  const s = await runPipeline(graph, {
    cacheDir: resolveCacheDir(graph, undefined, {}, w.dir),
    jobs: 2,
    onEvent: (e) => {
      if (e.type === 'stage-plan' && atPlan < 0) atPlan = stageHosts.spawned - before;
    },
  });
  await lock.value.release();
  assert.equal(s.ok, true);
  assert.equal(atPlan, 1, 'a host was started before the first stage was planned');
  assert.equal(stageHosts.spawned - before, 1, 'ingest ran in it: no other host');
  // A dry run starts nothing.
  const dry = await runPipeline(graph, { cacheDir: resolveCacheDir(graph, undefined, {}, w.dir), jobs: 2, dry: true });
  assert.equal(dry.ok, true);
  assert.equal(stageHosts.spawned - before, 1);
});
