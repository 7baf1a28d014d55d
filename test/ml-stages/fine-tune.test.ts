/**
 * build-model's `fine_tune` phase, end to end on real Fashion-MNIST pixels with
 * a small pretrained CNN backbone (the registry's simple_cnn, its weights
 * given as a Keras .h5 file written here; build-model → features → train): the head trains on
 * cached features first, then the backbone is unfrozen from `from_layer` and
 * trained with the head at the lower learning rate. Checked: the phase order
 * and learning rates in history.jsonl and TensorBoard, that exactly the layers
 * from `from_layer` on changed their weights (earlier ones, BatchNorm moving
 * statistics included, are bit-identical), and that an unknown `from_layer`
 * fails in build-model, before any training; and a kill -9 inside the
 * fine-tune phase resumes inside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stageRig, type StageRig } from '../helpers/stage-context.js';
import { fmnistShards } from './fmnist-shards.js';
import { buildModelStage, BUILD_MODEL_DEFAULTS, type BuildModelParams } from '../../stages/build-model.js';
import { featuresStage, FEATURES_DEFAULTS } from '../../stages/features.js';
import { resumeKey, trainStage, TRAIN_DEFAULTS, type TrainParams } from '../../stages/train.js';
import { initBackend } from '../../stages/ml/backend.js';
import { BACKBONE_DIR, HEAD_DIR, loadModel, readSpec } from '../../stages/ml/model-io.js';
import type { EpochRecord } from '../../stages/ml/checkpoint.js';
import type { Tf } from '../../stages/ml/backbones/spec.js';
import { onlyEventFile, readEvents } from './tfevents-decoder.js';
import { writeKerasLayout } from '../ml-weights/fixtures.js';
import { loadBackbone } from '../../stages/ml/backbones/registry.js';

const FROM = 'block2_1_conv';

/** A "pretrained" simple_cnn (28x28x1): seeded random weights saved in the Keras .h5 layout. Returns the file and its weights. */
async function pretrained(tf: Tf, dir: string): Promise<{ file: string; weights: Map<string, number[][]> }> {
  const r = await loadBackbone(tf, 'simple_cnn', { weights: 'none', inputSize: [28, 28], channels: 1, cacheDir: dir, seed: 11 });
  assert.ok(r.ok);
  const file = path.join(dir, 'simple_cnn.h5');
  writeKerasLayout(r.value.model, file);
  const weights = await weightsOf(r.value.model);
  r.value.model.dispose();
  return { file, weights };
}

/** Layer name → its weights' values (in layer.weights order), for the layers that have weights. */
async function weightsOf(m: Awaited<ReturnType<typeof loadModel>>): Promise<Map<string, number[][]>> {
  const out = new Map<string, number[][]>();
  for (const l of m.layers) if (l.weights.length > 0) out.set(l.name, await Promise.all(l.weights.map(async (w) => Array.from(await w.read().data()))));
  return out;
}

/** {@link weightsOf} the model saved in `dir`. */
async function layerWeights(tf: Tf, dir: string): Promise<Map<string, number[][]>> {
  const m = await loadModel(tf, dir);
  const out = await weightsOf(m);
  m.dispose();
  return out;
}

/** The epochs of a train output's history.jsonl. */
async function readHistory(dir: string): Promise<EpochRecord[]> {
  return (await fs.readFile(path.join(dir, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord);
}

/**
 * Fashion-MNIST shards of `counts`, the pretrained simple_cnn, and a build-model output with it, a dense head of
 * `units` and `fineTune`.
 */
async function fineTuneModel(rig: StageRig, counts: { train: number; validation: number }, units: number, fineTune: NonNullable<BuildModelParams['fine_tune']>) {
  const be = await initBackend({ device: 'auto' });
  assert.ok(be.ok);
  const tf = be.value.tf as unknown as Tf;
  const d = await fmnistShards(rig.dir, { ...counts, test: 0 });
  const pre = await pretrained(tf, rig.dir);
  const bm = await rig.context('build-model', { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, weights: pre.file, head: [{ type: 'dense' as const, units }], fine_tune: fineTune }, { resize: d.resize });
  await buildModelStage.run(bm);
  return { tf, d, pre, bm };
}

// With features: the default `batchnorm: frozen`; on pixels: `batchnorm: train`.
for (const withFeatures of [true, false]) {
test(`fine_tune (${withFeatures ? 'head phase on cached features' : 'head phase on pixels, frozen backbone'}): then only layers from from_layer train, at the lower lr`, async () => {
  await using rig = await stageRig();
  const { tf, d, pre, bm } = await fineTuneModel(rig, { train: 192, validation: 64 }, 32, { from_layer: FROM, lr: 0.0005, epochs: 2, ...(withFeatures ? {} : { batchnorm: 'train' as const }) });
  const spec = await readSpec(bm.outDir);
  assert.deepEqual(spec.fineTune, { fromLayer: FROM, lr: 0.0005, epochs: 2, batchnorm: withFeatures ? 'frozen' : 'train' });
  const inputs: Record<string, string> = { 'build-model': bm.outDir, resize: d.resize, partition: d.partition };
  if (withFeatures) {
    const fe = await rig.context('features', FEATURES_DEFAULTS, { 'build-model': bm.outDir, resize: d.resize, partition: d.partition });
    await featuresStage.run(fe);
    inputs['features'] = fe.outDir;
  }
  const tr = await rig.context('train', { ...TRAIN_DEFAULTS, epochs: 2, batch_size: 32, lr: 0.01 }, inputs);
  const r = await trainStage.run(tr);
  assert.equal(r.metrics!['epochs'], 4);
  assert.deepEqual(tr.log.warnings, []);

  // Both phases logged, in order, with their learning rates and validation metrics.
  const phase0 = withFeatures ? 'head' : 'full';
  const history = await readHistory(tr.outDir);
  assert.deepEqual(
    history.map((h) => [h.phase, h.epoch, h.lr]),
    [
      [phase0, 1, 0.01],
      [phase0, 2, 0.01],
      ['fine_tune', 1, 0.0005],
      ['fine_tune', 2, 0.0005],
    ],
  );
  for (const h of history) assert.ok(Number.isFinite(h.loss) && h.val_loss !== undefined && Number.isFinite(h.val_loss), JSON.stringify(h));
  assert.equal(tr.log.infos.filter((m) => /^epoch \d\/2:/.test(m)).length, 4);
  const tb = readEvents(await fs.readFile(await onlyEventFile(path.join(tr.outDir, 'tensorboard', 'train'))));
  assert.deepEqual(
    tb.slice(1).map((e) => [e.step, e.values['lr']]),
    [
      [1, Math.fround(0.01)],
      [2, Math.fround(0.01)],
      [3, Math.fround(0.0005)],
      [4, Math.fround(0.0005)],
    ],
  );

  // Weights: the backbone before (the .h5; the head phase never touches it) and after.
  assert.equal(spec.backboneSaved, false, 'build-model keeps pretrained weights in the .h5, not in backbone/');
  const out = await readSpec(tr.outDir);
  assert.equal(out.backboneSaved, true, 'train saves the fine-tuned backbone');
  const before = pre.weights;
  const after = await layerWeights(tf, path.join(tr.outDir, BACKBONE_DIR));
  const order = [...before.keys()];
  assert.deepEqual([...after.keys()], order);
  const from = order.indexOf(FROM);
  assert.ok(from > 0, `${FROM} in ${order.join(', ')}`);
  const changed = order.filter((name) => before.get(name)!.some((w, i) => w.some((v, k) => v !== after.get(name)![i]![k])));
  const isBn = (name: string): boolean => name.endsWith('_bn');
  assert.ok(order.slice(from).some(isBn));
  assert.deepEqual(changed, withFeatures ? order.slice(from).filter((n) => !isBn(n)) : order.slice(from), 'exactly the layers from from_layer on changed (BatchNorm only with batchnorm: train)');
  if (withFeatures) {
    // Frozen BatchNorm keeps the features the head learnt: the fine-tune phase continues, it does not start over.
    assert.ok(history[2]!.loss < 1.2 * history[1]!.loss, `fine-tune epoch 1 loss ${history[2]!.loss} vs head phase ${history[1]!.loss}`);
  }
  // Every weight of a fine-tuned conv changed, not just a few.
  const k0 = before.get(FROM)![0]!;
  const k1 = after.get(FROM)![0]!;
  assert.ok(k0.filter((v, i) => v !== k1[i]).length > 0.9 * k0.length);
  // The head changed from its initial weights.
  const h0 = await layerWeights(tf, path.join(bm.outDir, HEAD_DIR));
  const h1 = await layerWeights(tf, path.join(tr.outDir, HEAD_DIR));
  for (const [name, ws] of h0) assert.ok(ws[0]!.some((v, i) => v !== h1.get(name)![0]![i]), `head layer ${name} trained`);
});
}

test('fine_tune: an unknown from_layer fails in build-model, naming the layers it could be', async () => {
  await using rig = await stageRig();
  const d = await fmnistShards(rig.dir, { train: 8, validation: 0, test: 0 });
  const bm = await rig.context('build-model', { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, head: [], fine_tune: { from_layer: 'block9_conv', lr: 0.0001, epochs: 1 } }, { resize: d.resize });
  await assert.rejects(buildModelStage.run(bm), /fine_tune\.from_layer 'block9_conv' is not a layer of simple_cnn .*block2_1_conv/);
});

test('fine_tune: killed (-9) during the fine-tune phase, the rerun resumes inside it and ends like an uninterrupted run', async () => {
  await using rig = await stageRig();
  const { tf, d, pre, bm } = await fineTuneModel(rig, { train: 128, validation: 32 }, 16, { from_layer: FROM, lr: 0.0005, epochs: 3 });
  const params: TrainParams = { ...TRAIN_DEFAULTS, epochs: 1, batch_size: 32, lr: 0.01 };
  const inputs = { 'build-model': bm.outDir, resize: d.resize, partition: d.partition };
  const cacheDir = path.join(rig.dir, 'cache-resume');
  const last = path.join(cacheDir, 'train-resume', resumeKey(trainStage.version, params, 0, inputs), 'last', 'checkpoint.json');
  const childJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'train-child.js');
  const outA = path.join(rig.dir, 'attempt-1');
  await fs.mkdir(outA, { recursive: true });
  const child = spawn(process.execPath, [childJs, JSON.stringify({ params, inputs, outDir: outA, cacheDir, workspace: rig.dir, seed: 0 })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const phaseOf = async (): Promise<number | undefined> => {
    try {
      return (JSON.parse(await fs.readFile(last, 'utf8')) as { state: { phase: number } }).state.phase;
    } catch {
      return undefined; // not written yet (or being renamed into place)
    }
  };
  // Kill once the first fine-tune epoch (phase 1) is checkpointed.
  while ((await phaseOf()) !== 1) {
    if (child.exitCode !== null) assert.fail(`child exited early: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
  assert.doesNotMatch(out, /^done$/m);
  const saved = JSON.parse(await fs.readFile(last, 'utf8')) as { state: { phase: number; nextEpoch: number } };
  assert.ok(saved.state.nextEpoch >= 1 && saved.state.nextEpoch < 3, `killed after fine-tune epoch ${saved.state.nextEpoch}`);

  const tr = await rig.context('train', params, inputs);
  await trainStage.run({ ...tr, cacheDir });
  assert.ok(tr.log.infos.some((m) => m.startsWith('resuming from') && m.includes(`phase 2, epoch ${saved.state.nextEpoch + 1}`)), tr.log.infos.join('\n'));
  assert.equal(tr.log.infos.filter((m) => /^epoch \d\/\d:/.test(m)).length, 3 - saved.state.nextEpoch, 'only the remaining fine-tune epochs ran');
  const resumed = await readHistory(tr.outDir);
  assert.deepEqual(resumed.map((h) => [h.phase, h.epoch]), [['full', 1], ['fine_tune', 1], ['fine_tune', 2], ['fine_tune', 3]]);

  const ref = await rig.context('train', params, inputs);
  await trainStage.run({ ...ref, cacheDir: path.join(rig.dir, 'cache-ref') });
  const full = await readHistory(ref.outDir);
  resumed.forEach((h, i) => assert.ok(Math.abs(h.loss - full[i]!.loss) < 1e-3 * full[i]!.loss, `epoch ${i + 1}: loss ${h.loss} vs ${full[i]!.loss}`));
  // The resumed model: earlier layers still the pretrained ones; the fine-tuned ones close to the uninterrupted run's.
  const a = await layerWeights(tf, path.join(tr.outDir, BACKBONE_DIR));
  const b = await layerWeights(tf, path.join(ref.outDir, BACKBONE_DIR));
  const order = [...pre.weights.keys()];
  for (const name of order.slice(0, order.indexOf(FROM))) assert.deepEqual(a.get(name), pre.weights.get(name), `${name} unchanged`);
  const k = a.get(FROM)![0]!;
  const kr = b.get(FROM)![0]!;
  const maxDiff = Math.max(...k.map((v, i) => Math.abs(v - kr[i]!)));
  const moved = Math.max(...kr.map((v, i) => Math.abs(v - pre.weights.get(FROM)![0]![i]!)));
  assert.ok(maxDiff < 0.05 * moved, `${FROM}: resumed vs uninterrupted differ by ${maxDiff}, training moved weights by ${moved}`);
});
