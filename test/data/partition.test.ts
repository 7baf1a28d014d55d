import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { stageRig } from '../helpers/stage-context.js';
import { assignSplits, partitionParams, partitionStage, unitOf, type PartitionParams } from '../../stages/partition.js';
import { readPartition, SPLITS, type Split } from '../../stages/lib/splits.js';
import type { ManifestEntry } from '../../stages/lib/manifest.js';

function entry(label: string, id: string, labels: readonly string[], split?: Split): ManifestEntry {
  const sha256 = createHash('sha256').update(id).digest('hex');
  const e: ManifestEntry = { path: `/x/${label}/${id}.png`, rel: `${label}/${id}.png`, sha256, label, labelIndex: labels.indexOf(label), width: 8, height: 8, format: 'png', bytes: 100 };
  return split === undefined ? e : { ...e, split };
}

function dataset(perClass: Record<string, number>, prefix = 'img'): ManifestEntry[] {
  const labels = Object.keys(perClass).sort();
  return labels.flatMap((l) => Array.from({ length: perClass[l]! }, (_, i) => entry(l, `${prefix}-${l}-${i}`, labels)));
}

const defaults = partitionParams({});

test('partition: unitOf is a deterministic uniform number in [0, 1) that depends on the salt', () => {
  const sha = 'ab'.repeat(32);
  assert.equal(unitOf('', sha), unitOf('', sha));
  assert.notEqual(unitOf('', sha), unitOf('x', sha));
  const us = Array.from({ length: 4000 }, (_, i) => unitOf('s', createHash('sha256').update(String(i)).digest('hex')));
  assert.ok(us.every((u) => u >= 0 && u < 1));
  const mean = us.reduce((a, b) => a + b, 0) / us.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
});

test('partition: deterministic; a different salt reshuffles', () => {
  const es = dataset({ a: 300, b: 300 });
  const a = assignSplits(es, defaults);
  const b = assignSplits([...es].reverse(), defaults);
  assert.deepEqual([...a].sort(), [...b].sort());
  const c = assignSplits(es, partitionParams({ salt: 'other' }));
  const moved = es.filter((e) => a.get(e.sha256) !== c.get(e.sha256)).length;
  assert.ok(moved > 100, `only ${moved} moved under a new salt`);
});

test('partition: adding 10% images (or removing 10%) moves no existing image', () => {
  const base = dataset({ a: 200, b: 300, c: 150, d: 50, e: 20 });
  const before = assignSplits(base, defaults);
  const added = [...base, ...dataset({ a: 20, b: 30, c: 15, d: 5, e: 2 }, 'new')];
  const after = assignSplits(added, defaults);
  assert.deepEqual(base.filter((e) => before.get(e.sha256) !== after.get(e.sha256)).map((e) => e.rel), []);
  const removed = base.filter((_, i) => i % 10 !== 3);
  const afterRemoval = assignSplits(removed, defaults);
  assert.deepEqual(removed.filter((e) => before.get(e.sha256) !== afterRemoval.get(e.sha256)).map((e) => e.rel), []);
});

test('partition: stratified — large classes near the ratios, every class with >= 3 images gets each split', () => {
  const es = dataset({ big: 2000, other: 1000 });
  const a = assignSplits(es, defaults);
  for (const label of ['big', 'other']) {
    const mine = es.filter((e) => e.label === label);
    const frac = (s: Split) => mine.filter((e) => a.get(e.sha256) === s).length / mine.length;
    assert.ok(Math.abs(frac('train') - 0.7) < 0.04 && Math.abs(frac('validation') - 0.2) < 0.04 && Math.abs(frac('test') - 0.1) < 0.03, `${label}: ${SPLITS.map(frac)}`);
  }
  for (let salt = 0; salt < 40; salt++) {
    const small = dataset({ three: 3, four: 4, five: 5, ten: 10 }, `s${salt}`);
    const s = assignSplits(small, partitionParams({ salt: String(salt) }));
    for (const label of ['three', 'four', 'five', 'ten']) {
      const got = new Set(small.filter((e) => e.label === label).map((e) => s.get(e.sha256)));
      assert.equal(got.size, 3, `salt ${salt} class ${label}: ${[...got]}`);
    }
  }
  // Without stratify, pure thresholds: some tiny class misses a split for some salt.
  const misses = Array.from({ length: 40 }, (_, salt) => {
    const small = dataset({ three: 3 }, `s${salt}`);
    const s = assignSplits(small, partitionParams({ salt: String(salt), stratify: false }));
    return new Set(small.map((e) => s.get(e.sha256))).size < 3;
  }).filter(Boolean).length;
  assert.ok(misses > 0);
});

test('partition: zero ratios leave a split empty; exact duplicates always land together', () => {
  const es = dataset({ a: 100 });
  const noTest = assignSplits(es, partitionParams({ ratios: [0.8, 0.2, 0] }));
  assert.equal([...noTest.values()].filter((s) => s === 'test').length, 0);
  // Two entries with the same bytes (e.g. from two manifests rows) under one label.
  const labels = ['a'];
  const dupA = entry('a', 'same', labels);
  const dupB = { ...dupA, rel: 'a/copy.png', path: '/x/a/copy.png' };
  for (let salt = 0; salt < 20; salt++) {
    const m = assignSplits([...es, dupA, dupB], partitionParams({ salt: String(salt) }));
    assert.equal(m.get(dupA.sha256), m.get(dupB.sha256));
  }
});

test('partition: predefined splits are honoured; validation is carved from predefined train', () => {
  const labels = ['a', 'b'];
  const es = [
    ...Array.from({ length: 900 }, (_, i) => entry(labels[i % 2]!, `tr${i}`, labels, 'train')),
    ...Array.from({ length: 100 }, (_, i) => entry(labels[i % 2]!, `te${i}`, labels, 'test')),
  ];
  const m = assignSplits(es, defaults);
  for (const e of es.filter((x) => x.split === 'test')) assert.equal(m.get(e.sha256), 'test');
  const fromTrain = es.filter((x) => x.split === 'train').map((x) => m.get(x.sha256));
  assert.equal(fromTrain.filter((s) => s === 'test').length, 0);
  const v = fromTrain.filter((s) => s === 'validation').length / fromTrain.length;
  assert.ok(Math.abs(v - 0.2 / 0.9) < 0.04, `validation fraction ${v}`);
  // With a predefined validation set, train stays train.
  const withVal = [...es, entry('a', 'va', labels, 'validation'), entry('b', 'vb', labels, 'validation')];
  const m2 = assignSplits(withVal, defaults);
  assert.ok(withVal.every((e) => m2.get(e.sha256) === e.split));
});

test('partition stage: writes partition.json, counts.json and the counts.md table', async () => {
  await using rig = await stageRig();
  const ingestDir = path.join(rig.dir, 'ingest-out');
  await fs.mkdir(ingestDir);
  const labels = ['a', 'b'];
  const es = [entry('a', '1', labels, 'train'), entry('a', '2', labels, 'test'), entry('b', '3', labels, 'validation'), entry('b', '4', labels, 'train'), entry('b', '5', labels, 'train')];
  await fs.writeFile(path.join(ingestDir, 'manifest.jsonl'), es.map((e) => JSON.stringify(e) + '\n').join(''));
  await fs.writeFile(path.join(ingestDir, 'classes.json'), JSON.stringify(labels));
  const ctx = await rig.context<PartitionParams>('partition', partitionParams({}), { ingest: ingestDir });
  const r = await partitionStage.run(ctx);
  const p = readPartition(ctx.outDir);
  assert.deepEqual(p.ratios, [0.7, 0.2, 0.1]);
  assert.equal(Object.keys(p.assignments).length, 5);
  for (const e of es) assert.equal(p.assignments[e.sha256], e.split);
  assert.deepEqual(p.counts, { train: { a: 1, b: 2 }, validation: { a: 0, b: 1 }, test: { a: 1, b: 0 } });
  assert.deepEqual(r.metrics, { train: 3, validation: 1, test: 1 });
  assert.equal(
    await fs.readFile(path.join(ctx.outDir, 'counts.md'), 'utf8'),
    ['| class | train | validation | test | total |', '|---|---:|---:|---:|---:|', '| a | 1 | 0 | 1 | 2 |', '| b | 2 | 1 | 0 | 3 |', '| **total** | 3 | 1 | 1 | 5 |', ''].join('\n'),
  );
  assert.ok(ctx.log.warnings.some((w) => w.includes('fewer than 3 images cannot appear in every split: a')));
  await assert.rejects(
    partitionStage.run(await rig.context<PartitionParams>('partition', partitionParams({ ratios: [0, 0.5, 0.5] }), { ingest: ingestDir })),
    /ratios must be three non-negative numbers with train > 0/,
  );
});
