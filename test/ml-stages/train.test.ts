/**
 * The train stage on real Fashion-MNIST images with real tfjs (wasm):
 * clearly-above-chance test accuracy from a few hundred images; identical
 * results for the same seed; and resume after kill -9 of a child process
 * running the stage: the rerun starts at the next epoch and ends with the
 * same history as an uninterrupted run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stageRig, type StageRig } from '../helpers/stage-context.js';
import { fmnistShards } from './fmnist-shards.js';
import { buildModelStage, BUILD_MODEL_DEFAULTS } from '../../stages/build-model.js';
import { trainStage, TRAIN_DEFAULTS, resumeKey, type TrainParams } from '../../stages/train.js';
import { evaluateStage, EVALUATE_DEFAULTS } from '../../stages/evaluate.js';
import type { EpochRecord } from '../../stages/ml/checkpoint.js';
import { onlyEventFile, readEvents } from './tfevents-decoder.js';

const SMALL_CNN = { filters: [16, 32], convs_per_block: 1, dropout: 0.1 };
const HEAD = [{ type: 'dense' as const, units: 64 }];

async function built(rig: StageRig, resize: string, seed = 0): Promise<string> {
  const bm = await rig.context('build-model', { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, cnn: SMALL_CNN, head: HEAD }, { resize }, seed);
  await buildModelStage.run(bm);
  return bm.outDir;
}

async function history(dir: string): Promise<EpochRecord[]> {
  return (await fs.readFile(path.join(dir, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord);
}

test('train on 600 real Fashion-MNIST images: test accuracy clearly above chance (> 0.5 on 10 classes)', async () => {
  await using rig = await stageRig();
  const d = await fmnistShards(rig.dir, { train: 600, validation: 100, test: 300 });
  const model = await built(rig, d.resize);
  const tr = await rig.context('train', { ...TRAIN_DEFAULTS, epochs: 3, batch_size: 32, lr: 0.003 }, { 'build-model': model, resize: d.resize, partition: d.partition });
  const r = await trainStage.run(tr);
  assert.equal(r.backend?.name, 'wasm');
  assert.equal(r.metrics!['epochs'], 3);
  assert.ok(tr.log.progressCalls > 0);
  const h = await history(tr.outDir);
  assert.equal(h.length, 3);
  assert.ok(h[2]!.loss < h[0]!.loss, 'loss decreases');
  for (const f of ['spec.json', 'head/model.json', 'backbone/weights.bin', 'best/spec.json', 'checkpoints/epoch-001/checkpoint.json', 'checkpoints/epoch-003/tensors.bin', 'metrics.json']) {
    assert.ok(fss.existsSync(path.join(tr.outDir, f)), f);
  }
  const ckpt = JSON.parse(await fs.readFile(path.join(tr.outDir, 'checkpoints/epoch-002/checkpoint.json'), 'utf8')) as { model: unknown[]; optimizer: unknown[] };
  assert.ok(ckpt.model.length > 0);
  assert.deepEqual(ckpt.optimizer, [], 'per-epoch checkpoints hold weights only (the optimizer slots would triple their size)');
  assert.match(r.summary ?? '', /^3 epochs, last acc \d\.\d{4}, val_acc \d\.\d{4}/);
  const ev = await rig.context('evaluate', EVALUATE_DEFAULTS, { train: tr.outDir, partition: d.partition, resize: d.resize });
  const e = await evaluateStage.run(ev);
  assert.equal(e.metrics!['test_samples'], 300);
  assert.ok(e.metrics!['accuracy']! > 0.5, `test accuracy ${e.metrics!['accuracy']}`);
  assert.ok(e.metrics!['top3']! >= e.metrics!['accuracy']!);
  const html = await fs.readFile(path.join(ev.outDir, 'misclassified.html'), 'utf8');
  assert.match(html, /data:image\/png;base64,/);
  assert.ok((await fs.stat(path.join(ev.outDir, 'confusion.png'))).size > 1000);
});

test('same seed, same backend: identical history and weights; another seed differs', async () => {
  await using rig = await stageRig();
  const d = await fmnistShards(rig.dir, { train: 160, validation: 40, test: 0 });
  const run = async (seed: number) => {
    const model = await built(rig, d.resize, seed);
    const tr = await rig.context('train', { ...TRAIN_DEFAULTS, epochs: 2, batch_size: 32 }, { 'build-model': model, resize: d.resize, partition: d.partition }, seed);
    await trainStage.run(tr);
    return { h: await history(tr.outDir), w: await fs.readFile(path.join(tr.outDir, 'head', 'weights.bin')) };
  };
  const a = await run(7);
  const b = await run(7);
  const c = await run(8);
  assert.deepEqual(
    a.h.map((r) => [r.loss, r.accuracy, r.val_loss]),
    b.h.map((r) => [r.loss, r.accuracy, r.val_loss]),
  );
  assert.ok(a.w.equals(b.w), 'identical trained weights');
  assert.ok(!a.w.equals(c.w), 'a different seed gives different weights');
});

test('resume after kill -9: the rerun continues at the next epoch and matches an uninterrupted run', async () => {
  await using rig = await stageRig();
  const d = await fmnistShards(rig.dir, { train: 256, validation: 64, test: 0 });
  const model = await built(rig, d.resize);
  const params: TrainParams = { ...TRAIN_DEFAULTS, epochs: 4, batch_size: 32 };
  const inputs = { 'build-model': model, resize: d.resize, partition: d.partition };
  const cacheDir = path.join(rig.dir, 'cache-resume');
  const key = resumeKey(trainStage.version, params, 0, inputs);
  const last = path.join(cacheDir, 'train-resume', key, 'last', 'checkpoint.json');
  const childJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'train-child.js');
  const outA = path.join(rig.dir, 'attempt-1');
  await fs.mkdir(outA, { recursive: true });
  const child = spawn(process.execPath, [childJs, JSON.stringify({ params, inputs, outDir: outA, cacheDir, workspace: rig.dir, seed: 0 })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Kill as soon as the first epoch's checkpoint exists.
  for (;;) {
    if (fss.existsSync(last)) break;
    if (child.exitCode !== null) assert.fail(`child exited early: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await exited;
  assert.doesNotMatch(out, /done/);
  const saved = JSON.parse(await fs.readFile(last, 'utf8')) as { state: { nextEpoch: number } };
  assert.ok(saved.state.nextEpoch >= 1 && saved.state.nextEpoch < 4, `killed after epoch ${saved.state.nextEpoch}`);

  // Rerun with the same key: resumes.
  const tr = await rig.context('train', params, inputs);
  const ctx = { ...tr, cacheDir };
  await trainStage.run(ctx);
  assert.ok(tr.log.infos.some((m) => m.startsWith(`resuming from`) && m.includes(`epoch ${saved.state.nextEpoch + 1}`)), tr.log.infos.join('\n'));
  const epochsRun = tr.log.infos.filter((m) => /^epoch \d+\/4:/.test(m)).length;
  assert.equal(epochsRun, 4 - saved.state.nextEpoch, 'only the remaining epochs ran');
  const resumed = await history(tr.outDir);
  assert.deepEqual(resumed.map((r) => r.epoch), [1, 2, 3, 4]);
  assert.ok(fss.existsSync(path.join(tr.outDir, 'checkpoints', 'epoch-001', 'checkpoint.json')), 'earlier checkpoints carried over');
  const tb = readEvents(await fs.readFile(await onlyEventFile(path.join(tr.outDir, 'tensorboard', 'train'))));
  assert.deepEqual(
    tb.slice(1).map((e) => [e.step, e.values['loss']]),
    resumed.map((r, i) => [i + 1, Math.fround(r.loss)]),
    'the resumed run logs every epoch to TensorBoard, the killed attempt\'s too',
  );
  assert.ok(!fss.existsSync(path.join(cacheDir, 'train-resume', key)), 'resume state removed after success');

  // Same as an uninterrupted run (fresh cache dir).
  const ref = await rig.context('train', params, inputs);
  await trainStage.run({ ...ref, cacheDir: path.join(rig.dir, 'cache-ref') });
  const full = await history(ref.outDir);
  // Equal up to float rounding (Adam's bias-correction powers are recomputed from the restored step count).
  assert.equal(resumed[0]!.loss, full[0]!.loss, 'epoch 1 is the killed run\'s own record');
  resumed.forEach((r, i) => {
    assert.ok(Math.abs(r.loss - full[i]!.loss) < 1e-3 * full[i]!.loss, `epoch ${i + 1} loss ${r.loss} vs ${full[i]!.loss}`);
    assert.ok(Math.abs(r.val_loss! - full[i]!.val_loss!) < 1e-2 * full[i]!.val_loss!, `epoch ${i + 1} val_loss ${r.val_loss} vs ${full[i]!.val_loss}`);
  });
});

test('trainSummary names the kept best epoch when it is not the last, and says "1 epoch"', async () => {
  const { trainSummary } = await import('../../stages/train.js');
  const rec = (epoch: number, acc: number, val: number): EpochRecord => ({ phase: 'full', epoch, loss: 1, accuracy: acc, val_loss: 1, val_accuracy: val, lr: 0.001, samples_per_s: 100, seconds: 1 });
  const h = [rec(1, 0.5, 0.6), rec(2, 0.7, 0.8), rec(3, 0.8, 0.75)];
  assert.equal(trainSummary(h, h[1], 123.4), '3 epochs, last acc 0.8000, val_acc 0.7500; kept the best epoch 2 (val_acc 0.8000), 123 samples/s');
  assert.equal(trainSummary(h, h[2], 123.4), '3 epochs, last acc 0.8000, val_acc 0.7500, 123 samples/s');
  assert.equal(trainSummary(h.slice(0, 1), undefined, 50), '1 epoch, last acc 0.5000, val_acc 0.6000, 50 samples/s');
  assert.equal(trainSummary([], undefined, 0), 'no epochs run');
});
