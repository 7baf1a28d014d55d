import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { ingestStage, ingestParams, type IngestParams } from '../../stages/ingest.js';
import { readManifest, type RejectEntry, type IngestCounts, type ConflictEntry, type DuplicateEntry } from '../../stages/lib/manifest.js';
import { bmp2x2, hugeBlankPng, jpegOf, pngOf, writeTree } from './fixtures.js';

async function readJsonl<T>(file: string): Promise<T[]> {
  const text = await fs.readFile(file, 'utf8');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

test('ingest: every bad-input kind gets its reason in rejects.jsonl and the run continues under skip', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'images');
  const jpeg = await jpegOf(1, 400, 300);
  const png = await pngOf(2, 300, 200);
  const shared = await pngOf(3);
  const dup = await pngOf(4);
  await writeTree(src, {
    'cat/a.png': await pngOf(10),
    'cat/c.jpg': await jpegOf(11),
    'cat/b.png': dup,
    'cat/b-copy.png': dup,
    'cat/nested/deeper/n.png': await pngOf(12),
    'cat/shared.png': shared,
    'dog/shared.png': shared,
    'dog/d.png': await pngOf(13),
    'dog/e.webp': await (await import('sharp')).default(await pngOf(14)).webp().toBuffer(),
    'cat/empty.png': new Uint8Array(0),
    'cat/trunc.jpg': jpeg.subarray(0, Math.floor(jpeg.length / 2)),
    'cat/trunc.png': png.subarray(0, Math.floor(png.length / 2)),
    'cat/text.jpg': 'this is not a JPEG\n',
    'cat/image.bmp': bmp2x2(),
    'cat/vector.svg': '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>',
    'readme.txt': 'top-level file without a class',
    'stray.png': await pngOf(99),
    'cat/.DS_Store': 'hidden junk',
  });
  await hugeBlankPng(path.join(src, 'cat', 'huge.png'), 30000, 30000);
  await fs.symlink(path.join(src, 'nowhere.png'), path.join(src, 'cat', 'dangling.png'));

  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'images', follow_symlinks: true }));
  const result = await ingestStage.run(ctx);

  const rejects = await readJsonl<RejectEntry>(path.join(ctx.outDir, 'rejects.jsonl'));
  assert.deepEqual(
    rejects.map((r) => [r.rel, r.reason]),
    [
      ['cat/dangling.png', 'unreadable'],
      ['cat/empty.png', 'empty'],
      ['cat/huge.png', 'too-many-pixels'],
      ['cat/image.bmp', 'unsupported-format'],
      ['cat/shared.png', 'label-conflict'],
      ['cat/text.jpg', 'not-an-image'],
      ['cat/trunc.jpg', 'truncated'],
      ['cat/trunc.png', 'truncated'],
      ['cat/vector.svg', 'unsupported-format'],
      ['dog/shared.png', 'label-conflict'],
    ],
    JSON.stringify(rejects, null, 1),
  );
  assert.match(rejects.find((r) => r.rel === 'cat/huge.png')!.detail, /30000x30000/);
  assert.match(rejects.find((r) => r.rel === 'cat/shared.png')!.detail, /dog\/shared\.png \(dog\)/);

  const { entries, classes } = readManifest(ctx.outDir);
  assert.deepEqual(classes, ['cat', 'dog']);
  assert.deepEqual(
    entries.map((e) => [e.rel, e.label, e.labelIndex, e.format]),
    [
      ['cat/a.png', 'cat', 0, 'png'],
      ['cat/b-copy.png', 'cat', 0, 'png'],
      ['cat/c.jpg', 'cat', 0, 'jpeg'],
      ['cat/nested/deeper/n.png', 'cat', 0, 'png'],
      ['dog/d.png', 'dog', 1, 'png'],
      ['dog/e.webp', 'dog', 1, 'webp'],
    ],
  );
  const c = entries.find((e) => e.rel === 'cat/c.jpg')!;
  assert.equal(c.width, 64);
  assert.equal(c.height, 48);
  assert.equal(c.path, path.join(await fs.realpath(src), 'cat', 'c.jpg').replace(await fs.realpath(src), src));
  assert.match(c.sha256, /^[0-9a-f]{64}$/);

  const duplicates = await readJsonl<DuplicateEntry>(path.join(ctx.outDir, 'duplicates.jsonl'));
  assert.deepEqual(duplicates.map((d) => [d.rel, d.keptRel]), [['cat/b.png', 'cat/b-copy.png']]);
  const conflicts = await readJsonl<ConflictEntry>(path.join(ctx.outDir, 'conflicts.jsonl'));
  assert.deepEqual(conflicts.map((x) => [x.labels, x.rels]), [[['cat', 'dog'], ['cat/shared.png', 'dog/shared.png']]]);

  const counts = JSON.parse(await fs.readFile(path.join(ctx.outDir, 'counts.json'), 'utf8')) as IngestCounts;
  assert.equal(counts.files, 17);
  assert.equal(counts.accepted, 6);
  assert.equal(counts.duplicates, 1);
  assert.equal(counts.unlabelled, 2);
  assert.deepEqual(counts.classes, { cat: 4, dog: 2 });
  assert.deepEqual(counts.rejected, {
    empty: 1,
    truncated: 2,
    'not-an-image': 1,
    'unsupported-format': 2,
    'too-many-pixels': 1,
    corrupt: 0,
    unreadable: 1,
    'label-conflict': 2,
    'symlink-skipped': 0,
  });
  assert.equal(result.metrics?.['images'], 6);
  assert.equal(result.metrics?.['rejected'], 10);
  assert.ok(ctx.log.warnings.some((w) => /10 of 17 file\(s\) rejected/.test(w) && w.includes('cat/trunc.jpg: truncated')), ctx.log.warnings.join('\n'));
  assert.ok(ctx.log.warnings.some((w) => /1 image file\(s\) directly under the source root .*stray\.png/.test(w)), ctx.log.warnings.join('\n'));
  assert.ok(!ctx.log.warnings.some((w) => w.includes('readme.txt')));
});

test('ingest: on_invalid fail fails naming the file and the reason', async () => {
  await using rig = await stageRig();
  const jpeg = await jpegOf(1, 200, 150);
  await writeTree(path.join(rig.dir, 'images'), {
    'a/ok.png': await pngOf(1),
    'a/bad.jpg': jpeg.subarray(0, jpeg.length >> 1),
  });
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'images', on_invalid: 'fail' }));
  await assert.rejects(ingestStage.run(ctx), (e: Error) => {
    assert.equal(e.name, 'DataInputError');
    assert.match(e.message, /1 invalid file\(s\) \(1 truncated\) and on_invalid is "fail"/);
    assert.ok(e.message.includes(`${path.join(rig.dir, 'images', 'a', 'bad.jpg')}: truncated`), e.message);
    return true;
  });
});

test('ingest: symlinks are skipped with a warning unless follow_symlinks', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'images'), { 'a/x.png': await pngOf(1) });
  await fs.symlink(path.join(rig.dir, 'images', 'a', 'x.png'), path.join(rig.dir, 'images', 'a', 'link.png'));
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'images' }));
  await ingestStage.run(ctx);
  assert.deepEqual(readManifest(ctx.outDir).entries.map((e) => e.rel), ['a/x.png']);
  assert.ok(ctx.log.warnings.some((w) => w.includes('a/link.png')));
  const rejects = await readJsonl<RejectEntry>(path.join(ctx.outDir, 'rejects.jsonl'));
  assert.deepEqual(rejects.map((r) => [r.rel, r.reason]), [['a/link.png', 'symlink-skipped']]);
  assert.match(rejects[0]!.detail, /symbolic link to .*x\.png \(a file inside the source directory\), not followed; set follow_symlinks: true/);
});

// The 30000x30000 bomb in a child process (time, peak RSS): test/reliability/bad-images.test.ts.

test('ingest: CSV manifest with paths relative to it, a header, quoted fields and predefined splits', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'data'), {
    'imgs/1.png': await pngOf(1),
    'imgs/2.png': await pngOf(2),
    'imgs/with,comma.png': await pngOf(3),
    'list.csv': 'path,label,split\nimgs/1.png,shirt,train\nimgs/2.png,shoe,test\n"imgs/with,comma.png",shoe,\nimgs/missing.png,shoe,train\n',
  });
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ manifest: 'data/list.csv' }));
  const r = await ingestStage.run(ctx);
  const { entries, classes } = readManifest(ctx.outDir);
  assert.deepEqual(classes, ['shirt', 'shoe']);
  assert.deepEqual(entries.map((e) => [e.rel, e.label, e.split]), [
    ['imgs/1.png', 'shirt', 'train'],
    ['imgs/2.png', 'shoe', 'test'],
    ['imgs/with,comma.png', 'shoe', undefined],
  ]);
  assert.equal(entries[0]!.path, path.join(rig.dir, 'data', 'imgs', '1.png'));
  const rejects = await readJsonl<RejectEntry>(path.join(ctx.outDir, 'rejects.jsonl'));
  assert.deepEqual(rejects.map((x) => [x.rel, x.reason]), [['imgs/missing.png', 'unreadable']]);
  assert.equal(r.metrics?.['rejected'], 1);
  assert.deepEqual(ingestStage.fileDeps!(ingestParams({ manifest: 'data/list.csv' })), ['data/list.csv', 'data']);
});

test('ingest: manifest errors name file:line:col, all of them', async () => {
  await using rig = await stageRig();
  await writeTree(rig.dir, {
    'list.csv': 'path,label,split\na.png,x,train\nb.png,,train\nc.png,y,holdout\n',
    'list.jsonl': '{"path":"a.png","label":"x"}\nnot json\n{"path":"b.png","label":"y","split":"val"}\n',
  });
  const csv = await rig.context<IngestParams>('ingest', ingestParams({ manifest: 'list.csv' }));
  await assert.rejects(ingestStage.run(csv), (e: Error) => {
    assert.match(e.message, /2 error\(s\) in manifest/);
    assert.ok(e.message.includes(`${path.join(rig.dir, 'list.csv')}:3:7 missing label for b.png`), e.message);
    assert.ok(e.message.includes(`${path.join(rig.dir, 'list.csv')}:4:9 unknown split "holdout"`), e.message);
    return true;
  });
  const jsonl = await rig.context<IngestParams>('ingest', ingestParams({ manifest: 'list.jsonl' }));
  await assert.rejects(ingestStage.run(jsonl), (e: Error) => {
    assert.ok(e.message.includes(`${path.join(rig.dir, 'list.jsonl')}:2:1 invalid JSON`), e.message);
    assert.ok(e.message.includes(`${path.join(rig.dir, 'list.jsonl')}:3:29 unknown split "val"`), e.message);
    return true;
  });
});

test('ingest: JSONL manifest, include/exclude globs, sorted code-unit class order', async () => {
  await using rig = await stageRig();
  await writeTree(rig.dir, {
    'src/b/1.png': await pngOf(1),
    'src/B/2.png': await pngOf(2),
    'src/a/3.png': await pngOf(3),
    'src/a/skip/4.png': await pngOf(4),
    'src/a/5.jpg': await jpegOf(5),
  });
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src', include: ['**/*.png'], exclude: ['a/skip/**'] }));
  await ingestStage.run(ctx);
  const { entries, classes } = readManifest(ctx.outDir);
  assert.deepEqual(classes, ['B', 'a', 'b']);
  assert.deepEqual(entries.map((e) => e.rel), ['B/2.png', 'a/3.png', 'b/1.png']);

  await writeTree(rig.dir, { 'm.jsonl': '{"path":"src/a/3.png","label":"three"}\n{"path":"src/b/1.png","label":"one","split":"validation"}\n' });
  const j = await rig.context<IngestParams>('ingest', ingestParams({ manifest: 'm.jsonl' }));
  await ingestStage.run(j);
  assert.deepEqual(readManifest(j.outDir).entries.map((e) => [e.label, e.split]), [['three', undefined], ['one', 'validation']]);
});

test('ingest: probe results are cached per content hash (adding 2 files probes 2)', async () => {
  await using rig = await stageRig();
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 12; i++) files[`c${i % 3}/${i}.png`] = await pngOf(100 + i);
  await writeTree(path.join(rig.dir, 'src'), files);
  const first = await ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' })));
  assert.equal(first.metrics?.['probed'], 12);
  await writeTree(path.join(rig.dir, 'src'), { 'c0/new1.png': await pngOf(500), 'c1/new2.png': await pngOf(501) });
  const second = await ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' })));
  assert.equal(second.metrics?.['probed'], 2);
  assert.equal(second.metrics?.['images'], 14);
});

test('ingest: a missing source and an empty result are clear failures', async () => {
  await using rig = await stageRig();
  await assert.rejects(ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'nope' }))), /source nope .* is not a directory/);
  await writeTree(rig.dir, { 'src/a/x.txt': 'hello' });
  await assert.rejects(
    ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }))),
    /no usable images in src \(1 file\(s\) considered, 1 not-an-image\)/,
  );
});

test('ingest: a re-run reads only new or changed files (content hashes memoised by stat signature)', async () => {
  await using rig = await stageRig();
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 12; i++) files[`c${i % 3}/${i}.png`] = await pngOf(200 + i);
  await writeTree(path.join(rig.dir, 'src'), files);
  // Files younger than the memo's racy window (1 s) are never trusted by stat: let them age first.
  await new Promise((r) => setTimeout(r, 1100));
  const first = await ingestStage.run(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' })));
  assert.equal(first.metrics?.['read'], 12);
  await writeTree(path.join(rig.dir, 'src'), { 'c0/new1.png': await pngOf(600), 'c1/new2.png': await pngOf(601) });
  const second = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
  const r2 = await ingestStage.run(second);
  assert.equal(r2.metrics?.['read'], 2);
  assert.equal(r2.metrics?.['images'], 14);

  // A changed file (same path) is read again and gets its new hash; nothing else is read.
  await fs.writeFile(path.join(rig.dir, 'src', 'c0', '0.png'), await pngOf(700));
  const third = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
  const r3 = await ingestStage.run(third);
  assert.ok((r3.metrics?.['read'] ?? 0) >= 1 && (r3.metrics?.['read'] ?? 0) <= 3, `read ${r3.metrics?.['read']}`); // the changed file (+ the two still-young new ones)
  const changed = readManifest(third.outDir).entries.find((e) => e.rel === 'c0/0.png')!;
  const { createHash } = await import('node:crypto');
  assert.equal(changed.sha256, createHash('sha256').update(await pngOf(700)).digest('hex'));
  // Same entries as a run without any memo (fresh cache dir).
  const cold = { ...(await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }))), cacheDir: path.join(rig.dir, 'cold-cache') };
  await ingestStage.run(cold);
  assert.deepEqual(await fs.readFile(path.join(cold.outDir, 'manifest.jsonl'), 'utf8'), await fs.readFile(path.join(third.outDir, 'manifest.jsonl'), 'utf8'));
});
