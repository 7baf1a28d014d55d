/**
 * The partition stage's numbers and bytes are pinned: `unitOf` equals the
 * Buffer-based definition (first 52 bits of sha256(salt NUL hash), big-endian)
 * on many hashes and salts, and partition.json is exactly `JSON.stringify` of
 * its `PartitionFile` with assignments in code-unit order, duplicates and
 * odd salts included. A split that drifts would move images between splits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { stageRig } from '../helpers/stage-context.js';
import { assignSplits, partitionParams, partitionStage, unitOf, type PartitionParams } from '../../stages/partition.js';
import { PARTITION_FILE, type PartitionFile } from '../../stages/lib/splits.js';
import type { ManifestEntry } from '../../stages/lib/manifest.js';

/** The definition, with a Buffer digest. */
function unitByBuffer(salt: string, sha256: string): number {
  const d = createHash('sha256').update(`${salt}\0${sha256}`, 'utf8').digest();
  return (d.readUInt32BE(0) * 2 ** 20 + (d.readUInt32BE(4) >>> 12)) / 2 ** 52;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('partition: unitOf equals its Buffer-based definition for 5,000 hashes under several salts (non-ASCII included)', () => {
  for (const salt of ['', 'x', 'é€🙂', 'a\0b']) {
    for (let i = 0; i < 1250; i++) {
      const h = sha(`${salt}-${i}`);
      assert.equal(unitOf(salt, h), unitByBuffer(salt, h), `${JSON.stringify(salt)} ${h}`);
    }
  }
});

test('partition stage: partition.json is JSON.stringify of the PartitionFile, assignments in code-unit order', async () => {
  await using rig = await stageRig();
  const ingestDir = path.join(rig.dir, 'ingest-out');
  await fs.mkdir(ingestDir);
  const labels = ['a', 'b', 'c'];
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < 300; i++) {
    const label = labels[i % 3]!;
    // Every 7th image repeats an earlier one's bytes (a duplicate under the same label).
    const h = i % 7 === 6 ? sha(`img-${i - 3}`) : sha(`img-${i}`);
    entries.push({ path: `/x/${label}/${i}.png`, rel: `${label}/${i}.png`, sha256: h, label, labelIndex: i % 3, width: 8, height: 8, format: 'png', bytes: 10, ...(i % 50 === 0 ? { split: 'test' as const } : {}) });
  }
  await fs.writeFile(path.join(ingestDir, 'manifest.jsonl'), entries.map((e) => JSON.stringify(e) + '\n').join(''));
  await fs.writeFile(path.join(ingestDir, 'classes.json'), JSON.stringify(labels));
  const params = partitionParams({ salt: 'quote " and \\ and é', ratios: [0.6, 0.3, 0.1] });
  const ctx = await rig.context<PartitionParams>('partition', params, { ingest: ingestDir });
  await partitionStage.run(ctx);

  const assignment = assignSplits(entries, params);
  const counts = JSON.parse(await fs.readFile(path.join(ctx.outDir, 'counts.json'), 'utf8')) as PartitionFile['counts'];
  const expected: PartitionFile = {
    format: 'pipeline.partition/v1',
    salt: params.salt,
    ratios: [...params.ratios] as [number, number, number],
    assignments: Object.fromEntries([...assignment.keys()].sort().map((k) => [k, assignment.get(k)!])),
    counts,
  };
  assert.equal(await fs.readFile(path.join(ctx.outDir, PARTITION_FILE), 'utf8'), JSON.stringify(expected) + '\n');
  // Counts are per distinct content (its first entry's label).
  const distinct = new Set(entries.map((e) => e.sha256)).size;
  assert.equal(Object.values(counts).reduce((a, per) => a + Object.values(per).reduce((x, y) => x + y, 0), 0), distinct);
});
