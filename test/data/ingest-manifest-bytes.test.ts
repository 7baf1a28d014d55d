/**
 * manifest.jsonl is one `JSON.stringify` of all entries split into lines
 * (stages/ingest.ts `jsonl`): each line must be exactly
 * `JSON.stringify` of its entry, keys in `ManifestEntry` order, for paths and
 * labels that need escaping (quotes, backslashes, control characters, lone
 * surrogates) or not (non-ASCII letters, an emoji pair, U+2028), with
 * predefined splits on single images and on collapsed duplicates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { ingestStage, ingestParams, type IngestParams } from '../../stages/ingest.js';
import type { ManifestEntry } from '../../stages/lib/manifest.js';
import { pngOf, writeTree } from './fixtures.js';

const KEY_ORDER = ['path', 'rel', 'sha256', 'label', 'labelIndex', 'width', 'height', 'format', 'bytes', 'split'];

/** Checks every line of manifest.jsonl in `dir`; returns the entries. */
async function checkedLines(dir: string, workspace: string, count: number): Promise<ManifestEntry[]> {
  const text = await fs.readFile(path.join(dir, 'manifest.jsonl'), 'utf8');
  assert.ok(text.endsWith('\n'));
  const lines = text.slice(0, -1).split('\n');
  // A raw newline inside a line would split it (JSON escapes it; U+2028 is left as it is and is no line break here).
  assert.equal(lines.length, count);
  return lines.map((line) => {
    const e = JSON.parse(line) as ManifestEntry;
    assert.equal(JSON.stringify(e), line, 'the line is exactly JSON.stringify of what it holds');
    assert.deepEqual(Object.keys(e), KEY_ORDER.filter((k) => k in e));
    assert.equal(e.path, path.join(workspace, e.rel));
    return e;
  });
}

test('ingest: manifest.jsonl lines are JSON.stringify of their entries for file and folder names that need escaping or not', async () => {
  await using rig = await stageRig();
  // Escaped by JSON: quote, backslash, newline, tab, U+0001. Not escaped: é, an emoji (a surrogate pair), U+2028.
  const names = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'tab\there', 'ctl\u0001x', 'accent-é', 'emoji-😀', 'sep\u2028x'];
  const files: Record<string, Buffer> = {};
  for (const [i, n] of names.entries()) files[`src/${names[(i * 4) % names.length]}/${n}.png`] = await pngOf(5000 + i);
  await writeTree(rig.dir, files);
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
  assert.equal((await ingestStage.run(ctx)).metrics?.['images'], names.length);
  const entries = await checkedLines(ctx.outDir, path.join(rig.dir, 'src'), names.length);
  assert.deepEqual(new Set(entries.map((e) => e.label)), new Set(names));
});

test('ingest: manifest.jsonl lines are JSON.stringify of their entries for labels that need escaping (a lone surrogate too), with splits', async () => {
  await using rig = await stageRig();
  const labels = ['cat', 'la"bel', 'back\\', 'nl\nx', 'é', 'lone\ud800x', '😀', 'ctl\u0007'];
  const splits = [undefined, 'train', 'validation', 'test'] as const;
  const files: Record<string, Buffer> = {};
  const rows: string[] = [];
  for (const [i, label] of labels.entries()) {
    files[`imgs/${i}.png`] = await pngOf(6000 + i);
    const split = splits[i % splits.length];
    rows.push(JSON.stringify({ path: `imgs/${i}.png`, label, ...(split === undefined ? {} : { split }) }));
  }
  // Exact duplicates in one class, with different splits: one entry, the most held-out split.
  files['imgs/dup-a.png'] = files['imgs/dup-b.png'] = await pngOf(6100);
  rows.push(JSON.stringify({ path: 'imgs/dup-a.png', label: 'dups', split: 'train' }), JSON.stringify({ path: 'imgs/dup-b.png', label: 'dups', split: 'test' }));
  await writeTree(rig.dir, files);
  await fs.writeFile(path.join(rig.dir, 'list.jsonl'), rows.join('\n') + '\n');

  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ manifest: 'list.jsonl' }));
  const result = await ingestStage.run(ctx);
  assert.equal(result.metrics?.['duplicates'], 1);
  const entries = await checkedLines(ctx.outDir, rig.dir, labels.length + 1);
  assert.deepEqual(new Set(entries.map((e) => e.label)), new Set([...labels, 'dups']));
  const kept = entries.find((e) => e.label === 'dups');
  assert.equal(kept?.rel, 'imgs/dup-a.png');
  assert.equal(kept?.split, 'test', 'a collapsed duplicate takes the most held-out split of its group');
  assert.equal(entries.find((e) => e.label === 'la"bel')?.split, 'train');
  assert.equal(entries.find((e) => e.label === 'cat')?.split, undefined, 'no split: no split key');
});

test('ingest: manifest rows are in code-unit order of rel even where the walk is not (a/x after a-c/y)', async () => {
  await using rig = await stageRig();
  // The walk visits folder 'a' before 'a-c' ('a' < 'a-c'), but '-' sorts before '/': a-c/… < a/….
  await writeTree(path.join(rig.dir, 'src'), { 'a/x.png': await pngOf(7000), 'a-c/y.png': await pngOf(7001), 'a/b/z.png': await pngOf(7002), 'a.b/w.png': await pngOf(7003) });
  const ctx = await rig.context<IngestParams>('ingest', ingestParams({ source: 'src' }));
  await ingestStage.run(ctx);
  const rels = (await checkedLines(ctx.outDir, path.join(rig.dir, 'src'), 4)).map((e) => e.rel);
  assert.deepEqual(rels, ['a-c/y.png', 'a.b/w.png', 'a/b/z.png', 'a/x.png']);
});
