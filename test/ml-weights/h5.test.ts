import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import * as tf from '@tensorflow/tfjs';
import { BACKBONES } from '../../stages/ml/backbones/registry.js';
import { loadKerasH5Weights, readKerasH5, toSnakeCase, writeKerasH5Weights } from '../../stages/ml/weights/h5.js';
import { writeKerasLayout } from './fixtures.js';

await tf.setBackend('cpu');
await h5wasm.ready;

/** A tiny conv+BN+dense model with random, non-default BN statistics. */
function tiny(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, name: 'conv1', kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flat' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 5, name: 'fc', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(x) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: x });
  const bn = m.getLayer('bn1');
  bn.setWeights(bn.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', seed * 10 + i)));
  return m;
}

async function tmp(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'h5-test-'));
}

test('h5: Keras layout written with h5wasm loads back by name; predictions match', async () => {
  const dir = await tmp();
  try {
    const src = tiny(1);
    const file = path.join(dir, 'tiny.h5');
    writeKerasLayout(src, file);
    const dst = tiny(99);
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 4);
    const before = (dst.predict(x) as tf.Tensor).dataSync();
    const r = await loadKerasH5Weights(tf, dst, file);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.error));
    assert.deepEqual(r.value, { matchedBy: 'name', layers: 3, tensors: 2 + 4 + 2 });
    const want = (src.predict(x) as tf.Tensor).dataSync();
    const got = (dst.predict(x) as tf.Tensor).dataSync();
    assert.notDeepEqual(Array.from(before), Array.from(want));
    assert.deepEqual(Array.from(got), Array.from(want));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('h5: simple_cnn round trip (BN statistics included) gives identical features', async () => {
  const dir = await tmp();
  try {
    const spec = BACKBONES.get('simple_cnn')!;
    const src = spec.build(tf, { inputShape: [28, 28, 1], seed: 3 });
    for (const l of src.layers.filter((l) => l.name.endsWith('_bn'))) {
      l.setWeights(l.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 2, 'float32', i + 17)));
    }
    const file = path.join(dir, 'simple.h5');
    writeKerasLayout(src, file);
    const dst = spec.build(tf, { inputShape: [28, 28, 1], seed: 4 });
    const r = await loadKerasH5Weights(tf, dst, file);
    assert.ok(r.ok);
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 8);
    assert.deepEqual(Array.from((dst.predict(x) as tf.Tensor).dataSync()), Array.from((src.predict(x) as tf.Tensor).dataSync()));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('h5: Keras-2 counters on unnamed layers (conv2d_1 for our conv2d) load by order, like Keras', async () => {
  const dir = await tmp();
  try {
    const spec = BACKBONES.get('xception')!;
    const src = spec.build(tf, { inputShape: [71, 71, 3], seed: 5 });
    const file = path.join(dir, 'xception.h5');
    // Keras 2 numbered the first unnamed conv `conv2d_1`; Keras 3 (and we) call it `conv2d`.
    const keras2 = (n: string): string => n.replace(/^(conv2d|batch_normalization|add)(?:_(\d+))?$/, (_m, p: string, k?: string) => `${p}_${Number(k ?? 0) + 1}`);
    writeKerasLayout(src, file, keras2);
    const dst = spec.build(tf, { inputShape: [71, 71, 3], seed: 6 });
    const r = await loadKerasH5Weights(tf, dst, file);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.error.slice(0, 3)));
    assert.equal(r.value.matchedBy, 'order');
    assert.equal(r.value.layers, src.layers.filter((l) => l.weights.length).length);
    // every weight landed in the same place (comparing values is exact and cheaper than a forward pass on cpu)
    const a = src.getWeights();
    const b = dst.getWeights();
    assert.equal(a.length, b.length);
    a.forEach((w, i) => assert.ok(tf.equal(w, b[i]!).all().dataSync()[0] === 1, `weight ${i} (${src.weights[i]!.originalName})`));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('h5: mismatching file gives every located problem and leaves the model untouched', async () => {
  const dir = await tmp();
  try {
    const src = tiny(1);
    const file = path.join(dir, 'bad.h5');
    // conv1 kernel for 1 input channel instead of 3, fc with 7 units instead of 5
    writeKerasLayout(src, file, undefined, (layer, w, shape) =>
      layer === 'conv1' && w.endsWith('kernel:0') ? [3, 3, 1, 4] : layer === 'fc' && w.endsWith('kernel:0') ? [shape[0]!, 7] : shape,
    );
    const dst = tiny(99);
    const before = dst.getWeights().map((w) => Array.from(w.dataSync()));
    const r = await loadKerasH5Weights(tf, dst, file);
    assert.ok(!r.ok);
    assert.deepEqual(
      r.error.map((p) => [p.reason, p.layer, p.weight]),
      [
        ['h5-shape-mismatch', 'conv1', 'conv1/kernel:0'],
        ['h5-shape-mismatch', 'fc', 'fc/kernel:0'],
      ],
    );
    assert.equal(r.error[0]!.message, `${file}: layer 'conv1' weight 'conv1/kernel:0' has shape [3,3,1,4], model layer 'conv1' expects [3,3,3,4]`);
    assert.deepEqual(dst.getWeights().map((w) => Array.from(w.dataSync())), before);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('h5: missing layer and non-Keras / non-HDF5 files are located errors', async () => {
  const dir = await tmp();
  try {
    const src = tiny(1);
    const file = path.join(dir, 'renamed.h5');
    writeKerasLayout(src, file, (n) => (n === 'bn1' ? 'bn_other' : n));
    const r = await loadKerasH5Weights(tf, tiny(2), file, { match: 'name' });
    assert.ok(!r.ok);
    assert.deepEqual(r.error.map((p) => [p.reason, p.layer]), [['h5-layer-missing', 'bn1']]);
    const r2 = await loadKerasH5Weights(tf, tiny(2), file);
    assert.ok(!r2.ok);
    assert.equal(r2.error[0]!.reason, 'h5-layer-order');
    assert.match(r2.error[0]!.message, /weighted layer #2 is 'bn_other' in the file but 'bn1' in the model/);

    const plain = path.join(dir, 'plain.h5');
    const f = new h5wasm.File(plain, 'w');
    f.create_dataset({ name: 'x', data: new Float32Array([1]) });
    f.close();
    const r3 = await readKerasH5(plain);
    assert.ok(!r3.ok);
    assert.equal(r3.error[0]!.reason, 'h5-not-keras');

    const junk = path.join(dir, 'junk.h5');
    await fs.writeFile(junk, 'not hdf5 at all');
    const r4 = await readKerasH5(junk);
    assert.ok(!r4.ok);
    assert.equal(r4.error[0]!.reason, 'h5-unreadable');
    assert.match(r4.error[0]!.message, /junk\.h5: not a readable HDF5 file/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('h5: writeKerasH5Weights writes the Keras layout (checked with raw h5wasm) and round-trips', async () => {
  const dir = await tmp();
  try {
    const src = tiny(3);
    const file = path.join(dir, 'out.h5');
    await writeKerasH5Weights(src, file);
    const f = new h5wasm.File(file, 'r');
    try {
      assert.deepEqual(f.attrs['layer_names']!.value, src.layers.map((l) => l.name));
      assert.deepEqual((f.get('bn1') as InstanceType<typeof h5wasm.Group>).attrs['weight_names']!.value, ['bn1/gamma:0', 'bn1/beta:0', 'bn1/moving_mean:0', 'bn1/moving_variance:0']);
      const k = f.get('conv1/conv1/kernel:0') as InstanceType<typeof h5wasm.Dataset>;
      assert.deepEqual(k.shape, [3, 3, 3, 4]);
      assert.equal(k.dtype, '<f');
      assert.deepEqual(Array.from(k.value as Float32Array), Array.from(src.getLayer('conv1').getWeights()[0]!.dataSync()));
    } finally {
      f.close();
    }
    const dst = tiny(50);
    const r = await loadKerasH5Weights(tf, dst, file);
    assert.ok(r.ok);
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 1);
    assert.deepEqual(Array.from((dst.predict(x) as tf.Tensor).dataSync()), Array.from((src.predict(x) as tf.Tensor).dataSync()));
    assert.deepEqual((await fs.readdir(dir)).sort(), ['out.h5']);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('h5: Keras 3 .weights.h5 layout (layers/<class>[_N]/vars/<i>) loads by class path', async () => {
  assert.deepEqual(['Conv2D', 'BatchNormalization', 'DepthwiseConv2D', 'SeparableConv2D', 'ReLU', 'Dense'].map(toSnakeCase), [
    'conv2d', 'batch_normalization', 'depthwise_conv2d', 'separable_conv2d', 're_lu', 'dense',
  ]);
  const dir = await tmp();
  try {
    // two convs so the `_1` counter is exercised
    const make = (seed: number): tf.LayersModel => {
      const input = tf.input({ shape: [6, 6, 2] });
      let x = tf.layers.conv2d({ filters: 3, kernelSize: 3, name: 'first', kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(input) as tf.SymbolicTensor;
      x = tf.layers.batchNormalization({ name: 'norm' }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.conv2d({ filters: 5, kernelSize: 1, name: 'second', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(x) as tf.SymbolicTensor;
      const m = tf.model({ inputs: input, outputs: x });
      const bn = m.getLayer('norm');
      bn.setWeights(bn.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', seed + i)));
      return m;
    };
    const src = make(1);
    const file = path.join(dir, 'model.weights.h5');
    const f = new h5wasm.File(file, 'w');
    f.create_group('vars');
    const layers = f.create_group('layers');
    const put = (p: string, l: tf.layers.Layer): void => {
      const vars = layers.create_group(p).create_group('vars');
      l.getWeights().forEach((w, i) => vars.create_dataset({ name: String(i), data: w.dataSync() as Float32Array, shape: w.shape, dtype: '<f' }));
    };
    put('conv2d', src.getLayer('first'));
    put('batch_normalization', src.getLayer('norm'));
    put('conv2d_1', src.getLayer('second'));
    f.close();
    const dst = make(9);
    const r = await loadKerasH5Weights(tf, dst, file);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.error));
    assert.deepEqual(r.value, { matchedBy: 'keras3-path', layers: 3, tensors: 2 + 4 + 2 });
    const x = tf.randomUniform([1, 6, 6, 2], 0, 1, 'float32', 2);
    assert.deepEqual(Array.from((dst.predict(x) as tf.Tensor).dataSync()), Array.from((src.predict(x) as tf.Tensor).dataSync()));

    // a model with an extra conv: the missing path is named
    const input = tf.input({ shape: [6, 6, 2] });
    let y = tf.layers.conv2d({ filters: 3, kernelSize: 3 }).apply(input) as tf.SymbolicTensor;
    y = tf.layers.batchNormalization().apply(y) as tf.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 5, kernelSize: 1 }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(y) as tf.SymbolicTensor;
    const bigger = tf.model({ inputs: input, outputs: y });
    const r2 = await loadKerasH5Weights(tf, bigger, file);
    assert.ok(!r2.ok);
    assert.deepEqual(r2.error.map((p) => [p.reason, p.layer]), [['h5-layer-missing', 'conv2d_2']]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
