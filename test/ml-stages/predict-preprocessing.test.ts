/**
 * `predict` (stage and `pipeline predict`) resizes a new image exactly as the
 * model's training `resize` stage did: a model trained on 1-channel 28x28
 * pixels made with fit `contain`, kernel `nearest` and a grey background gets a
 * 61x37 RGBA PNG; its probabilities must equal those of the same file passed
 * through the real ingest → resize stages with those params and then the
 * classifier. A control shows the resize defaults would give other pixels and
 * other probabilities, so the comparison can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { stageRig } from '../helpers/stage-context.js';
import { dataStages, sampleImage, TINY_CNN_MODEL } from './fixtures.js';
import { ingestStage, INGEST_DEFAULTS } from '../../stages/ingest.js';
import { resizeImage, resizeStage, RESIZE_DEFAULTS } from '../../stages/resize.js';
import { ShardReader } from '../../stages/lib/shards.js';
import { buildModelStage } from '../../stages/build-model.js';
import { trainStage, TRAIN_DEFAULTS } from '../../stages/train.js';
import { predictStage, PREDICT_DEFAULTS } from '../../stages/predict.js';
import { main as predictMain } from '../../src/cli/predict.js';
import { ExitCode } from '../../src/cli/io.js';
import { initBackend } from '../../stages/ml/backend.js';
import { imageResizeOf, loadClassifier, readSpec } from '../../stages/ml/model-io.js';
import { predictResizeOptions } from '../../stages/ml/predict-core.js';
import type { Tf } from '../../stages/ml/backbones/spec.js';

const RESIZE = { fit: 'contain' as const, kernel: 'nearest' as const, background: '#808080' };

test('predict resizes new images with the training resize params recorded in the model (stage and CLI)', async () => {
  await using rig = await stageRig();
  const d = await dataStages(rig, { resize: RESIZE });
  const bm = await rig.context('build-model', TINY_CNN_MODEL, { resize: d.resize });
  await buildModelStage.run(bm);
  assert.deepEqual(bm.log.warnings, []);
  const tr = await rig.context('train', { ...TRAIN_DEFAULTS, epochs: 1, batch_size: 32 }, { 'build-model': bm.outDir, resize: d.resize, partition: d.partition });
  await trainStage.run(tr);
  const spec = await readSpec(tr.outDir);
  assert.deepEqual(spec.resize, RESIZE, 'train output records the resize params');
  assert.deepEqual([spec.inputSize, spec.channels], [[28, 28], 1]);
  assert.deepEqual((await readSpec(bm.outDir)).resize, RESIZE, 'build-model output records them too');

  // A 61x37 RGBA image with a transparent band: fit, kernel and background all change its pixels.
  const bag = await sampleImage('Bag');
  const img = path.join(rig.dir, 'probe', 'Bag', 'odd.png');
  await fs.mkdir(path.dirname(img), { recursive: true });
  const rgb = await sharp(bag).resize(61, 37, { fit: 'fill' }).toColourspace('srgb').removeAlpha().raw().toBuffer();
  const rgba = Buffer.alloc(61 * 37 * 4);
  for (let i = 0; i < 61 * 37; i++) {
    rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = i % 61 < 12 ? 0 : 255;
  }
  await sharp(rgba, { raw: { width: 61, height: 37, channels: 4 } }).png().toFile(img);

  // Reference: the same file through the real ingest → resize stages with the training params, then the classifier.
  const ing = await rig.context('ingest', { ...INGEST_DEFAULTS, source: path.join(rig.dir, 'probe') } as never);
  await ingestStage.run(ing);
  const rs = await rig.context('resize', { ...RESIZE_DEFAULTS, ...RESIZE, size: [28, 28] as [number, number], channels: 1 as const }, { ingest: ing.outDir });
  await resizeStage.run(rs);
  const stagePixels = new ShardReader(rs.outDir).batch([0]);
  const be = await initBackend({ device: 'auto' });
  assert.ok(be.ok);
  const cl = await loadClassifier(be.value.tf as unknown as Tf, tr.outDir, { cacheDir: rig.cacheDir });
  assert.ok(cl.ok, cl.ok ? '' : cl.error);
  const expected = Array.from(await cl.value.predict(stagePixels, 1));

  // Control: the resize defaults make other pixels, and other probabilities.
  const dflt = await resizeImage(img, { ...predictResizeOptions({ ...spec, resize: undefined }).options });
  assert.ok(dflt.ok);
  assert.notDeepEqual(Array.from(dflt.value), Array.from(stagePixels), 'defaults give different pixels');
  assert.notDeepEqual(Array.from(await cl.value.predict(dflt.value, 1)), expected, 'and different probabilities');
  assert.match(predictResizeOptions({ ...spec, resize: undefined }).note ?? '', /does not record how its training images were resized/);
  assert.equal(predictResizeOptions(spec).note, undefined);
  cl.value.dispose();

  const byClass = (top: { class: string; p: number }[]): number[] => spec.classes.map((c) => top.find((t) => t.class === c)!.p);

  // The predict stage.
  const pr = await rig.context('predict', { ...PREDICT_DEFAULTS, images: ['probe/Bag/odd.png'], top_k: 10 }, { train: tr.outDir });
  await predictStage.run(pr);
  assert.deepEqual(pr.log.warnings, []);
  const out = JSON.parse(await fs.readFile(path.join(pr.outDir, 'predictions.json'), 'utf8')) as { predictions: { top: { class: string; p: number }[] }[] };
  assert.deepEqual(byClass(out.predictions[0]!.top), expected);

  // `pipeline predict`.
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (b: Buffer) => (o += b.toString()));
  stderr.on('data', (b: Buffer) => (e += b.toString()));
  const code = await predictMain(['--model', tr.outDir, '--cache', rig.cacheDir, '--format', 'json', '--top-k', '10', 'probe/Bag/odd.png'], {
    stdout,
    stderr,
    cwd: rig.dir,
    env: {},
    signal: new AbortController().signal,
  } as never);
  assert.equal(code, ExitCode.ok, e);
  assert.equal(e, '');
  const cli = JSON.parse(o) as { predictions: { top: { class: string; p: number }[] }[] };
  assert.deepEqual(byClass(cli.predictions[0]!.top), expected);
});

test('imageResizeOf: reads a shard index resize record, refusing absent or invalid ones', () => {
  const index = { format: 'pipeline.image-shards/v1', height: 2, width: 2, channels: 1, classes: ['a'], itemBytes: 4, shards: [], items: [] } as const;
  assert.equal(imageResizeOf(index), undefined, 'older index without the record');
  assert.deepEqual(imageResizeOf({ ...index, resize: { fit: 'fill', kernel: 'cubic', background: '#abc' } }), { fit: 'fill', kernel: 'cubic', background: '#abc' });
  assert.equal(imageResizeOf({ ...index, resize: { fit: 'stretch', kernel: 'cubic', background: '#abc' } }), undefined);
  assert.equal(imageResizeOf({ ...index, resize: { fit: 'fill', kernel: 'bicubic', background: '#abc' } }), undefined);
  assert.equal(imageResizeOf({ ...index, resize: { fit: 'fill', kernel: 'cubic', background: 'white' } }), undefined);
});
