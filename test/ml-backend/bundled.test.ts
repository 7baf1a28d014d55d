/**
 * The `bundled` nsfwjs backbones load offline from node_modules: MobileNetV2
 * gives a [n, 7, 7, 1280] feature map (1280-d after global average pooling),
 * its fused inference matches, and the weights hash is stable. InceptionV3
 * is checked for its `mixed10` shape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../stages/ml/backend.js';
import { BUNDLED_SPECS, loadBundledBackbone, readBundledArtifacts } from '../../stages/ml/bundled.js';
import { compileInference } from '../../stages/ml/fuse.js';

const init = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
assert.ok(init.ok);
const { tf } = init.value;
type Tensor = import('@tensorflow/tfjs').Tensor;

test('bundled MobileNetV2: 7x7x1280 features, 1280-d pooled, fused inference matches', async () => {
  const bb = await loadBundledBackbone(tf, 'mobilenet_v2');
  assert.deepEqual(bb.inputRange, [0, 1]);
  assert.match(bb.weightsHash, /^[0-9a-f]{64}$/);
  assert.equal(bb.weightsHash, readBundledArtifacts('mobilenet_v2').weightsHash, 'hash is deterministic');
  assert.match(bb.source, /^nsfwjs@4\.2\.1 dist\/models\/mobilenet_v2$/);
  assert.equal(bb.model.layers.at(-1)!.name, 'out_relu');
  assert.deepEqual(bb.model.outputs[0]!.shape, [null, 7, 7, 1280]);
  const x = tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 5) as import('@tensorflow/tfjs').Tensor4D;
  const plain = bb.model.predict(x) as Tensor;
  assert.deepEqual(plain.shape, [2, 7, 7, 1280]);
  const pooled = tf.mean(plain, [1, 2]);
  assert.deepEqual(pooled.shape, [2, 1280]);
  // Real pretrained weights: the features are not all zero and differ between images.
  const p = pooled.arraySync() as number[][];
  assert.ok(p[0]!.some((v) => v > 0.01));
  assert.notDeepEqual(p[0], p[1]);
  const fused = compileInference(bb.model);
  assert.equal(fused.stats.foldedBatchNorms, 52);
  assert.equal(fused.stats.foldedPaddings, 5);
  assert.deepEqual(fused.stats.fallbacks, []);
  const got = fused.predict(x);
  const diff = tf.max(tf.abs(tf.sub(plain, got))).dataSync()[0]!;
  assert.ok(diff <= 1e-3, `max |fused - plain| = ${diff}`);
  tf.dispose([x, plain, pooled, got]);
  fused.dispose();
  bb.model.dispose();
});

test('bundled InceptionV3 is cut at mixed10 (8x8x2048 at 299)', async () => {
  const bb = await loadBundledBackbone(tf, 'inception_v3');
  assert.deepEqual(BUNDLED_SPECS.inception_v3.featureShape, [8, 8, 2048]);
  assert.deepEqual(bb.model.outputs[0]!.shape, [null, 8, 8, 2048]);
  const x = tf.randomUniform([1, 299, 299, 3], 0, 1, 'float32', 6) as import('@tensorflow/tfjs').Tensor4D;
  const fused = compileInference(bb.model);
  assert.deepEqual(fused.stats.fallbacks, []);
  const y = fused.predict(x);
  assert.deepEqual(y.shape, [1, 8, 8, 2048]);
  const plain = bb.model.predict(x) as Tensor;
  const diff = tf.max(tf.abs(tf.sub(plain, y))).dataSync()[0]!;
  assert.ok(diff <= 1e-3 * Math.max(1, tf.max(plain).dataSync()[0]!), `max |fused - plain| = ${diff}`);
  tf.dispose([x, y, plain]);
  fused.dispose();
  bb.model.dispose();
});
