/**
 * The example pipelines this area owns (quickstart, fashion-mnist, simpsons)
 * load, validate against the schemas and analyse into the expected DAG, via
 * the real CLI (`pipeline dag`). Running them is the docs area's e2e job.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../helpers/rig.js';

const cases: Record<string, string[]> = {
  'quickstart.yaml': ['ingest', 'resize', 'partition', 'augment', 'build-model', 'train', 'evaluate'],
  'fashion-mnist.yaml': ['convert', 'ingest', 'resize', 'partition', 'build-model', 'train', 'evaluate'],
  'simpsons.yaml': ['ingest', 'resize', 'partition', 'augment', 'build-model', 'features', 'train', 'evaluate'],
};

for (const [file, stages] of Object.entries(cases)) {
  test(`pipelines/${file} validates and has the expected stages`, () => {
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'pipeline.js'), 'dag', file], { cwd: path.join(repoRoot, 'pipelines'), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const listed = r.stdout
      .split('\n')
      .slice(1)
      .filter((l) => l.trim().length > 0)
      .map((l) => l.split(/\s+/)[0]);
    assert.deepEqual(listed.sort(), [...stages].sort());
  });
}
