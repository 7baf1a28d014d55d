/**
 * build-model's `fine_tune` phase, end to end on real Fashion-MNIST pixels with
 * a small pretrained CNN backbone (the registry's simple_cnn, its weights
 * given as a Keras .h5 file written here; build-model → features → train): the head trains on
 * cached features first, then the backbone is unfrozen from `from_layer` and
 * trained with the head at the lower learning rate. Checked: the phase order
 * and learning rates in history.jsonl and TensorBoard, that exactly the layers
 * from `from_layer` on changed their weights (earlier ones, BatchNorm moving
 * statistics included, are bit-identical), and that an unknown `from_layer`
 * fails in build-model, before any training.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { fmnistShards } from './fmnist-shards.js';
import { buildModelStage, BUILD_MODEL_DEFAULTS } from '../../stages/build-model.js';
import { featuresStage, FEATURES_DEFAULTS } from '../../stages/features.js';
import { trainStage, TRAIN_DEFAULTS } from '../../stages/train.js';
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
  const weights = new Map<string, number[][]>();
  for (const l of r.value.model.layers) if (l.weights.length > 0) weights.set(l.name, await Promise.all(l.weights.map(async (w) => Array.from(await w.read().data()))));
  r.value.model.dispose();
  return { file, weights };
}

/** Layer name → its weights' values (in layer.weights order). */
async function layerWeights(tf: Tf, dir: string): Promise<Map<string, number[][]>> {
  const m = await loadModel(tf, dir);
  const out = new Map<string, number[][]>();
  for (const l of m.layers) if (l.weights.length > 0) out.set(l.name, await Promise.all(l.weights.map(async (w) => Array.from(await w.read().data()))));
  m.dispose();
  return out;
}

test('fine_tune: head phase on features, then layers from from_layer train at the lower lr; earlier layers unchanged', async () => {
  await using rig = await stageRig();
  const be = await initBackend({ device: 'auto' });
  assert.ok(be.ok);
  const tf = be.value.tf as unknown as Tf;
  const d = await fmnistShards(rig.dir, { train: 192, validation: 64, test: 0 });
  const pre = await pretrained(tf, rig.dir);
  const bm = await rig.context(
    'build-model',
    { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, weights: pre.file, head: [{ type: 'dense' as const, units: 32 }], fine_tune: { from_layer: FROM, lr: 0.0005, epochs: 2 } },
    { resize: d.resize },
  );
  await buildModelStage.run(bm);
  const spec = await readSpec(bm.outDir);
  assert.deepEqual(spec.fineTune, { fromLayer: FROM, lr: 0.0005, epochs: 2 });
  const fe = await rig.context('features', FEATURES_DEFAULTS, { 'build-model': bm.outDir, resize: d.resize, partition: d.partition });
  await featuresStage.run(fe);
  const tr = await rig.context('train', { ...TRAIN_DEFAULTS, epochs: 2, batch_size: 32, lr: 0.01 }, { 'build-model': bm.outDir, features: fe.outDir, resize: d.resize, partition: d.partition });
  const r = await trainStage.run(tr);
  assert.equal(r.metrics!['epochs'], 4);

  // Both phases logged, in order, with their learning rates and validation metrics.
  const history = (await fs.readFile(path.join(tr.outDir, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord);
  assert.deepEqual(
    history.map((h) => [h.phase, h.epoch, h.lr]),
    [
      ['head', 1, 0.01],
      ['head', 2, 0.01],
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
  assert.deepEqual(changed, order.slice(from), 'exactly the layers from from_layer on changed');
  // Every weight of a fine-tuned conv changed, not just a few.
  const k0 = before.get(FROM)![0]!;
  const k1 = after.get(FROM)![0]!;
  assert.ok(k0.filter((v, i) => v !== k1[i]).length > 0.9 * k0.length);
  // The head changed from its initial weights.
  const h0 = await layerWeights(tf, path.join(bm.outDir, HEAD_DIR));
  const h1 = await layerWeights(tf, path.join(tr.outDir, HEAD_DIR));
  for (const [name, ws] of h0) assert.ok(ws[0]!.some((v, i) => v !== h1.get(name)![0]![i]), `head layer ${name} trained`);
});

test('fine_tune: an unknown from_layer fails in build-model, naming the layers it could be', async () => {
  await using rig = await stageRig();
  const d = await fmnistShards(rig.dir, { train: 8, validation: 0, test: 0 });
  const bm = await rig.context('build-model', { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, head: [], fine_tune: { from_layer: 'block9_conv', lr: 0.0001, epochs: 1 } }, { resize: d.resize });
  await assert.rejects(buildModelStage.run(bm), /fine_tune\.from_layer 'block9_conv' is not a layer of simple_cnn .*block2_1_conv/);
});
