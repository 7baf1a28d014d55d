/**
 * `hostsWanted`: how many warm hosts the engine starts while a built-in runs,
 * and which stages they prepare: the dependent of the running stage's warmth
 * (resize after ingest: sharp) is left out, as it takes the host ingest frees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../../src/config/load.js';
import { hostsWanted } from '../../src/run/stage-exec.js';
import { canShareHost, warmthOf } from '../../src/stage-host/policy.js';
import type { BuiltinStageNode, StageId } from '../../src/pipeline.js';

async function graphOf(stages: Record<string, unknown>) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hosts-wanted-'));
  try {
    await fs.mkdir(path.join(dir, 'images'));
    await fs.writeFile(path.join(dir, 'pipeline.yaml'), JSON.stringify({ name: 'h', stages }));
    const g = await loadPipeline(path.join(dir, 'pipeline.yaml'));
    if (!g.ok) throw new Error(JSON.stringify(g.error));
    return g.value;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const node = (g: Awaited<ReturnType<typeof graphOf>>, id: string) => g.stages.get(id as StageId) as BuiltinStageNode;

test('hostsWanted: one host per shareable dependent less the freed one; the dependent of the same warmth does not need preparing', async () => {
  const g = await graphOf({ ingest: { uses: 'ingest', with: { source: 'images' } }, resize: { uses: 'resize' }, partition: { uses: 'partition' } });
  assert.deepEqual(hostsWanted(g, node(g, 'ingest'), canShareHost, warmthOf), { count: 1, stages: ['partition'] });
  // Without the warmth rule both would be prepared (what a warmth-blind policy does).
  assert.deepEqual(hostsWanted(g, node(g, 'ingest'), canShareHost, () => undefined), { count: 1, stages: ['partition', 'resize'] });
  // A stage nobody depends on wants none.
  assert.deepEqual(hostsWanted(g, node(g, 'resize'), canShareHost, warmthOf), { count: 0, stages: [] });
});

test('hostsWanted: a running stage of no warmth leaves every dependent prepared', async () => {
  const g = await graphOf({ ingest: { uses: 'ingest', with: { source: 'images' } }, partition: { uses: 'partition' }, resize: { uses: 'resize', needs: ['partition'] } });
  const p = node(g, 'partition');
  assert.deepEqual(hostsWanted(g, p, canShareHost, warmthOf), { count: 0, stages: ['resize'] });
});
