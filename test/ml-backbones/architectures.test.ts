import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { BACKBONES, BACKBONE_NAMES, paramCounts, featureDimFor } from '../../stages/ml/backbones/registry.js';

await tf.setBackend('cpu');

/**
 * Keras's include_top=False counts, written out here independently of the registry entries so a wrong
 * entry cannot make its own test pass (keras docs / model.summary() output of keras.applications).
 */
const KERAS: Record<string, [total: number, trainable: number, nonTrainable: number]> = {
  resnet50: [23_587_712, 23_534_592, 53_120],
  vgg19: [20_024_384, 20_024_384, 0],
  inception_v3: [21_802_784, 21_768_352, 34_432],
  xception: [20_861_480, 20_806_952, 54_528],
  mobilenet_v2: [2_257_984, 2_223_872, 34_112],
};

for (const [name, [total, trainable, nonTrainable]] of Object.entries(KERAS)) {
  test(`${name}: parameter counts equal Keras's and the output has featureDim channels at the default size`, () => {
    const spec = BACKBONES.get(name as never)!;
    const model = spec.build(tf, { inputShape: [spec.defaultSize[0], spec.defaultSize[1], 3], init: 'zeros' });
    try {
      assert.deepEqual(paramCounts(model), { total, trainable, nonTrainable });
      assert.deepEqual(spec.params, { total, trainable, nonTrainable });
      assert.equal(model.countParams(), total);
      const out = model.outputs[0]!.shape;
      assert.equal(out.length, 4);
      assert.equal(out[3], spec.featureDim);
      assert.equal(model.getLayer(spec.featureLayer).outputShape.toString(), out.toString());
    } finally {
      model.dispose();
    }
  });
}

test('registry lists every name once, with sizes >= minimum', () => {
  assert.deepEqual([...BACKBONES.keys()].sort(), [...BACKBONE_NAMES].sort());
  for (const s of BACKBONES.values()) {
    assert.ok(s.defaultSize[0] >= s.minSize[0] && s.defaultSize[1] >= s.minSize[1], s.name);
  }
});

test('expected output shapes at default sizes (Keras model.summary)', () => {
  const expected: Record<string, number[]> = {
    mobilenet_v2: [7, 7, 1280],
    resnet50: [7, 7, 2048],
    vgg19: [7, 7, 512],
    inception_v3: [8, 8, 2048],
    xception: [10, 10, 2048],
  };
  for (const [name, shape] of Object.entries(expected)) {
    const spec = BACKBONES.get(name as never)!;
    const m = spec.build(tf, { inputShape: [spec.defaultSize[0], spec.defaultSize[1], 3], init: 'zeros' });
    assert.deepEqual(m.outputs[0]!.shape.slice(1), shape, name);
    m.dispose();
  }
});

test('mobilenet_v2 layer names follow keras.applications', () => {
  const m = BACKBONES.get('mobilenet_v2')!.build(tf, { inputShape: [96, 96, 3], init: 'zeros' });
  const names = m.layers.map((l) => l.name);
  for (const n of ['Conv1', 'bn_Conv1', 'Conv1_relu', 'expanded_conv_depthwise', 'expanded_conv_project_BN', 'block_1_pad', 'block_2_add', 'block_16_project_BN', 'Conv_1', 'Conv_1_bn', 'out_relu']) {
    assert.ok(names.includes(n), n);
  }
  // 17 blocks: adds where in == out channels and stride 1 (Keras: 10 adds)
  assert.equal(names.filter((n) => n.endsWith('_add')).length, 10);
  m.dispose();
});

test('mobilenet_v2 runs on a 32x32 batch and gives 1280 channels', () => {
  const spec = BACKBONES.get('mobilenet_v2')!;
  const m = spec.build(tf, { inputShape: [32, 32, 3], seed: 1 });
  const y = m.predict(tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 3)) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 1, 1, 1280]);
  assert.ok(Number.isFinite(y.sum().dataSync()[0]));
  m.dispose();
});

test('simple_cnn: 28x28x1 → 3136 features, counts as documented, seeded builds are identical', () => {
  const spec = BACKBONES.get('simple_cnn')!;
  const a = spec.build(tf, { inputShape: [28, 28, 1], seed: 7 });
  const b = spec.build(tf, { inputShape: [28, 28, 1], seed: 7 });
  assert.deepEqual(paramCounts(a), spec.params);
  assert.deepEqual(a.outputs[0]!.shape, [null, 3136]);
  assert.equal(featureDimFor(spec, [28, 28]), 3136);
  assert.equal(featureDimFor(spec, [32, 32]), 4096);
  const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 5);
  const ya = a.predict(x) as tf.Tensor;
  const yb = b.predict(x) as tf.Tensor;
  assert.deepEqual(ya.shape, [3, 3136]);
  assert.deepEqual(Array.from(ya.dataSync()), Array.from(yb.dataSync()));
  a.dispose();
  b.dispose();
});

test('all: three nested branches, 6144 features, counts = sum of parts + 12 fixed preprocessing params', () => {
  const spec = BACKBONES.get('all')!;
  const m = spec.build(tf, { inputShape: [299, 299, 3], init: 'zeros' });
  const total = KERAS.inception_v3![0] + KERAS.xception![0] + KERAS.resnet50![0];
  const nonTrainable = KERAS.inception_v3![2] + KERAS.xception![2] + KERAS.resnet50![2];
  assert.deepEqual(paramCounts(m), { total: total + 12, trainable: total - nonTrainable, nonTrainable: nonTrainable + 12 });
  assert.deepEqual(m.outputs[0]!.shape, [null, 6144]);
  for (const n of ['inception_v3', 'xception', 'resnet50']) assert.ok(m.getLayer(n), n);
  // one Keras session: Xception's unnamed layers continue InceptionV3's counters, so weight names are unique
  // (tfjs refuses to save a model with duplicate weight names)
  const names = m.weights.map((w) => w.originalName);
  assert.equal(new Set(names).size, names.length);
  const xc = m.getLayer('xception') as unknown as tf.LayersModel;
  assert.deepEqual(xc.layers.filter((l) => /^conv2d/.test(l.name)).map((l) => l.name), ['conv2d_94', 'conv2d_95', 'conv2d_96', 'conv2d_97']);
  m.dispose();
});

test('all: caffe branch input is BGR minus means; tf branch is x/127.5-1', () => {
  const m = BACKBONES.get('all')!.build(tf, { inputShape: [75, 75, 3], init: 'zeros' });
  const probe = tf.model({ inputs: m.inputs, outputs: [m.getLayer('caffe_preprocess').output as tf.SymbolicTensor, m.getLayer('tf_preprocess').output as tf.SymbolicTensor] });
  const px = tf.tensor4d([10, 20, 30], [1, 1, 1, 3]).tile([1, 75, 75, 1]);
  const [caffe, tfp] = probe.predict(px) as tf.Tensor[];
  const c = Array.from(caffe!.slice([0, 0, 0, 0], [1, 1, 1, 3]).dataSync());
  const t = Array.from(tfp!.slice([0, 0, 0, 0], [1, 1, 1, 3]).dataSync());
  [30 - 103.939, 20 - 116.779, 10 - 123.68].forEach((v, i) => assert.ok(Math.abs(c[i]! - v) < 1e-4, `caffe ${i}: ${c[i]} vs ${v}`));
  [10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1].forEach((v, i) => assert.ok(Math.abs(t[i]! - v) < 1e-6, `tf ${i}`));
  m.dispose();
});

test('builders reject inputs below the minimum size', () => {
  assert.throws(() => BACKBONES.get('inception_v3')!.build(tf, { inputShape: [74, 74, 3], init: 'zeros' }), /smaller than the minimum 75x75/);
});

/** Our Keras-3 auto names → the Keras 2 names the official .h5 files carry (`conv2d` → `conv2d_1`). */
function keras2(n: string): string {
  const m = /^(conv2d|batch_normalization|activation|max_pooling2d|average_pooling2d|concatenate|add)(?:_(\d+))?$/.exec(n);
  return m ? `${m[1]}_${Number(m[2] ?? 0) + 1}` : n;
}

test('layer order equals Keras model.summary() order (order-matched .h5 loading relies on it)', () => {
  // Windows transcribed from published Keras 2 `model.summary()` output of keras.applications InceptionV3 /
  // Xception (include_top=False): same-shaped branch convs must come in exactly this order.
  const inceptionHead = [
    'input_layer', 'conv2d_1', 'batch_normalization_1', 'activation_1', 'conv2d_2', 'batch_normalization_2', 'activation_2',
    'conv2d_3', 'batch_normalization_3', 'activation_3', 'max_pooling2d_1', 'conv2d_4', 'batch_normalization_4', 'activation_4',
    'conv2d_5', 'batch_normalization_5', 'activation_5', 'max_pooling2d_2', 'conv2d_9', 'batch_normalization_9', 'activation_9',
    'conv2d_7', 'conv2d_10', 'batch_normalization_7', 'batch_normalization_10', 'activation_7', 'activation_10',
    'average_pooling2d_1', 'conv2d_6', 'conv2d_8', 'conv2d_11', 'conv2d_12', 'batch_normalization_6', 'batch_normalization_8',
    'batch_normalization_11',
  ];
  const inceptionTail = [
    'mixed9', 'conv2d_90', 'batch_normalization_90', 'activation_90', 'conv2d_87', 'conv2d_91', 'batch_normalization_87',
    'batch_normalization_91', 'activation_87', 'activation_91', 'conv2d_88', 'conv2d_89', 'conv2d_92', 'conv2d_93',
    'average_pooling2d_9', 'conv2d_86', 'batch_normalization_88', 'batch_normalization_89', 'batch_normalization_92',
    'batch_normalization_93', 'conv2d_94', 'batch_normalization_86', 'activation_88', 'activation_89', 'activation_92',
    'activation_93', 'batch_normalization_94', 'activation_86', 'mixed9_1', 'concatenate_2', 'activation_94', 'mixed10',
  ];
  const inc = BACKBONES.get('inception_v3')!.build(tf, { inputShape: [75, 75, 3], init: 'zeros' });
  const incNames = inc.layers.map((l) => keras2(l.name));
  assert.equal(incNames.length, 311);
  assert.deepEqual(incNames.slice(0, inceptionHead.length), inceptionHead);
  assert.deepEqual(incNames.slice(-inceptionTail.length), inceptionTail);
  inc.dispose();

  const xceptionTail = [
    'block12_sepconv3_bn', 'add_11', 'block13_sepconv1_act', 'block13_sepconv1', 'block13_sepconv1_bn', 'block13_sepconv2_act',
    'block13_sepconv2', 'block13_sepconv2_bn', 'conv2d_4', 'block13_pool', 'batch_normalization_4', 'add_12', 'block14_sepconv1',
    'block14_sepconv1_bn', 'block14_sepconv1_act', 'block14_sepconv2', 'block14_sepconv2_bn', 'block14_sepconv2_act',
  ];
  const xc = BACKBONES.get('xception')!.build(tf, { inputShape: [71, 71, 3], init: 'zeros' });
  const xcNames = xc.layers.map((l) => keras2(l.name));
  assert.equal(xcNames.length, 132);
  assert.deepEqual(xcNames.slice(-xceptionTail.length), xceptionTail);
  xc.dispose();
});

test('simple_cnn and mobilenet_v2 save and load in the tfjs layers format', async () => {
  for (const [name, shape] of [['simple_cnn', [28, 28, 1]], ['mobilenet_v2', [32, 32, 3]]] as const) {
    const m = BACKBONES.get(name)!.build(tf, { inputShape: shape, seed: 2 });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const back = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    assert.deepEqual(back.layers.map((l) => l.name), m.layers.map((l) => l.name));
    const x = tf.randomUniform([1, ...shape], 0, 1, 'float32', 1);
    assert.deepEqual(Array.from((back.predict(x) as tf.Tensor).dataSync()), Array.from((m.predict(x) as tf.Tensor).dataSync()));
    m.dispose();
    back.dispose();
  }
});

test('ImageNet pins: Keras URLs, file names, sizes and MD5s (keras/src/applications/*.py, Keras download logs)', () => {
  const pins: Record<string, [url: string, bytes: number, md5: string | undefined]> = {
    mobilenet_v2: ['https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5', 9_406_464, undefined],
    inception_v3: ['https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5', 87_910_968, 'bcbd6486424b2319ff4ef7d526e38f63'],
    xception: ['https://storage.googleapis.com/tensorflow/keras-applications/xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5', 83_683_744, 'b0042744bf5b25fce3cb969f33bebb97'],
    resnet50: ['https://storage.googleapis.com/tensorflow/keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5', 94_765_736, '4d473c1dd8becc155b73f8504c6f6626'],
    vgg19: ['https://storage.googleapis.com/tensorflow/keras-applications/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5', 80_134_624, '253f8cb515780f3b799900260a226db6'],
  };
  for (const s of BACKBONES.values()) {
    const pin = pins[s.name];
    if (!pin) {
      assert.equal(s.imagenet, undefined, s.name);
      continue;
    }
    const src = s.imagenet!;
    assert.deepEqual([src.base + src.path, src.bytes, src.md5], pin, s.name);
    assert.equal(src.fileName, pin[0].slice(pin[0].lastIndexOf('/') + 1));
    assert.equal(src.sha256, undefined, 'no published sha256 exists; none is pinned');
  }
});
