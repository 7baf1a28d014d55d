/**
 * The re-run path of the resize stage (issue 3, +1% images): the manifest read
 * as columns (`readManifestColumns`: hashes and labels picked from the text)
 * must give exactly what `JSON.parse` of each line gives, also for lines it
 * cannot read that way; and under the engine's item cache (`refer`) a re-run
 * names every cached image in pack-path order, decodes only the new ones, and
 * writes the same index as a run that decoded everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig, type StageRig } from '../helpers/stage-context.js';
import { resizeParams, resizeStage, type ResizeParams } from '../../stages/resize.js';
import { ingestParams, ingestStage, type IngestParams } from '../../stages/ingest.js';
import { ShardReader } from '../../stages/lib/shards.js';
import { manifestColumnsOf, readManifest, readManifestColumns, MANIFEST_FILE, CLASSES_FILE, type ManifestEntry } from '../../stages/lib/manifest.js';
import { stageItemCache } from '../../src/stage-host/item-cache-for.js';
import type { ItemRef } from '../../src/stage-host/protocol.js';
import type { StageContext } from '../../stages/types.js';
import { classPngs, pngOf, writeTree } from './fixtures.js';

const H = (c: string): string => c.repeat(64);

function entry(i: number, more: Partial<ManifestEntry> = {}): ManifestEntry {
  return { path: `/data/c/${i}.png`, rel: `c/${i}.png`, sha256: H('0123456789abcdef'[i % 16]!), label: 'c', labelIndex: i % 3, width: 12, height: 10, format: 'png', bytes: 100 + i, ...more };
}

/** Lines the fast path reads, and lines it must hand to JSON.parse; each with what JSON.parse makes of it. */
const LINES: readonly string[] = [
  JSON.stringify(entry(0)),
  JSON.stringify(entry(1, { labelIndex: 12, split: 'test' })),
  // A path holding the field's text (escaped quotes) and a brace.
  JSON.stringify(entry(2, { path: '/d/"sha256":"' + H('f') + '"{x}.png', rel: 'a,"labelIndex":7,.png' })),
  // Fields in another order.
  JSON.stringify({ labelIndex: 4, sha256: H('a'), path: '/p/4.png', rel: '4.png', label: 'x', width: 1, height: 1, format: 'png', bytes: 1 }),
  // Spaced JSON (not how ingest writes it).
  `{ "path": "/p/5.png", "sha256": "${H('b')}", "labelIndex": 5, "rel": "5.png" }`,
  // A nested object holding a sha256 key before the real one.
  `{"meta":{"sha256":"${H('c')}","labelIndex":9},"sha256":"${H('d')}","labelIndex":6,"path":"/p/6.png"}`,
  // The same key twice: JSON.parse keeps the last.
  `{"sha256":"${H('1')}","labelIndex":1,"sha256":"${H('2')}","labelIndex":2,"path":"/p/7.png"}`,
  // Escapes in the hash, a key ending in "sha256, numbers written oddly.
  `{"path":"/p/8.png","sha256":"\\u0061${H('a').slice(1)}","labelIndex":1}`,
  `{"path":"/p/8b.png","sha256":"${H('4')}","labelIndex":1.0}`,
  `{"a\\"sha256":"${H('e')}","sha256":"${H('3')}","labelIndex":1e1,"path":"/p/9.png"}`,
  `{"path":"/p/10.png","sha256":"short","labelIndex":0}`,
  // Not ASCII.
  JSON.stringify(entry(11, { path: '/données/é/11.png', rel: 'é/11.png', label: 'é' })),
];

test('readManifestColumns: every field equals JSON.parse of its line, fast path or not (escapes, nesting, order, spacing, CRLF, blank lines)', async () => {
  const text = LINES.join('\n') + '\n\n' + JSON.stringify(entry(12)) + '\r\n' + JSON.stringify(entry(13)); // blank line, CRLF, no final newline
  const want = text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as ManifestEntry);
  const cols = manifestColumnsOf(text);
  assert.equal(cols.count, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.equal(cols.sha256[i], want[i]!.sha256, `line ${i} sha256`);
    assert.equal(cols.labelIndex[i], want[i]!.labelIndex, `line ${i} labelIndex`);
    assert.deepEqual(cols.entry(i), want[i], `line ${i} entry`);
  }
  assert.throws(() => cols.entry(want.length), RangeError);

  // From files, both as ASCII (byte copy) and as UTF-8, agreeing with readManifest.
  await using rig = await stageRig();
  for (const [name, lines] of [['ascii', LINES.slice(0, -1)], ['utf8', LINES]] as const) {
    const dir = path.join(rig.dir, name);
    await writeTree(dir, { [MANIFEST_FILE]: lines.join('\n') + '\n', [CLASSES_FILE]: JSON.stringify(['c', 'é']) });
    const full = readManifest(dir);
    const { columns, classes } = readManifestColumns(dir);
    assert.deepEqual(classes, full.classes);
    assert.deepEqual([...columns.sha256], full.entries.map((e) => e.sha256));
    assert.deepEqual([...columns.labelIndex], full.entries.map((e) => e.labelIndex));
    assert.deepEqual(full.entries.map((_, i) => columns.entry(i)), full.entries);
  }
  // A line without the fields as JSON text is parsed, and fails as readManifest does when it is not JSON.
  assert.throws(() => manifestColumnsOf(`${JSON.stringify(entry(0))}\nnot json\n`), (e: Error) => e instanceof SyntaxError && e.message.startsWith('manifest.jsonl:2: '));
  // A line cut short after both fields (the text alone would give them) fails as JSON.parse does.
  const cut = JSON.stringify(entry(1)).slice(0, -3);
  assert.ok(cut.includes('"labelIndex":1,'));
  assert.throws(() => manifestColumnsOf(`${JSON.stringify(entry(0))}\n\n${cut}\r\n`, 'in/m.jsonl'), (e: Error) => e instanceof SyntaxError && e.message.startsWith('in/m.jsonl:3: '));
  // Lines the columns cannot hold (an Int32Array of labels, strings of hashes) throw, naming the line, rather
  // than read as some other value.
  const sha = `"sha256":"${H('a')}"`;
  for (const bad of [`{${sha}}`, `{${sha},"labelIndex":1.5}`, `{${sha},"labelIndex":"2"}`, `{${sha},"labelIndex":-1}`, `{${sha},"labelIndex":3000000000}`, `{${sha},"labelIndex":null}`, '{"labelIndex":1}', '{"sha256":7,"labelIndex":1}', 'null', '[1]']) {
    assert.throws(() => manifestColumnsOf(`${JSON.stringify(entry(0))}\n${bad}\n`), /^Error: manifest\.jsonl:2: not a manifest entry/, bad);
  }
});

async function ingestTree(rig: StageRig, src: string): Promise<string> {
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: src }));
  await ingestStage.run(ctx);
  return ctx.outDir;
}

/** A resize context with the item cache the stage host gives under `pipeline run` (refs offered). */
async function engineContext(rig: StageRig, params: ResizeParams, ingest: string, refs: ItemRef[]) {
  return { ...(await rig.context<ResizeParams>('resize', params, { ingest })), items: stageItemCache(rig.cacheDir, 'resize', refs) };
}

test('resize under the engine item cache: a re-run names cached images in path order, decodes only new ones, and writes the index a full run writes; duplicate hashes count once', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), await classPngs(24, 3, 7000, 20, 16));
  const params = resizeParams({ size: [8, 6] });
  const first: ItemRef[] = [];
  const r1 = await resizeStage.run(await engineContext(rig, params, await ingestTree(rig, 'src'), first));
  assert.deepEqual(r1.metrics, { images: 24, resized: 24, cache_hits: 0 });
  assert.equal(first.length, 24);
  assert.ok(first.every((r) => r.sha256 !== undefined), 'entries written in this run carry their file hash');

  // Four more images: only they are decoded.
  const more: Record<string, Buffer> = {};
  for (let i = 24; i < 28; i++) more[`c${i % 3}/${i}.png`] = await pngOf(7000 + i, 20, 16);
  await writeTree(path.join(rig.dir, 'src'), more);
  const ing = await ingestTree(rig, 'src');
  const refs: ItemRef[] = [];
  const ctx = await engineContext(rig, params, ing, refs);
  assert.deepEqual((await resizeStage.run(ctx)).metrics, { images: 28, resized: 4, cache_hits: 24 });
  // Cached images named in path order (what the host sorts by); the decoded ones (their entries written in this
  // run, so with a file hash) whenever their decode finishes.
  const cachedRefs = refs.filter((r) => r.sha256 === undefined).map((r) => r.path);
  assert.equal(cachedRefs.length, 24);
  assert.deepEqual(cachedRefs, [...cachedRefs].sort());
  const reader = new ShardReader(ctx.outDir);
  assert.deepEqual(new Set(refs.map((r) => r.path)), new Set(reader.index.shards.map((s) => s.file)));
  assert.deepEqual(await fs.readdir(ctx.outDir), ['index.json'], 'refer names the entries: nothing else written');
  const { entries } = readManifest(ing);
  assert.deepEqual(reader.index.items.map((it) => [it.id, it.source, it.label]), entries.map((e) => [e.sha256, e.sha256, e.labelIndex]));

  // A run that decodes everything (another, empty cache) writes the same index bytes.
  const coldRefs: ItemRef[] = [];
  const cold = { ...(await rig.context<ResizeParams>('resize', params, { ingest: ing })), items: stageItemCache(path.join(rig.dir, 'cold-cache'), 'resize', coldRefs) };
  assert.equal((await resizeStage.run(cold)).metrics?.['resized'], 28);
  assert.deepEqual(await fs.readFile(path.join(cold.outDir, 'index.json')), await fs.readFile(path.join(ctx.outDir, 'index.json')));

  // A manifest listing one hash twice (ingest collapses duplicates; resize must not count one twice): first line wins.
  const lines = (await fs.readFile(path.join(ing, MANIFEST_FILE), 'utf8')).split('\n').filter((l) => l.length > 0);
  const twice = JSON.stringify({ ...(JSON.parse(lines[5]!) as ManifestEntry), path: '/nowhere/copy.png', labelIndex: 2 });
  const dupDir = path.join(rig.dir, 'dup-ingest');
  await writeTree(dupDir, { [MANIFEST_FILE]: [...lines.slice(0, 9), twice, ...lines.slice(9)].join('\n') + '\n', [CLASSES_FILE]: await fs.readFile(path.join(ing, CLASSES_FILE)) });
  const dupRefs: ItemRef[] = [];
  const dup = await engineContext(rig, params, dupDir, dupRefs);
  assert.deepEqual((await resizeStage.run(dup)).metrics, { images: 28, resized: 0, cache_hits: 28 });
  assert.equal(dupRefs.length, 28);
  assert.deepEqual(await fs.readFile(path.join(dup.outDir, 'index.json')), await fs.readFile(path.join(ctx.outDir, 'index.json')));
});

test('resize under the engine item cache: a new image changed since ingest fails with its path; a cancelled re-run rejects with the reason', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), await classPngs(300, 2, 9000, 6, 5));
  const params = resizeParams({ size: [4, 4] });
  assert.equal((await resizeStage.run(await engineContext(rig, params, await ingestTree(rig, 'src'), []))).metrics?.['resized'], 300);

  // Two new images, one of them rewritten after ingest: the cached 300 are referred, the good new one is
  // decoded, the changed one is reported by path.
  await writeTree(path.join(rig.dir, 'src'), { 'c0/new-a.png': await pngOf(9500, 6, 5), 'c1/new-b.png': await pngOf(9501, 6, 5) });
  const ing = await ingestTree(rig, 'src');
  await fs.writeFile(path.join(rig.dir, 'src', 'c1', 'new-b.png'), await pngOf(9502, 6, 5));
  await assert.rejects(resizeStage.run(await engineContext(rig, params, ing, [])), (e: Error) => {
    assert.match(e.message, /^resize: 1 image\(s\) accepted by ingest could not be resized:/);
    assert.ok(e.message.includes(`${path.join(rig.dir, 'src', 'c1', 'new-b.png')}: unreadable (file changed since ingest ran`), e.message);
    return true;
  });

  const ac = new AbortController();
  ac.abort(new Error('cancelled by test'));
  await assert.rejects(resizeStage.run({ ...(await engineContext(rig, params, ing, [])), signal: ac.signal }), /cancelled by test/);
});

test('resize progress counts each image once and ends at the total, with or without refer', async () => {
  await using rig = await stageRig();
  await writeTree(path.join(rig.dir, 'src'), await classPngs(140, 2, 11000, 6, 5));
  const ing = await ingestTree(rig, 'src');
  const params = resizeParams({ size: [4, 4] });
  const runs: [string, () => Promise<StageContext<ResizeParams>>][] = [
    ['link, cold', () => rig.context<ResizeParams>('resize', params, { ingest: ing })],
    ['link, cached', () => rig.context<ResizeParams>('resize', params, { ingest: ing })],
    ['refer, cached', () => engineContext(rig, params, ing, [])],
  ];
  for (const [name, make] of runs) {
    const seen: [number, number][] = [];
    const ctx = { ...(await make()), log: { info() {}, warn() {}, progress: (done: number, total: number) => void seen.push([done, total]) } };
    await resizeStage.run(ctx);
    assert.ok(seen.length > 0, name);
    assert.ok(seen.every(([d, t]) => t === 140 && d >= 0 && d <= t), `${name}: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen.at(-1), [140, 140], name);
    assert.ok(seen.every(([d], i) => i === 0 || d >= seen[i - 1]![0]), `${name}: never goes back: ${JSON.stringify(seen)}`);
  }
});
