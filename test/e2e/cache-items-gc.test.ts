/**
 * `pipeline cache gc` and the per-item caches, end to end with the real
 * ingest + resize stages: resize entries linked into kept outputs stay, young
 * entries stay within the grace, entries of a configuration no longer kept go
 * (reported in --json and text), `cache verify` stays clean, and a later run
 * recomputes a pruned entry to the same bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import { e2eRig, ndjson, pipelineYaml, statuses, type E2eRig } from '../helpers/rig.js';
import { ITEM_KEY } from '../../src/cache/item-cache.js';

const yaml = (size: number) =>
  pipelineYaml({ name: 'items', stages: { ingest: { uses: 'ingest', with: { source: 'images' } }, resize: { uses: 'resize', with: { size: [size, size] } } } });

/** Every item entry under cache/items/<ns>: name → {size, nlink}. Not ingest's stat memo (items/ingest/stat-memo/, not an
 * entry and not gc's to remove), which exists only when the images were over 1 s old at ingest, i.e. depending on load. */
function entries(rig: E2eRig, ns: string): Map<string, { size: number; nlink: number }> {
  const out = new Map<string, { size: number; nlink: number }>();
  const root = path.join(rig.dir, 'cache', 'items', ns);
  for (const shard of fss.existsSync(root) ? fss.readdirSync(root) : []) {
    for (const name of fss.readdirSync(path.join(root, shard))) {
      if (!ITEM_KEY.test(name)) continue;
      const st = fss.statSync(path.join(root, shard, name));
      out.set(name, { size: st.size, nlink: st.nlink });
    }
  }
  return out;
}

async function pixels(rig: E2eRig): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const d of await fs.readdir(path.join(rig.dir, rel), { withFileTypes: true })) {
      const r = `${rel}/${d.name}`;
      if (d.isDirectory()) await walk(r);
      else out.set(r, (await fs.readFile(path.join(rig.dir, r))).toString('base64'));
    }
  };
  await walk('out/resize');
  return out;
}

test('cache gc: resize entries of kept outputs and young ones stay; unkept ones go; verify clean; a rerun recomputes them identically', async () => {
  await using rig = await e2eRig();
  for (let i = 0; i < 4; i++) {
    await rig.png(`images/${i % 2 ? 'cat' : 'dog'}/${i}.png`, [40 * i, 90, 200 - 30 * i], [12, 10]);
  }
  await rig.write('pipeline.yaml', yaml(8));
  let r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const first = await pixels(rig);
  const size8 = entries(rig, 'resize');
  assert.equal(size8.size, 4);
  await rig.write('pipeline.yaml', yaml(4));
  r = await rig.cli(['run', '--json']);
  assert.deepEqual(statuses(r.stdout), { ingest: 'fresh', resize: 'ran' });
  const all = entries(rig, 'resize');
  assert.equal(all.size, 8);
  const size4 = [...all.keys()].filter((k) => !size8.has(k));
  for (const k of size4) assert.ok(all.get(k)!.nlink > 1, 'the current resize output shares its entries with cache objects');

  // Default grace: everything is young, nothing goes even at max age 0.
  let gc = await rig.cli(['cache', 'gc', '--keep-last', '0', '--items-max-age', '0']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /^removed 0 item-cache entries \(0\.0 MiB\) unused for 0 days; kept \d+ \(\d+ shared with cached outputs, \d+ used recently\)$/m);
  assert.equal(entries(rig, 'resize').size, 8);

  // Grace 0: the 8x8 run is not kept (keep-last 0, the workspace holds 4x4), its objects go, and then its entries.
  const ingestBefore = entries(rig, 'ingest');
  gc = await rig.cli(['cache', 'gc', '--keep-last', '0', '--grace', '0', '--items-max-age', '0', '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  const rep = JSON.parse(gc.stdout) as { removedObjects: number; items: { maxAgeDays: number; entries: number; removedEntries: number; freedBytes: number; keptShared: number; keptRecent: number } };
  assert.ok(rep.removedObjects >= 4, 'the 8x8 packs left the object store');
  const left = entries(rig, 'resize');
  assert.deepEqual([...left.keys()].sort(), [...size4].sort(), 'exactly the 4x4 (linked) entries stay');
  // ingest's entries are shared with nothing: at max age 0 and grace 0 they go too.
  assert.equal(entries(rig, 'ingest').size, 0);
  const freed = [...size8.values()].reduce((s, e) => s + e.size, 0) + [...ingestBefore.values()].reduce((s, e) => s + e.size, 0);
  assert.deepEqual(rep.items, { maxAgeDays: 0, entries: 4 + 4 + ingestBefore.size, removedEntries: 4 + ingestBefore.size, freedBytes: freed, keptShared: 4, keptRecent: 0, removedTemp: 0 });

  const v = await rig.cli(['cache', 'verify']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /cache is clean/);

  // Back to 8x8: its record is gone, so resize recomputes every image (no cache hit) to the same bytes.
  await rig.write('pipeline.yaml', yaml(8));
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'fresh', resize: 'ran' });
  const done = ndjson(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'resize') as { metrics?: Record<string, number> } | undefined;
  assert.equal(done?.metrics?.resized, 4, JSON.stringify(done));
  assert.equal(done?.metrics?.cache_hits, 0);
  assert.deepEqual(await pixels(rig), first);
  assert.equal(entries(rig, 'resize').size, 8);
});
