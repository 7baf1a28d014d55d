/**
 * Training on wasm end to end: a small CNN (conv + BN + ReLU + max-pool +
 * dropout + dense softmax) and a depthwise-separable net, Adam with
 * categorical cross-entropy. Loss must fall on a learnable synthetic task
 * (the class is which quadrant holds a bright blob).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../stages/ml/backend.js';

const init = await initBackend({ device: 'cpu', backend: 'wasm', threads: 1 });
assert.ok(init.ok);
const { tf } = init.value;
type Tensor = import('@tensorflow/tfjs').Tensor;

/** 4 classes: a 4x4 bright square in quadrant `label`, plus deterministic noise. */
function dataset(n: number, size: number): { x: Tensor; y: Tensor } {
  const xs = new Float32Array(n * size * size * 3);
  const ys = new Int32Array(n);
  let s = 12345;
  const rnd = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  for (let i = 0; i < n; i++) {
    const label = i % 4;
    ys[i] = label;
    const oy = (label >> 1) * (size / 2) + Math.floor(rnd() * (size / 2 - 4));
    const ox = (label & 1) * (size / 2) + Math.floor(rnd() * (size / 2 - 4));
    for (let p = 0; p < size * size * 3; p++) xs[i * size * size * 3 + p] = rnd() * 0.3;
    for (let yy = oy; yy < oy + 4; yy++) for (let xx = ox; xx < ox + 4; xx++) for (let c = 0; c < 3; c++) xs[((i * size + yy) * size + xx) * 3 + c] = 1;
  }
  return { x: tf.tensor4d(xs, [n, size, size, 3]), y: tf.oneHot(tf.tensor1d(ys, 'int32'), 4) };
}

async function trainLosses(model: import('@tensorflow/tfjs').LayersModel, steps: number): Promise<number[]> {
  model.compile({ optimizer: tf.train.adam(3e-3), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const { x, y } = dataset(32, 16);
  const losses: number[] = [];
  let dataIdsAfterWarmup = 0;
  for (let i = 0; i < steps; i++) {
    const r = (await model.trainOnBatch(x, y)) as number[];
    losses.push(r[0]!);
    if (i === 1) dataIdsAfterWarmup = tf.engine().backend.numDataIds();
  }
  // The composite kernels free every intermediate: no buffers accumulate in the wasm backend.
  assert.equal(tf.engine().backend.numDataIds(), dataIdsAfterWarmup, 'wasm buffers leaked across training steps');
  tf.dispose([x, y]);
  return losses;
}

test('a small CNN trains on wasm: loss falls by more than half', async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      tf.layers.dropout({ rate: 0.2, seed: 3 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
  const losses = await trainLosses(model, 30);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses.at(-1)! < losses[0]! * 0.5, `loss ${losses[0]} -> ${losses.at(-1)}`);
  model.dispose();
});

test('a depthwise-separable net (DepthwiseConv2D, SeparableConv2D, ReLU6, GAP) trains on wasm', async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [16, 16, 3], filters: 8, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 6 }) }),
      tf.layers.batchNormalization(),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.separableConv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 7 }), pointwiseInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
      tf.layers.reLU({ maxValue: 6 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }) }),
    ],
  });
  const losses = await trainLosses(model, 30);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses.at(-1)! < losses[0]! * 0.5, `loss ${losses[0]} -> ${losses.at(-1)}`);
  model.dispose();
});
