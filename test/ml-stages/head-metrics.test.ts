/**
 * Unit tests: the seed's head (shapes, Keras parameter counts), build-model's
 * summary, learning-rate schedules, and classification metrics / evaluate
 * artifacts on a hand-made case with a known confusion matrix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import { initBackend } from '../../stages/ml/backend.js';
import { buildHead, SEED_HEAD } from '../../stages/ml/head.js';
import { paramCounts } from '../../stages/ml/backbones/registry.js';
import { modelSummary } from '../../stages/build-model.js';
import { classificationReport } from '../../stages/ml/metrics.js';
import { lrAt } from '../../stages/ml/optimizers.js';
import { writeEvaluation } from '../../stages/evaluate.js';

async function tf(): Promise<typeof tfjs> {
  const r = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
  assert.ok(r.ok);
  return r.value.tf;
}

test("the seed's head on 1280-d features for 5 classes: shapes and Keras parameter counts", async () => {
  const t = await tf();
  const head = buildHead(t, 1280, 5, SEED_HEAD, 0);
  assert.deepEqual(head.outputs[0]!.shape, [null, 5]);
  assert.deepEqual(
    head.layers.map((l) => l.getClassName()),
    ['InputLayer', 'BatchNormalization', 'Dropout', 'Dense', 'BatchNormalization', 'Dropout', 'Dense'],
  );
  // BN(1280): 2x1280 trainable + 2x1280 moving; Dense 1280*128+128; BN(128): 256 + 256; Dense 128*5+5.
  assert.deepEqual(paramCounts(head), { total: 5120 + 163968 + 512 + 645, trainable: 2560 + 163968 + 256 + 645, nonTrainable: 2560 + 256 });
  const summary = modelSummary(head, 'head');
  assert.match(summary, /Total params: 170,245/);
  assert.match(summary, /Trainable params: 167,429/);
  assert.match(summary, /Non-trainable params: 2,816/);
  const p = head.predict(t.ones([2, 1280])) as tfjs.Tensor;
  const rows = p.arraySync() as number[][];
  for (const r of rows) assert.ok(Math.abs(r.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'softmax rows sum to 1');
});

test('learning-rate schedules', () => {
  const s = { gamma: 0.5, step_size: 2, min_lr: 0.1 };
  assert.equal(lrAt(1, { ...s, type: 'none' }, 5, 10), 1);
  assert.deepEqual([0, 1, 2, 3, 4].map((e) => lrAt(1, { ...s, type: 'step' }, e, 10)), [1, 1, 0.5, 0.5, 0.25]);
  assert.deepEqual([0, 1, 2].map((e) => lrAt(1, { ...s, type: 'exponential' }, e, 10)), [1, 0.5, 0.25]);
  assert.equal(lrAt(1, { ...s, type: 'cosine' }, 0, 4), 1);
  assert.equal(lrAt(1, { ...s, type: 'cosine' }, 2, 4), 0.55);
});

// 3 classes, 6 samples. Predictions (argmax): [0, 1, 1, 2, 2, 0]; labels [0, 0, 1, 2, 2, 1].
const CLASSES = ['a', 'b', 'c'];
const PROBS = new Float32Array([
  0.7, 0.2, 0.1, // true a, pred a
  0.3, 0.6, 0.1, // true a, pred b (a second)
  0.1, 0.8, 0.1, // true b, pred b
  0.1, 0.2, 0.7, // true c, pred c
  0.2, 0.1, 0.7, // true c, pred c
  0.5, 0.1, 0.4, // true b, pred a (b third)
]);
const LABELS = new Int32Array([0, 0, 1, 2, 2, 1]);

test('classification report on a hand-made case', () => {
  const r = classificationReport(PROBS, LABELS, CLASSES, [1, 2, 3, 5]);
  assert.deepEqual(r.confusion, [
    [1, 1, 0],
    [1, 1, 0],
    [0, 0, 2],
  ]);
  assert.equal(r.accuracy, 4 / 6);
  assert.deepEqual(r.topK, { '1': 4 / 6, '2': 5 / 6, '3': 1 });
  assert.deepEqual(
    r.perClass.map((c) => [c.name, c.precision, c.recall, c.f1, c.support]),
    [
      ['a', 0.5, 0.5, 0.5, 2],
      ['b', 0.5, 0.5, 0.5, 2],
      ['c', 1, 1, 1, 2],
    ],
  );
  assert.ok(Math.abs(r.macro.f1 - 2 / 3) < 1e-12);
  assert.ok(Math.abs(r.weighted.f1 - 2 / 3) < 1e-12);
  const expectedLoss = -(Math.log(0.7) + Math.log(0.3) + Math.log(0.8) + Math.log(0.7) + Math.log(0.7) + Math.log(0.1)) / 6;
  assert.ok(Math.abs(r.loss - expectedLoss) < 1e-6);
});

test('evaluate artifacts for the hand-made case: confusion JSON/SVG/PNG, gallery, metrics', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'eval-'));
  try {
    const r = classificationReport(PROBS, LABELS, CLASSES, [1, 3]);
    const ids = ['i0', 'i1', 'i2', 'i3', 'i4', 'i5'];
    const m = await writeEvaluation(dir, r, CLASSES, PROBS, LABELS, ids, undefined, 10);
    assert.equal(m['accuracy'], 4 / 6);
    assert.equal(m['top3'], 1);
    const cj = JSON.parse(await fs.readFile(path.join(dir, 'confusion.json'), 'utf8')) as { matrix: number[][] };
    assert.deepEqual(cj.matrix, r.confusion);
    const svg = await fs.readFile(path.join(dir, 'confusion.svg'), 'utf8');
    assert.match(svg, /^<svg /);
    const png = await fs.readFile(path.join(dir, 'confusion.png'));
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    const html = await fs.readFile(path.join(dir, 'misclassified.html'), 'utf8');
    assert.match(html, /2 of 2 misclassified/);
    assert.match(html, /true: a/);
    assert.match(html, /true: b/);
    assert.match(await fs.readFile(path.join(dir, 'report.txt'), 'utf8'), /macro avg\s+0\.6667/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
