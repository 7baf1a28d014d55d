/**
 * Ingest over the engine's listing of its source (`StageContext.depListings`,
 * made here by the engine's real `FileHasher`): the same outputs, byte for
 * byte, as its own walk, without reading the files the probe memo knows; and
 * through the real CLI, a run that adds one image reads only that image and
 * keeps no stat memo of its own, while a source with a symbolic link is
 * still walked by ingest itself (the link is skipped and reported as before).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { ingestStage, ingestParams, type IngestParams } from '../../stages/ingest.js';
import { FileHasher } from '../../src/hash/file-hasher.js';
import { decodeDepFiles, encodeDepFiles } from '../../src/stage-host/dep-files.js';
import type { DepFiles } from '../../stages/types.js';
import { ingestEdgeCases, ingestOutputs, pngOf, writeTree } from './fixtures.js';
import { e2eRig, pipelineYaml, statuses } from '../helpers/rig.js';

/** The engine's listing of `rel` under `workspace`, through the pipe encoding, as a stage receives it. */
async function engineListing(workspace: string, rel: string): Promise<DepFiles> {
  const h = await FileHasher.open(path.join(workspace, 'engine-memo.bin'));
  const d = await h.hashDep(workspace, rel);
  const files = h.plainDirFiles(workspace, rel, `${d.kind}:${d.hash}`);
  assert.ok(files, `${rel} is plain`);
  return decodeDepFiles(encodeDepFiles(files));
}

test('dep listing encoding: round trip, empty listing, and a malformed one throws', () => {
  const files: DepFiles = { rels: ['a/1.png', 'b/x y,z.png', 'top'], sha256: ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)], sizes: [1, 22, 0] };
  assert.deepEqual(decodeDepFiles(encodeDepFiles(files)), files);
  assert.deepEqual(decodeDepFiles(encodeDepFiles({ rels: [], sha256: [], sizes: [] })), { rels: [], sha256: [], sizes: [] });
  assert.throws(() => encodeDepFiles({ rels: ['a'], sha256: [], sizes: [1] }), /differ in length/);
  assert.throws(() => encodeDepFiles({ rels: ['a\0b'], sha256: ['a'.repeat(64)], sizes: [1] }), /NUL/);
  assert.throws(() => decodeDepFiles({ rels: 'a\0b', sha256: 'a'.repeat(64), sizes: [1] }), /malformed/);
  assert.throws(() => decodeDepFiles({ rels: 'a', sha256: 'A'.repeat(64), sizes: [1] }), /malformed/);
});

test('ingest with the engine listing: outputs byte-identical to its own walk; files the probe memo knows are not read', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'src');
  await writeTree(src, {
    ...(await ingestEdgeCases(30)), // duplicate, label conflict, no image, empty, hidden
    'dog/deep/6.png': await pngOf(34), // nested: still class dog
    'README.md': 'top-level: unlabelled',
    'stray.png': await pngOf(35), // top-level image: warned about
  });
  const run = async (listing: DepFiles | undefined) => {
    const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
    const c = listing === undefined ? ctx : { ...ctx, depListings: { [src]: listing } };
    return { result: await ingestStage.run(c), out: await ingestOutputs(ctx.outDir), warnings: ctx.log.warnings };
  };
  const walked = await run(undefined);
  const listing = await engineListing(rig.dir, 'src');
  const listed = await run(listing);
  assert.deepEqual(listed.out, walked.out);
  assert.equal(listed.result.summary, walked.result.summary);
  assert.deepEqual(listed.warnings, walked.warnings);
  assert.match(listed.warnings.join('\n'), /stray\.png/);
  // Only the empty file goes the usual way (it has no probe to remember); every other outcome is the memo's.
  assert.equal(listed.result.metrics?.['read'], 1);
  assert.equal(listed.result.metrics?.['probed'], 0);

  // A new image is read and probed; nothing else is.
  await fs.writeFile(path.join(src, 'cat', '7.png'), await pngOf(36));
  const grown = await run(await engineListing(rig.dir, 'src'));
  assert.equal(grown.result.metrics?.['read'], 2);
  assert.equal(grown.result.metrics?.['probed'], 1);
  assert.equal(grown.result.metrics?.['images'], (walked.result.metrics?.['images'] ?? 0) + 1);
  assert.deepEqual((await run(undefined)).out, grown.out, 'its own walk agrees');

  // The listing is the key's snapshot: its hashes are what ingest records, even for a file replaced since.
  await fs.writeFile(path.join(src, 'dog', '5.png'), await pngOf(37));
  const stale = await run(listing);
  const five = stale.out['manifest.jsonl']!.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { rel: string; sha256: string }).find((e) => e.rel === 'dog/5.png');
  assert.equal(five?.sha256, listing.sha256[listing.rels.indexOf('dog/5.png')]);
});

test('through the CLI: ingest takes the engine listing (reads only the new image, keeps no stat memo); a source with a link is walked as before', async () => {
  await using rig = await e2eRig();
  for (let i = 0; i < 4; i++) await rig.png(`images/${i % 2 ? 'cat' : 'dog'}/${i}.png`, [50 * i, 20, 200 - 40 * i]);
  await rig.write('pipeline.yaml', pipelineYaml({ name: 'listing', cache: 'cache', stages: { ingest: { uses: 'ingest', with: { source: 'images' } } } }));
  const ingestMetrics = (stdout: string): Record<string, number> => {
    for (const line of stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as { type?: string; stage?: string; metrics?: Record<string, number> };
      if (e.type === 'stage-end' && e.stage === 'ingest') return e.metrics ?? {};
    }
    throw new Error(`no ingest end in ${stdout}`);
  };
  let r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(ingestMetrics(r.stdout)['read'], 4);
  await rig.png('images/cat/new.png', [1, 2, 3]);
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(statuses(r.stdout), { ingest: 'ran' });
  assert.equal(ingestMetrics(r.stdout)['read'], 1, 'only the new image is read');
  const statMemo = path.join(rig.dir, 'cache', 'items', 'ingest', 'stat-memo');
  assert.equal(await fs.stat(statMemo).catch(() => undefined), undefined, 'ingest used the engine listing: no stat memo of its own');
  assert.deepEqual((await fs.readdir(path.join(rig.dir, 'cache', 'tmp'))).filter((n) => n.endsWith('.deps.json')), [], 'the listing file is removed after the stage');

  // A link in the source: the engine's walk follows it, ingest does not; ingest walks itself and reports it.
  await fs.symlink(path.join(rig.dir, 'images', 'cat', 'new.png'), path.join(rig.dir, 'images', 'dog', 'link.png'));
  r = await rig.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const walked = ingestMetrics(r.stdout);
  assert.equal(walked['rejected'], 1);
  assert.equal(walked['read'], 5, 'walked by ingest, which has no stat memo yet: every file is read');
  const rejects = await fs.readFile(path.join(rig.dir, 'out', 'ingest', 'rejects.jsonl'), 'utf8');
  assert.match(rejects, /"rel":"dog\/link\.png","reason":"symlink-skipped"/);
});
