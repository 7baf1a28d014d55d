/**
 * Fused frozen-backbone inference equals the plain LayersModel: a small
 * hand-built graph with every supported layer type (and one fallback layer),
 * on wasm and on cpu, plus a nested model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../stages/ml/backend.js';
import { compileInference } from '../../stages/ml/fuse.js';

const init = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
assert.ok(init.ok);
const { tf } = init.value;
type LayersModel = import('@tensorflow/tfjs').LayersModel;
type SymbolicTensor = import('@tensorflow/tfjs').SymbolicTensor;

/** Gives every weight deterministic random values; BN variances stay positive and far from 1 so folding matters. */
function randomizeWeights(model: LayersModel, seed: number): void {
  let i = 0;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const isBn = layer.getClassName() === 'BatchNormalization';
    layer.setWeights(
      ws.map((w, k) => {
        const s = seed + i++;
        if (isBn && k === ws.length - 1) return tf.randomUniform(w.shape, 0.3, 2.5, 'float32', s);
        if (isBn && k === 0 && ws.length === 4) return tf.randomUniform(w.shape, 0.5, 1.5, 'float32', s);
        return tf.randomUniform(w.shape, -0.5, 0.5, 'float32', s);
      }),
    );
  }
}

function everyLayerModel(): LayersModel {
  const L = tf.layers;
  const inp = tf.input({ shape: [17, 15, 3] });
  let x = L.rescaling({ scale: 2, offset: -1 }).apply(inp) as SymbolicTensor;
  x = L.zeroPadding2d({ padding: [[1, 2], [0, 1]] }).apply(x) as SymbolicTensor;
  x = L.conv2d({ filters: 8, kernelSize: 3, strides: 2, useBias: false }).apply(x) as SymbolicTensor;
  x = L.batchNormalization({ scale: false }).apply(x) as SymbolicTensor;
  x = L.reLU({ maxValue: 6 }).apply(x) as SymbolicTensor;
  x = L.zeroPadding2d({ padding: 1 }).apply(x) as SymbolicTensor;
  x = L.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2 }).apply(x) as SymbolicTensor;
  x = L.batchNormalization({}).apply(x) as SymbolicTensor;
  x = L.activation({ activation: 'relu' }).apply(x) as SymbolicTensor;
  const sep = L.separableConv2d({ filters: 12, kernelSize: 3, padding: 'same' }).apply(x) as SymbolicTensor;
  const sepBn = L.batchNormalization({ center: false }).apply(sep) as SymbolicTensor;
  const short = L.conv2d({ filters: 12, kernelSize: 1 }).apply(x) as SymbolicTensor;
  const shortBn = L.batchNormalization({}).apply(short) as SymbolicTensor;
  let y = L.add().apply([sepBn, shortBn]) as SymbolicTensor;
  y = L.activation({ activation: 'relu' }).apply(y) as SymbolicTensor;
  const bnAlone = L.batchNormalization({}).apply(y) as SymbolicTensor; // y has two consumers: this BN runs standalone
  const mp = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(bnAlone) as SymbolicTensor;
  const ap = L.averagePooling2d({ poolSize: 2, padding: 'valid' }).apply(y) as SymbolicTensor;
  const zp = L.zeroPadding2d({ padding: [[1, 1], [1, 1]] }).apply(ap) as SymbolicTensor;
  const mp2 = L.maxPooling2d({ poolSize: 2, strides: 1 }).apply(zp) as SymbolicTensor; // pad before a pool: not folded
  let z = L.concatenate().apply([mp, mp2]) as SymbolicTensor;
  z = L.conv2d({ filters: 6, kernelSize: 2, dilationRate: 2, padding: 'same', activation: 'relu' }).apply(z) as SymbolicTensor;
  z = L.leakyReLU({ alpha: 0.2 }).apply(z) as SymbolicTensor; // no fast path: falls back to the layer
  const g = L.activation({ activation: 'linear' }).apply(L.globalAveragePooling2d({}).apply(z)) as SymbolicTensor; // identity op: output must not alias its input
  const gm = L.globalMaxPooling2d({}).apply(z) as SymbolicTensor;
  const f = L.flatten().apply(z) as SymbolicTensor;
  let h = L.concatenate().apply([g, gm, f]) as SymbolicTensor;
  h = L.dense({ units: 10 }).apply(h) as SymbolicTensor;
  h = L.batchNormalization({}).apply(h) as SymbolicTensor;
  h = L.activation({ activation: 'relu' }).apply(h) as SymbolicTensor;
  h = L.dropout({ rate: 0.5 }).apply(h) as SymbolicTensor;
  h = L.dense({ units: 4, activation: 'softmax' }).apply(h) as SymbolicTensor;
  const model = tf.model({ inputs: inp, outputs: h });
  randomizeWeights(model, 1);
  return model;
}

function maxDiff(a: import('@tensorflow/tfjs').Tensor, b: import('@tensorflow/tfjs').Tensor): { diff: number; scale: number } {
  return tf.tidy(() => ({ diff: tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!, scale: tf.max(tf.abs(a)).dataSync()[0]! }));
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`every layer type: fused output equals model.predict on ${backend} (final and intermediate outputs)`, async () => {
    await tf.setBackend(backend);
    const model = everyLayerModel();
    const x = tf.randomUniform([3, 17, 15, 3], 0, 1, 'float32', 9) as import('@tensorflow/tfjs').Tensor4D;
    const fused = compileInference(model);
    assert.deepEqual(fused.stats.fallbacks, ['LeakyReLU']);
    assert.equal(fused.stats.foldedBatchNorms, 5);
    assert.equal(fused.stats.foldedPaddings, 2);
    assert.equal(fused.stats.fusedActivations, 3);
    const before = tf.memory().numTensors;
    const got = fused.predict(x);
    assert.equal(tf.memory().numTensors, before + 1, 'only the result survives predict');
    const want = model.predict(x) as import('@tensorflow/tfjs').Tensor;
    assert.deepEqual(got.shape, [3, 4]);
    const { diff, scale } = maxDiff(want, got);
    assert.ok(diff <= 1e-3 * Math.max(1, scale), `max diff ${diff}`);
    // Cut at an intermediate layer (a conv whose BN+ReLU get folded): still equal.
    const cutName = model.layers.find((l) => l.getClassName() === 'Add')!.name;
    const cut = compileInference(model, cutName);
    const plainCut = tf.model({ inputs: model.inputs, outputs: model.getLayer(cutName).output as SymbolicTensor });
    const a = plainCut.predict(x) as import('@tensorflow/tfjs').Tensor;
    const b = cut.predict(x);
    const d2 = maxDiff(a, b);
    assert.ok(d2.diff <= 1e-3 * Math.max(1, d2.scale), `cut max diff ${d2.diff}`);
    tf.dispose([x, got, want, a, b]);
    fused.dispose();
    cut.dispose();
  });
}

test('a nested model used as a layer is compiled recursively', async () => {
  await tf.setBackend('wasm');
  const L = tf.layers;
  const innerIn = tf.input({ shape: [8, 8, 3] });
  let t = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false }).apply(innerIn) as SymbolicTensor;
  t = L.batchNormalization({}).apply(t) as SymbolicTensor;
  t = L.reLU({}).apply(t) as SymbolicTensor;
  const inner = tf.model({ inputs: innerIn, outputs: t });
  const outerIn = tf.input({ shape: [8, 8, 3] });
  const a = inner.apply(outerIn) as SymbolicTensor;
  const b = L.conv2d({ filters: 4, kernelSize: 1 }).apply(outerIn) as SymbolicTensor;
  const outer = tf.model({ inputs: outerIn, outputs: L.concatenate().apply([a, b]) as SymbolicTensor });
  randomizeWeights(outer, 50);
  randomizeWeights(inner, 60);
  const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 3) as import('@tensorflow/tfjs').Tensor4D;
  const fused = compileInference(outer);
  assert.deepEqual(fused.stats.fallbacks, []);
  const { diff, scale } = maxDiff(outer.predict(x) as import('@tensorflow/tfjs').Tensor, fused.predict(x));
  assert.ok(diff <= 1e-3 * Math.max(1, scale), `max diff ${diff}`);
  fused.dispose();
});

test("ResNet50's pool1 pattern (ReLU -> ZeroPadding2D -> valid MaxPooling2D) folds the padding into the pool", async () => {
  await tf.setBackend('wasm');
  const L = tf.layers;
  const inp = tf.input({ shape: [15, 14, 3] });
  let t = L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }).apply(inp) as SymbolicTensor;
  t = L.batchNormalization({}).apply(t) as SymbolicTensor;
  t = L.activation({ activation: 'relu' }).apply(t) as SymbolicTensor;
  t = L.zeroPadding2d({ padding: 1 }).apply(t) as SymbolicTensor;
  t = L.maxPooling2d({ poolSize: 3, strides: 2 }).apply(t) as SymbolicTensor;
  // Without a ReLU before it, zero padding before a max-pool is NOT equivalent and must stay.
  let u = L.conv2d({ filters: 4, kernelSize: 1 }).apply(t) as SymbolicTensor;
  u = L.zeroPadding2d({ padding: 1 }).apply(u) as SymbolicTensor;
  u = L.maxPooling2d({ poolSize: 2, strides: 2 }).apply(u) as SymbolicTensor;
  const model = tf.model({ inputs: inp, outputs: u });
  randomizeWeights(model, 70);
  const fused = compileInference(model);
  assert.equal(fused.stats.foldedPaddings, 1);
  const x = tf.randomNormal([2, 15, 14, 3], 0, 1, 'float32', 4) as import('@tensorflow/tfjs').Tensor4D;
  const want = model.predict(x) as import('@tensorflow/tfjs').Tensor;
  const got = fused.predict(x);
  assert.deepEqual(got.shape, want.shape);
  const { diff, scale } = maxDiff(want, got);
  assert.ok(diff <= 1e-3 * Math.max(1, scale), `max diff ${diff}`);
  tf.dispose([x, want, got]);
  fused.dispose();
});
