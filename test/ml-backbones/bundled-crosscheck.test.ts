/**
 * Numerical cross-check of our architectures against real Keras-exported models: the nsfwjs package ships
 * Keras 2.2.4 MobileNetV2 and InceptionV3 (loaded through `loadBackbone(..., {weights: 'bundled'})`). Copying
 * their weights into our builds must reproduce their feature maps, which checks padding, strides, BatchNorm
 * epsilons and layer order on real (not random) weights.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BACKBONES, loadBackbone } from '../../stages/ml/backbones/registry.js';

// wasm: InceptionV3 at 299x299 takes minutes on the pure-JS cpu backend
assert.ok(await tf.setBackend('wasm'));

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Copies weights layer by layer: by name when every weighted layer name exists in `from`, else in order. */
function copyWeights(from: tf.LayersModel, to: tf.LayersModel): 'name' | 'order' {
  const src = from.layers.filter((l) => l.weights.length > 0);
  const dst = to.layers.filter((l) => l.weights.length > 0);
  assert.equal(dst.length, src.length, 'weighted layer count');
  const names = new Map(src.map((l) => [l.name, l]));
  const byName = dst.every((l) => names.has(l.name));
  dst.forEach((l, i) => l.setWeights((byName ? names.get(l.name)! : src[i]!).getWeights()));
  return byName ? 'name' : 'order';
}

for (const [name, size] of [['mobilenet_v2', 224], ['inception_v3', 299]] as const) {
  test(`${name}: our build with the bundled Keras model's weights reproduces its ${BACKBONES.get(name)!.featureLayer} output`, async () => {
    const cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bundled-xcheck-'));
    try {
      const r = await loadBackbone(tf, name, { weights: 'bundled', cacheDir });
      assert.ok(r.ok, !r.ok ? r.error.message : '');
      const bundled = r.value.model;
      assert.deepEqual(bundled.outputs[0]!.shape, [null, ...(name === 'mobilenet_v2' ? [7, 7, 1280] : [8, 8, 2048])]);
      assert.match(r.value.weightsHash, /^[0-9a-f]{64}$/);
      assert.equal(r.value.preprocessing, 'unit');
      assert.equal(r.value.featureDim, name === 'mobilenet_v2' ? 1280 : 2048);
      const ours = BACKBONES.get(name)!.build(tf, { inputShape: [size, size, 3], init: 'zeros' });
      const how = copyWeights(bundled, ours);
      assert.equal(how, name === 'mobilenet_v2' ? 'name' : 'order');
      const x = tf.randomUniform([1, size, size, 3], 0, 1, 'float32', 42);
      const want = bundled.predict(x) as tf.Tensor;
      const got = ours.predict(x) as tf.Tensor;
      assert.deepEqual(got.shape, want.shape);
      const scale = tf.tidy(() => tf.max(tf.abs(want)).dataSync()[0]!);
      assert.ok(scale > 0.1, `features are not trivially zero (max ${scale})`);
      const diff = maxAbsDiff(got, want);
      assert.ok(diff <= 1e-4 * Math.max(1, scale), `max |ours - keras| = ${diff} (feature scale ${scale})`);
      ours.dispose();
      bundled.dispose();
    } finally {
      await fs.rm(cacheDir, { recursive: true, force: true });
    }
  });
}
