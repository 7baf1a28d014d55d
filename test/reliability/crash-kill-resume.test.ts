/**
 * Regression for a crash-kill finding: training resumed from its checkpoint
 * (after a kill) must end bit-identical to an uninterrupted run. Before the
 * fix, Adam's bias-correction products were recomputed on resume as
 * pow(beta, step + 1), which rounds differently from the running product, so
 * the resumed weights, losses and evaluate's metrics drifted by ~1e-8 and the
 * crash-kill scenario saw outputs differ from the reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { stageRig } from '../helpers/stage-context.js';
import { fmnistShards } from '../ml-stages/fmnist-shards.js';
import { buildModelStage, BUILD_MODEL_DEFAULTS } from '../../stages/build-model.js';
import { trainStage, TRAIN_DEFAULTS, type TrainParams } from '../../stages/train.js';

test('train resumed after an interruption ends bit-identical to an uninterrupted run (Adam state restored exactly)', async () => {
  await using rig = await stageRig();
  const d = await fmnistShards(rig.dir, { train: 32, validation: 16, test: 0 });
  const bm = await rig.context('build-model', { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, cnn: { filters: [8], convs_per_block: 1, dropout: 0.1 }, head: [{ type: 'dense' as const, units: 16 }] }, { resize: d.resize });
  await buildModelStage.run(bm);
  const params: TrainParams = { ...TRAIN_DEFAULTS, optimizer: 'adam', epochs: 3, batch_size: 16 };
  const inputs = { 'build-model': bm.outDir, resize: d.resize, partition: d.partition };
  const result = async (dir: string) => ({
    weights: await fs.readFile(path.join(dir, 'head', 'weights.bin')),
    losses: (await fs.readFile(path.join(dir, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { loss: number; val_loss: number }))
      .map((h) => [h.loss, h.val_loss]),
  });

  const full = await rig.context('train', params, inputs);
  await trainStage.run({ ...full, cacheDir: path.join(rig.dir, 'cache-full') });
  const expected = await result(full.outDir);

  // Interrupt after the first epoch's checkpoint (cancellation takes the same resume path as a kill). 2 steps per
  // epoch: after 2 Adam steps pow(0.999, 3) and 0.999·0.999·0.999 differ in float32.
  const cacheDir = path.join(rig.dir, 'cache-resume');
  const first = await rig.context('train', params, inputs);
  const ac = new AbortController();
  const info = first.log.info;
  const log = { ...first.log, info: (m: string) => (info(m), /^epoch 1\/3:/.test(m) ? ac.abort() : undefined) };
  await assert.rejects(trainStage.run({ ...first, cacheDir, log, signal: ac.signal }), /cancelled; the next run resumes/);

  const second = await rig.context('train', params, inputs);
  await trainStage.run({ ...second, cacheDir });
  assert.ok(second.log.infos.some((m) => /^resuming from .* epoch 2$/.test(m)), second.log.infos.join('\n'));
  const got = await result(second.outDir);
  assert.deepEqual(got.losses, expected.losses, 'every epoch loss identical');
  assert.ok(got.weights.equals(expected.weights), 'trained weights bit-identical');
});
