/**
 * InceptionV3, layer for layer as keras.applications `inception_v3.py`. Its
 * conv+BN+ReLU units are unnamed in Keras, so they get Keras 3's automatic
 * names in creation order (`conv2d`, `conv2d_1`, ..., `batch_normalization_93`,
 * `activation_93`); the block outputs are `mixed0`..`mixed10` (and
 * `mixed9_0`, `mixed9_1`). BatchNorm has `scale=False` (no gamma).
 *
 * This module only builds the architecture. Official weight files name the
 * unnamed layers differently (Keras 2 counters); h5.ts matches them by order.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize, buildKit, type BuildKit } from './layers.js';
import { kerasWeights, type BackboneSpec, type BuildOptions, type Tf } from './spec.js';

type T = tfjs.SymbolicTensor;

function convBn(kit: BuildKit, x: T, filters: number, rows: number, cols: number, padding: 'same' | 'valid' = 'same', strides = 1): T {
  const tf = kit.tf;
  let y = tf.layers
    .conv2d({ filters, kernelSize: [rows, cols], strides, padding, useBias: false, kernelInitializer: kit.kernel(), name: kit.auto('conv2d') })
    .apply(x) as T;
  y = tf.layers.batchNormalization({ axis: 3, scale: false, name: kit.auto('batch_normalization') }).apply(y) as T;
  return tf.layers.activation({ activation: 'relu', name: kit.auto('activation') }).apply(y) as T;
}

function avgPool(kit: BuildKit, x: T): T {
  return kit.tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: kit.auto('average_pooling2d') }).apply(x) as T;
}

function maxPool(kit: BuildKit, x: T): T {
  return kit.tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: kit.auto('max_pooling2d') }).apply(x) as T;
}

function concat(kit: BuildKit, xs: T[], name?: string): T {
  return kit.tf.layers.concatenate({ axis: 3, name: name ?? kit.auto('concatenate') }).apply(xs) as T;
}

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('inception_v3', opts.inputShape, spec.minSize);
  const kit = buildKit(tf, opts);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  let x = convBn(kit, input, 32, 3, 3, 'valid', 2);
  x = convBn(kit, x, 32, 3, 3, 'valid');
  x = convBn(kit, x, 64, 3, 3);
  x = maxPool(kit, x);
  x = convBn(kit, x, 80, 1, 1, 'valid');
  x = convBn(kit, x, 192, 3, 3, 'valid');
  x = maxPool(kit, x);

  // mixed 0, 1, 2: 35 x 35 x 256/288/288
  for (const [i, poolFilters] of [32, 64, 64].entries()) {
    const b1 = convBn(kit, x, 64, 1, 1);
    let b5 = convBn(kit, x, 48, 1, 1);
    b5 = convBn(kit, b5, 64, 5, 5);
    let b3 = convBn(kit, x, 64, 1, 1);
    b3 = convBn(kit, b3, 96, 3, 3);
    b3 = convBn(kit, b3, 96, 3, 3);
    const bp = convBn(kit, avgPool(kit, x), poolFilters, 1, 1);
    x = concat(kit, [b1, b5, b3, bp], `mixed${i}`);
  }

  // mixed 3: 17 x 17 x 768
  {
    const b3 = convBn(kit, x, 384, 3, 3, 'valid', 2);
    let bd = convBn(kit, x, 64, 1, 1);
    bd = convBn(kit, bd, 96, 3, 3);
    bd = convBn(kit, bd, 96, 3, 3, 'valid', 2);
    const bp = maxPool(kit, x);
    x = concat(kit, [b3, bd, bp], 'mixed3');
  }

  // mixed 4..7: 17 x 17 x 768
  for (const [i, f] of [128, 160, 160, 192].entries()) {
    const b1 = convBn(kit, x, 192, 1, 1);
    let b7 = convBn(kit, x, f, 1, 1);
    b7 = convBn(kit, b7, f, 1, 7);
    b7 = convBn(kit, b7, 192, 7, 1);
    let bd = convBn(kit, x, f, 1, 1);
    bd = convBn(kit, bd, f, 7, 1);
    bd = convBn(kit, bd, f, 1, 7);
    bd = convBn(kit, bd, f, 7, 1);
    bd = convBn(kit, bd, 192, 1, 7);
    const bp = convBn(kit, avgPool(kit, x), 192, 1, 1);
    x = concat(kit, [b1, b7, bd, bp], `mixed${4 + i}`);
  }

  // mixed 8: 8 x 8 x 1280
  {
    let b3 = convBn(kit, x, 192, 1, 1);
    b3 = convBn(kit, b3, 320, 3, 3, 'valid', 2);
    let b7 = convBn(kit, x, 192, 1, 1);
    b7 = convBn(kit, b7, 192, 1, 7);
    b7 = convBn(kit, b7, 192, 7, 1);
    b7 = convBn(kit, b7, 192, 3, 3, 'valid', 2);
    const bp = maxPool(kit, x);
    x = concat(kit, [b3, b7, bp], 'mixed8');
  }

  // mixed 9, 10: 8 x 8 x 2048
  for (let i = 0; i < 2; i++) {
    const b1 = convBn(kit, x, 320, 1, 1);
    const b3 = convBn(kit, x, 384, 1, 1);
    const b3a = convBn(kit, b3, 384, 1, 3);
    const b3b = convBn(kit, b3, 384, 3, 1);
    const b3c = concat(kit, [b3a, b3b], `mixed9_${i}`);
    let bd = convBn(kit, x, 448, 1, 1);
    bd = convBn(kit, bd, 384, 3, 3);
    const bda = convBn(kit, bd, 384, 1, 3);
    const bdb = convBn(kit, bd, 384, 3, 1);
    const bdc = concat(kit, [bda, bdb]);
    const bp = convBn(kit, avgPool(kit, x), 192, 1, 1);
    x = concat(kit, [b1, b3c, bdc, bp], `mixed${9 + i}`);
  }
  return tf.model({ inputs: input, outputs: x, name: 'inception_v3' });
}

/** Registry entry for `inception_v3`. */
export const spec: BackboneSpec = {
  name: 'inception_v3',
  description: 'InceptionV3 (keras.applications): 2048-d features at 299x299 (min 75x75)',
  defaultSize: [299, 299],
  minSize: [75, 75],
  channels: 3,
  preprocessing: 'tf',
  featureLayer: 'mixed10',
  featureDim: 2048,
  output: 'map',
  imagenet: kerasWeights('inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5', 87910968, 'bcbd6486424b2319ff4ef7d526e38f63'),
  pretrainedKinds: ['imagenet', 'bundled', 'none'],
  params: { total: 21802784, trainable: 21768352, nonTrainable: 34432 },
  build,
};
