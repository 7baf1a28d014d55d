/**
 * Train stage options on a head-only model over a hand-written features
 * directory (separable 4-d features, 3 classes): early stopping with
 * patience, steps_per_epoch drawing past one pass, balanced class weights,
 * sgd/rmsprop with schedules, and a clear error for an unknown class in
 * class_weight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig, type StageRig } from '../helpers/stage-context.js';
import { initBackend } from '../../stages/ml/backend.js';
import { buildHead } from '../../stages/ml/head.js';
import { HEAD_DIR, MODEL_SPEC_FORMAT, saveModel, writeSpec } from '../../stages/ml/model-io.js';
import { featureFile, labelFile, FEATURES_INDEX, mulberry32 } from '../../stages/ml/dataset.js';
import { trainStage, TRAIN_DEFAULTS, type TrainParams } from '../../stages/train.js';
import type { EpochRecord } from '../../stages/ml/checkpoint.js';

const CLASSES = ['x', 'y', 'z'];

async function fixture(rig: StageRig): Promise<{ model: string; features: string }> {
  const r = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
  assert.ok(r.ok);
  const tf = r.value.tf;
  const model = path.join(rig.dir, 'model');
  await writeSpec(model, {
    format: MODEL_SPEC_FORMAT,
    backbone: 'mobilenet_v2',
    weights: 'bundled',
    weightsHash: 'test',
    preprocessing: 'unit',
    inputSize: [224, 224],
    channels: 3,
    classes: CLASSES,
    pooling: 'avg',
    featureDim: 4,
    head: [{ type: 'dense', units: 8 }],
    freeze: true,
    backboneSaved: false,
    seed: 0,
  });
  await saveModel(tf, buildHead(tf, 4, 3, [{ type: 'dense', units: 8 }], 0), path.join(model, HEAD_DIR));
  const features = path.join(rig.dir, 'features');
  await fs.mkdir(features, { recursive: true });
  const rnd = mulberry32(3);
  const splits: Record<string, { count: number; ids: string[] }> = {};
  // Imbalanced train split: 60 x, 20 y, 10 z; class k has feature k near 3.
  const counts = { train: [60, 20, 10], validation: [6, 6, 6], test: [0, 0, 0] };
  for (const [split, per] of Object.entries(counts)) {
    const labels: number[] = [];
    per.forEach((n, k) => labels.push(...new Array<number>(n).fill(k)));
    const data = new Float32Array(labels.length * 4);
    labels.forEach((k, i) => {
      for (let j = 0; j < 4; j++) data[i * 4 + j] = (j === k ? 3 : 0) + rnd() - 0.5;
    });
    await fs.writeFile(path.join(features, featureFile(split as 'train')), Buffer.from(data.buffer));
    await fs.writeFile(path.join(features, labelFile(split as 'train')), Buffer.from(Int32Array.from(labels).buffer));
    splits[split] = { count: labels.length, ids: labels.map((_, i) => `${split}-${i}`) };
  }
  await fs.writeFile(path.join(features, FEATURES_INDEX), JSON.stringify({ format: 'pipeline.features/v1', dim: 4, classes: CLASSES, splits, source: {} }));
  return { model, features };
}

async function train(rig: StageRig, f: { model: string; features: string }, p: Partial<TrainParams>) {
  const ctx = await rig.context('train', { ...TRAIN_DEFAULTS, batch_size: 16, ...p }, { 'build-model': f.model, features: f.features });
  const r = await trainStage.run(ctx);
  const h = (await fs.readFile(path.join(ctx.outDir, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as EpochRecord);
  return { r, h, ctx };
}

test('train options: early stopping, steps_per_epoch, class weights, optimizers, schedules', async () => {
  await using rig = await stageRig();
  const f = await fixture(rig);

  // Adam learns the separable problem.
  const a = await train(rig, f, { epochs: 8, lr: 0.05 });
  assert.ok(a.r.metrics!['val_accuracy']! >= 0.9, `val_accuracy ${a.r.metrics!['val_accuracy']}`);

  // A vanishing learning rate never improves val_loss by min_delta: patience 2 stops after 3 epochs.
  const es = await train(rig, f, { epochs: 10, lr: 1e-9, early_stopping: { monitor: 'val_loss', patience: 2, restore_best: true, min_delta: 0.01 } });
  assert.equal(es.h.length, 3);
  assert.ok(es.ctx.log.infos.some((m) => m.includes('(early stop)')));

  // steps_per_epoch: 9 batches of 16 = 144 samples per epoch from a 90-sample split (the seed's 200-step epochs).
  const st = await train(rig, f, { epochs: 1, steps_per_epoch: 9 });
  assert.ok(st.ctx.log.infos.some((m) => /^epoch 1\/1:/.test(m)));
  assert.equal(Math.round(st.h[0]!.samples_per_s * st.h[0]!.seconds), 144);

  // sgd with momentum and a step schedule; rmsprop with cosine; balanced class weights.
  const sgd = await train(rig, f, { epochs: 3, optimizer: 'sgd', lr: 0.1, lr_schedule: { type: 'step', gamma: 0.5, step_size: 1, min_lr: 0 }, class_weight: 'balanced' });
  assert.deepEqual(sgd.h.map((r) => r.lr), [0.1, 0.05, 0.025]);
  const rms = await train(rig, f, { epochs: 2, optimizer: 'rmsprop', lr: 0.01, lr_schedule: { type: 'cosine', gamma: 0.1, step_size: 1, min_lr: 0 } });
  assert.deepEqual(rms.h.map((r) => r.lr), [0.01, 0.005]);

  await assert.rejects(train(rig, f, { epochs: 1, class_weight: { x: 1, w: 2 } }), /class_weight names unknown class 'w'/);
});

test('cosine schedule: the trainer lowers the rate every step (value at the fractional epoch), not once per epoch', async () => {
  const r = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
  assert.ok(r.ok);
  const tf = r.value.tf;
  const { runPhase } = await import('../../stages/ml/trainer.js');
  const { lrAt } = await import('../../stages/ml/optimizers.js');
  const schedule = { type: 'cosine' as const, gamma: 0.1, step_size: 1, min_lr: 0.001 };
  const rnd = mulberry32(5);
  const data = Float32Array.from({ length: 32 * 4 }, () => rnd());
  const set = {
    size: 32,
    labels: Int32Array.from({ length: 32 }, (_, i) => i % 3),
    sampleLength: 4,
    gather: (idx: ArrayLike<number>) => Float32Array.from({ length: idx.length * 4 }, (_, k) => data[idx[Math.floor(k / 4)]! * 4 + (k % 4)]!),
  };
  const optimizer = tf.train.sgd(0.1);
  const seen: number[] = [];
  await runPhase(
    tf,
    { kind: 'head', index: 0, model: buildHead(tf, 4, 3, [], 0), train: set, toInput: (b, n) => tf.tensor2d(b, [n, 4]), epochs: 2, lr: 0.1, optimizer },
    { batchSize: 8, lrSchedule: schedule, earlyStopping: { monitor: 'loss', patience: 0, restore_best: false, min_delta: 0 }, labelSmoothing: 0, numClasses: 3, seed: 0 },
    { phase: 0, nextEpoch: 0, history: [], sinceBest: 0, stopped: false },
    {
      signal: new AbortController().signal,
      progress: () => seen.push((optimizer as unknown as { learningRate: number }).learningRate),
      info: () => undefined,
      onEpoch: async () => undefined,
    },
  );
  const want = [0, 1].flatMap((e) => [0, 1, 2, 3].map((s) => lrAt(0.1, schedule, e + s / 4, 2)));
  assert.equal(seen.length, 8);
  seen.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-12, `step ${i}: ${v} vs ${want[i]}`));
  assert.ok(seen[7]! < seen[4]! && seen[4]! < seen[3]!, 'decreasing within and across epochs');
  optimizer.dispose();
});
