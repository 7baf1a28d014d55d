/**
 * Xception, layer for layer as keras.applications `xception.py`: entry flow
 * (`block1_*` .. `block4_*` with 1x1/2 conv residual shortcuts), middle flow
 * (`block5`..`block12`, 3 separable convs each, identity shortcut), exit flow
 * (`block13_*`, `block14_*`). The residual convs, their BatchNorms and the adds
 * are unnamed in Keras and get Keras 3's automatic names (`conv2d`,
 * `batch_normalization`, `add`, with `_1`, `_2`, ... suffixes).
 *
 * This module only builds the architecture.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize, buildKit, type BuildKit } from './layers.js';
import { kerasWeights, type BackboneSpec, type BuildOptions, type Tf } from './spec.js';

type T = tfjs.SymbolicTensor;

function sep(kit: BuildKit, x: T, filters: number, name: string): T {
  const tf = kit.tf;
  const y = tf.layers
    .separableConv2d({
      filters,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      depthwiseInitializer: kit.kernel(),
      pointwiseInitializer: kit.kernel(),
      name,
    })
    .apply(x) as T;
  return tf.layers.batchNormalization({ axis: -1, name: `${name}_bn` }).apply(y) as T;
}

function relu(kit: BuildKit, x: T, name: string): T {
  return kit.tf.layers.activation({ activation: 'relu', name }).apply(x) as T;
}

function residual(kit: BuildKit, x: T, filters: number): T {
  const tf = kit.tf;
  const r = tf.layers
    .conv2d({ filters, kernelSize: 1, strides: 2, padding: 'same', useBias: false, kernelInitializer: kit.kernel(), name: kit.auto('conv2d') })
    .apply(x) as T;
  return tf.layers.batchNormalization({ axis: -1, name: kit.auto('batch_normalization') }).apply(r) as T;
}

function poolAdd(kit: BuildKit, x: T, res: T, poolName: string): T {
  const tf = kit.tf;
  const p = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: poolName }).apply(x) as T;
  return tf.layers.add({ name: kit.auto('add') }).apply([p, res]) as T;
}

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('xception', opts.inputShape, spec.minSize);
  const kit = buildKit(tf, opts);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  let x = tf.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, useBias: false, kernelInitializer: kit.kernel(), name: 'block1_conv1' }).apply(input) as T;
  x = tf.layers.batchNormalization({ axis: -1, name: 'block1_conv1_bn' }).apply(x) as T;
  x = relu(kit, x, 'block1_conv1_act');
  x = tf.layers.conv2d({ filters: 64, kernelSize: 3, useBias: false, kernelInitializer: kit.kernel(), name: 'block1_conv2' }).apply(x) as T;
  x = tf.layers.batchNormalization({ axis: -1, name: 'block1_conv2_bn' }).apply(x) as T;
  x = relu(kit, x, 'block1_conv2_act');

  // block 2 (no leading ReLU: the previous one already applied)
  let res = residual(kit, x, 128);
  x = sep(kit, x, 128, 'block2_sepconv1');
  x = relu(kit, x, 'block2_sepconv2_act');
  x = sep(kit, x, 128, 'block2_sepconv2');
  x = poolAdd(kit, x, res, 'block2_pool');

  for (const [b, filters] of [[3, 256], [4, 728]] as const) {
    res = residual(kit, x, filters);
    x = relu(kit, x, `block${b}_sepconv1_act`);
    x = sep(kit, x, filters, `block${b}_sepconv1`);
    x = relu(kit, x, `block${b}_sepconv2_act`);
    x = sep(kit, x, filters, `block${b}_sepconv2`);
    x = poolAdd(kit, x, res, `block${b}_pool`);
  }

  for (let i = 0; i < 8; i++) {
    const prefix = `block${i + 5}`;
    res = x;
    for (let s = 1; s <= 3; s++) {
      x = relu(kit, x, `${prefix}_sepconv${s}_act`);
      x = sep(kit, x, 728, `${prefix}_sepconv${s}`);
    }
    x = tf.layers.add({ name: kit.auto('add') }).apply([x, res]) as T;
  }

  res = residual(kit, x, 1024);
  x = relu(kit, x, 'block13_sepconv1_act');
  x = sep(kit, x, 728, 'block13_sepconv1');
  x = relu(kit, x, 'block13_sepconv2_act');
  x = sep(kit, x, 1024, 'block13_sepconv2');
  x = poolAdd(kit, x, res, 'block13_pool');

  x = sep(kit, x, 1536, 'block14_sepconv1');
  x = relu(kit, x, 'block14_sepconv1_act');
  x = sep(kit, x, 2048, 'block14_sepconv2');
  x = relu(kit, x, 'block14_sepconv2_act');
  return tf.model({ inputs: input, outputs: x, name: 'xception' });
}

/** Registry entry for `xception`. */
export const spec: BackboneSpec = {
  name: 'xception',
  description: 'Xception (keras.applications): 2048-d features at 299x299 (min 71x71)',
  defaultSize: [299, 299],
  minSize: [71, 71],
  channels: 3,
  preprocessing: 'tf',
  featureLayer: 'block14_sepconv2_act',
  featureDim: 2048,
  output: 'map',
  imagenet: kerasWeights('xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5', 83683744, 'b0042744bf5b25fce3cb969f33bebb97'),
  pretrainedKinds: ['imagenet', 'none'],
  params: { total: 20861480, trainable: 20806952, nonTrainable: 54528 },
  build,
};
