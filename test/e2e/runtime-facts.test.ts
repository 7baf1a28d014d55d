/**
 * A changed runtime fact (here: the sharp version a built-in stage last ran
 * with) makes that stage stale with a readable reason, end to end: a run
 * recorded with an older sharp (injected through `PlanDeps.builtinRuntime`),
 * then the real CLI, reading the real installed versions, explains and reruns
 * it. Its cmd downstream is not re-keyed (same ingest output: early cutoff).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import sharp from 'sharp';
import { e2eRig, pipelineYaml, statuses } from '../helpers/rig.js';
import { loadPipeline } from '../../src/config/load.js';
import { openEngine, resolveCacheDir, runPipeline } from '../../src/runner.js';
import { registryRuntimeFacts } from '../../src/plan.js';

test('a runtime fact change (sharp 0.34.1 → installed) makes a built-in stale; explain names it; the run reruns only it', async () => {
  await using rig = await e2eRig();
  for (const [rel, r] of [['images/cat/1.png', 200], ['images/dog/1.png', 10]] as const) {
    await rig.png(rel, [r, 20, 30]);
  }
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'rt',
      stages: {
        ingest: { uses: 'ingest', with: { source: 'images' } },
        summary: { cmd: rig.step('summary', '--in', 'out/ingest/classes.json', '--out', 'out/summary.txt'), deps: [{ stage: 'ingest' }], outs: ['out/summary.txt'] },
      },
    }),
  );
  const g = await loadPipeline(path.join(rig.dir, 'pipeline.yaml'));
  assert.ok(g.ok);
  const eng = await openEngine(g.value, resolveCacheDir(g.value, undefined, {}, rig.dir));
  const older = async (name: string, params: Parameters<typeof registryRuntimeFacts>[1]) => {
    const real = await registryRuntimeFacts(name, params);
    return 'sharp' in real ? { ...real, sharp: '0.34.1' } : real;
  };
  const s = await runPipeline(g.value, { cacheDir: resolveCacheDir(g.value, undefined, {}, rig.dir), engine: { ...eng, deps: { ...eng.deps, builtinRuntime: older } } });
  assert.deepEqual(Object.fromEntries([...s.stages].map(([id, x]) => [id, x.status])), { ingest: 'ran', summary: 'ran' });

  const installed = (sharp as unknown as { versions: { sharp: string } }).versions.sharp;
  const ex = await rig.cli(['explain', 'ingest']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /ingest: stale: the next run executes it/);
  assert.ok(ex.stdout.includes(`  runtime sharp changed: 0.34.1 → ${installed}\n`), ex.stdout);
  const sj = JSON.parse((await rig.cli(['explain', 'summary', '--json'])).stdout) as { action: string; changes: unknown[] };
  assert.equal(sj.action, 'unknown', 'summary waits for ingest');
  assert.deepEqual(sj.changes, [], 'the cmd stage itself has no runtime change');

  const r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'ran', summary: 'fresh' });
  assert.equal(await rig.count('summary'), 1);
  assert.deepEqual(statuses((await rig.cli(['run', '--json'])).stdout), { ingest: 'fresh', summary: 'fresh' });
});
