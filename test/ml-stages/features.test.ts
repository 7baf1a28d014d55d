/**
 * The features stage (bottleneck cache) with the bundled pretrained
 * MobileNetV2 on real Fashion-MNIST PNGs: feature matrices per split with the
 * spec's dimension, and a second run after adding N images computes exactly N
 * vectors (the rest come from the per-item cache). Then the head trains on
 * those features and evaluate scores it from them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { dataStages, SAMPLE_DIR } from './fixtures.js';
import { buildModelStage, BUILD_MODEL_DEFAULTS } from '../../stages/build-model.js';
import { featuresStage, FEATURES_DEFAULTS } from '../../stages/features.js';
import { trainStage, TRAIN_DEFAULTS } from '../../stages/train.js';
import { evaluateStage, EVALUATE_DEFAULTS } from '../../stages/evaluate.js';
import { readFeatures } from '../../stages/ml/dataset.js';

async function copySubset(dst: string, classes: string[], perClass: number, skip = 0): Promise<void> {
  for (const c of classes) {
    const files = (await fs.readdir(path.join(SAMPLE_DIR, c))).sort().slice(skip, skip + perClass);
    await fs.mkdir(path.join(dst, c), { recursive: true });
    for (const f of files) await fs.copyFile(path.join(SAMPLE_DIR, c, f), path.join(dst, c, f));
  }
}

test('features: per-split matrices; adding N images computes only N; head trains on them', async () => {
  await using rig = await stageRig();
  const src = path.join(rig.dir, 'images');
  const classes = ['Bag', 'Sneaker', 'Trouser'];
  await copySubset(src, classes, 8);
  const data1 = await dataStages(rig, { source: src, size: [224, 224], channels: 3, ratios: [0.6, 0.2, 0.2] });
  const bm = await rig.context('build-model', { ...BUILD_MODEL_DEFAULTS, backbone: 'mobilenet_v2' as const, head: [{ type: 'dense' as const, units: 16 }] }, { resize: data1.resize });
  await buildModelStage.run(bm);
  const f1 = await rig.context('features', FEATURES_DEFAULTS, { 'build-model': bm.outDir, resize: data1.resize, partition: data1.partition });
  const r1 = await featuresStage.run(f1);
  assert.equal(r1.metrics!['computed'], 24);
  assert.equal(r1.metrics!['cached'], 0);
  const feats = readFeatures(f1.outDir);
  assert.equal(feats.index.dim, 1280, 'MobileNetV2 out_relu pooled: 1280-d');
  assert.equal(feats.sets.train.size + feats.sets.validation.size + feats.sets.test.size, 24);
  assert.equal(feats.sets.train.data.length, feats.sets.train.size * 1280);
  assert.ok(feats.sets.train.data.some((v) => v !== 0));

  // Add 2 images per class (N = 6): only those are computed.
  await copySubset(src, classes, 2, 8);
  const data2 = await dataStages(rig, { source: src, size: [224, 224], channels: 3, ratios: [0.6, 0.2, 0.2] });
  const f2 = await rig.context('features', FEATURES_DEFAULTS, { 'build-model': bm.outDir, resize: data2.resize, partition: data2.partition });
  const r2 = await featuresStage.run(f2);
  assert.equal(r2.metrics!['computed'], 6);
  assert.equal(r2.metrics!['cached'], 24);
  const feats2 = readFeatures(f2.outDir);
  // A cached vector equals the computed one.
  const id = feats.index.splits.train.ids[0]!;
  const k2 = feats2.sets.train.ids.indexOf(id);
  assert.ok(k2 >= 0);
  assert.deepEqual(Array.from(feats2.sets.train.data.subarray(k2 * 1280, (k2 + 1) * 1280)), Array.from(feats.sets.train.data.subarray(0, 1280)));

  // Head on cached features; evaluate from features.
  const tr = await rig.context('train', { ...TRAIN_DEFAULTS, epochs: 3, batch_size: 8 }, { 'build-model': bm.outDir, features: f2.outDir });
  const rt = await trainStage.run(tr);
  assert.equal(rt.metrics!['epochs'], 3);
  const ev = await rig.context('evaluate', EVALUATE_DEFAULTS, { train: tr.outDir, partition: data2.partition, features: f2.outDir, resize: data2.resize });
  const re = await evaluateStage.run(ev);
  assert.equal(re.metrics!['test_samples'], feats2.sets.test.size);
  assert.ok(re.metrics!['accuracy']! >= 0 && re.metrics!['accuracy']! <= 1);

  // The pretrained features carry the classes: nearest-centroid (leave one out) over all 30 vectors
  // sorts these three visually distinct classes far above chance (1/3). Garbage features (wrong
  // preprocessing, wrong layer, zeros) fail this.
  const loo = nearestCentroidLeaveOneOut(feats2);
  console.log(`# nearest-centroid leave-one-out accuracy: ${loo.toFixed(3)}`);
  assert.ok(loo >= 0.8, `nearest-centroid accuracy ${loo} on pretrained features`);
});

function nearestCentroidLeaveOneOut(f: ReturnType<typeof readFeatures>): number {
  const dim = f.index.dim;
  const rows: { label: number; v: Float32Array }[] = [];
  for (const set of [f.sets.train, f.sets.validation, f.sets.test]) {
    for (let i = 0; i < set.size; i++) rows.push({ label: set.labels[i]!, v: set.data.subarray(i * dim, (i + 1) * dim) });
  }
  const labels = [...new Set(rows.map((r) => r.label))];
  const sums = new Map(labels.map((l) => [l, new Float64Array(dim)]));
  const counts = new Map(labels.map((l) => [l, 0]));
  for (const r of rows) {
    const s = sums.get(r.label)!;
    for (let d = 0; d < dim; d++) s[d]! += r.v[d]!;
    counts.set(r.label, counts.get(r.label)! + 1);
  }
  let right = 0;
  for (const r of rows) {
    let best = -1;
    let bestDist = Infinity;
    for (const l of labels) {
      const n = counts.get(l)! - (l === r.label ? 1 : 0);
      const s = sums.get(l)!;
      let dist = 0;
      for (let d = 0; d < dim; d++) {
        const c = (s[d]! - (l === r.label ? r.v[d]! : 0)) / n;
        dist += (r.v[d]! - c) ** 2;
      }
      if (dist < bestDist) [best, bestDist] = [l, dist];
    }
    if (best === r.label) right++;
  }
  return right / rows.length;
}
