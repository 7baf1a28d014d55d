/**
 * The training executor's hand-written gradients (conv, dense, BatchNorm,
 * 2x2 max-pool, global average pooling) against tfjs' own gradients of the
 * same layers model, on the real wasm backend, plus BN moving-average updates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as tfjs from '@tensorflow/tfjs';
import { initBackend } from '../../stages/ml/backend.js';
import { compileFastGraph } from '../../stages/ml/fast-graph.js';

async function tfWasm(): Promise<typeof tfjs> {
  const r = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
  assert.ok(r.ok, 'wasm backend');
  return r.value.tf;
}

function model(tf: typeof tfjs, withGap: boolean): tfjs.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const input = tf.input({ shape: [8, 8, 2] });
  let x = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(1), biasInitializer: tf.initializers.randomNormal({ seed: 9 }) }).apply(input) as tfjs.SymbolicTensor;
  x = tf.layers.batchNormalization({ gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 3 }), betaInitializer: tf.initializers.randomNormal({ seed: 4 }) }).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu' }).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', useBias: false, kernelInitializer: init(2) }).apply(x) as tfjs.SymbolicTensor;
  x = (withGap ? tf.layers.globalAveragePooling2d({}) : tf.layers.flatten()).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.dense({ units: 5, activation: 'relu', kernelInitializer: init(5) }).apply(x) as tfjs.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(6) }).apply(x) as tfjs.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

for (const withGap of [false, true]) {
  test(`fast-graph gradients equal tfjs gradients (${withGap ? 'global avg pool' : 'flatten'})`, async () => {
    const tf = await tfWasm();
    const m = model(tf, withGap);
    const g = compileFastGraph(tf, m);
    assert.deepEqual(g.genericLayers, []);
    assert.equal(g.softmaxOutput, true);
    const x = tf.randomUniform([4, 8, 8, 2], 0, 1, 'float32', 7);
    const y = tf.oneHot(tf.tensor1d([0, 2, 1, 2], 'int32'), 3);
    const vars = m.trainableWeights.map((w) => w.read() as tfjs.Variable);
    const ref = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, tf.log(m.apply(x, { training: true }) as tfjs.Tensor)) as tfjs.Scalar, vars);
    const fast = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, g.forward(x, { training: true, logits: true })) as tfjs.Scalar, vars);
    assert.ok(Math.abs(ref.value.dataSync()[0]! - fast.value.dataSync()[0]!) < 1e-4, 'same loss');
    for (const v of vars) {
      const a = ref.grads[v.name]!.dataSync();
      const b = fast.grads[v.name]!.dataSync();
      const scale = Math.max(1e-3, ...Array.from(a, Math.abs));
      const maxDiff = Math.max(...Array.from(a, (av, i) => Math.abs(av - b[i]!)));
      assert.ok(maxDiff / scale < 2e-3, `${v.name}: max |diff| ${maxDiff} vs scale ${scale}`);
    }
    // Inference mode equals model.predict.
    const p1 = (m.predict(x) as tfjs.Tensor).dataSync();
    const p2 = g.forward(x, { training: false }).dataSync();
    assert.ok(Math.max(...Array.from(p1, (v, i) => Math.abs(v - p2[i]!))) < 1e-5);
  });
}

test('fast-graph BatchNorm training updates moving statistics like Keras (momentum)', async () => {
  const tf = await tfWasm();
  const input = tf.input({ shape: [3] });
  const bn = tf.layers.batchNormalization({ momentum: 0.5 });
  const m = tf.model({ inputs: input, outputs: bn.apply(input) as tfjs.SymbolicTensor });
  const g = compileFastGraph(tf, m);
  const x = tf.tensor2d([
    [1, 2, 3],
    [3, 6, 9],
  ]);
  g.forward(x, { training: true }).dispose();
  const [, , mean, variance] = m.getWeights();
  // moving = 0.5 * initial + 0.5 * batch; initial mean 0, var 1; batch mean [2,4,6], biased var [1,4,9].
  assert.deepEqual(Array.from(mean!.dataSync()), [1, 2, 3]);
  assert.deepEqual(Array.from(variance!.dataSync()), [1, 2.5, 5]);
});
