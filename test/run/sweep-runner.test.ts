/**
 * The sweep runner API (`runSweepPipeline`, `sharedStages`) on real pipeline
 * files, real cmd stages and a real cache: which stages are shared, what each
 * variant's summary says, which variant the workspace ends with, and that
 * the scratch workspaces are gone afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../../src/config/load.js';
import { resolveCacheDir, lockWorkspace, type RunSummary } from '../../src/runner.js';
import { runSweepPipeline, scratchRoot, sharedStages } from '../../src/sweep/run-sweep.js';
import type { RunEvent } from '../../src/events.js';
import type { PipelineGraph, StageId } from '../../src/pipeline.js';

const node = process.execPath;
const writeJs = (file: string, content: string): string[] => [node, '-e', `require('fs').mkdirSync(require('path').dirname(${JSON.stringify(file)}),{recursive:true});require('fs').writeFileSync(${JSON.stringify(file)}, ${content})`];

async function workspace(stages: Record<string, unknown>): Promise<AsyncDisposable & { dir: string; graph: (k: number) => Promise<PipelineGraph> }> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'sweep-runner-')));
  await fs.writeFile(path.join(dir, 'pipeline.yaml'), JSON.stringify({ name: 'sw', params: { k: 1 }, stages }));
  return {
    dir,
    async graph(k) {
      const g = await loadPipeline(path.join(dir, 'pipeline.yaml'), { overrides: [{ path: 'k', value: k }] });
      if (!g.ok) throw new Error(JSON.stringify(g.error));
      return g.value;
    },
    [Symbol.asyncDispose]: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

const stages = {
  base: { cmd: writeJs('base.txt', "'base'"), outs: ['base.txt'] },
  side: { cmd: writeJs('side.txt', "'side'"), outs: ['side.txt'] },
  model: { cmd: writeJs('model.txt', "require('fs').readFileSync('base.txt','utf8')+'${params.k}'"), deps: ['base.txt'], params: ['k'], outs: ['model.txt'] },
  score: { cmd: writeJs('score.json', "JSON.stringify({k: Number(require('fs').readFileSync('model.txt','utf8').slice(4))})"), deps: ['model.txt'], outs: [], metrics: ['score.json'] },
};

test('sharedStages: identical definitions with shared upstream only', async () => {
  await using w = await workspace(stages);
  const graphs = [await w.graph(1), await w.graph(2)];
  const shared = sharedStages(graphs.map((g) => ({ graph: g, order: [...g.stages.keys()] })));
  // score has the same definition in both, but its upstream (model) differs.
  assert.deepEqual(shared, ['base', 'side']);
  // With one variant selecting fewer stages, a stage outside its selection is not shared.
  const partial = sharedStages([{ graph: graphs[0]!, order: ['base', 'model'] as StageId[] }, { graph: graphs[1]!, order: [...graphs[1]!.stages.keys()] }]);
  assert.deepEqual(partial, ['base']);
});

test('runSweepPipeline: one summary per variant as a sequential run would give, last variant applied, scratch removed', async () => {
  await using w = await workspace(stages);
  const graphs = [await w.graph(1), await w.graph(2), await w.graph(3)];
  const cacheDir = resolveCacheDir(graphs[0]!, undefined, {}, w.dir);
  const recorded: [number, RunSummary][] = [];
  const events: RunEvent[] = [];
  const lock = await lockWorkspace(w.dir);
  assert.ok(lock.ok);
  const s = await runSweepPipeline(
    graphs.map((g, i) => ({ graph: g, label: `k=${i + 1}`, overrides: { k: i + 1 } })),
    { cacheDir, sweepId: 'abc123', jobs: 2, onEvent: (e) => events.push(e), recordVariant: async (i, sum) => (recorded.push([i, sum]), `exp${i}`) },
  );
  await lock.value.release();
  assert.equal(s.ok, true);
  assert.deepEqual(s.shared, ['base', 'side']);
  assert.equal(s.applied, 2);
  assert.deepEqual(s.variants.map((v) => [v.label, v.status, v.experiment]), [['k=1', 'succeeded', 'exp0'], ['k=2', 'succeeded', 'exp1'], ['k=3', 'succeeded', 'exp2']]);
  assert.deepEqual(recorded.map(([i]) => i).sort(), [0, 1, 2]);
  for (const [i, sum] of recorded) {
    assert.equal(sum.workspace, w.dir, 'recorded against the real workspace');
    assert.deepEqual(sum.order, ['base', 'side', 'model', 'score']);
    assert.equal(sum.stages.get('base' as StageId)!.status, i === 0 ? 'ran' : 'fresh');
    assert.equal(sum.stages.get('model' as StageId)!.status, 'ran');
    assert.deepEqual(sum.stages.get('score' as StageId)!.metrics, { k: i + 1 });
  }
  // Keys: one for the shared stage, one per variant for the rest.
  const keys = (id: string): Set<string | undefined> => new Set(recorded.map(([, sum]) => sum.stages.get(id as StageId)!.key));
  assert.equal(keys('base').size, 1);
  assert.equal(keys('model').size, 3);
  // The workspace holds the last variant; every event of a variant stage names it.
  assert.equal(await fs.readFile(path.join(w.dir, 'model.txt'), 'utf8'), 'base3');
  assert.equal(JSON.parse(await fs.readFile(path.join(w.dir, 'score.json'), 'utf8')).k, 3);
  for (const e of events) {
    if (!('stage' in e)) continue;
    if (e.stage === 'base' || e.stage === 'side') assert.equal(e.variant, undefined);
    else assert.match(e.variant ?? '', /^k=\d$/);
  }
  assert.deepEqual(await fs.readdir(scratchRoot(cacheDir, w.dir)), []);
});
