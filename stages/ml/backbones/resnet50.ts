/**
 * ResNet50 (v1), layer for layer as keras.applications `resnet.py`:
 * `conv1_pad` → `conv1_conv` (7x7/2) → `conv1_bn` → `conv1_relu` →
 * `pool1_pad` → `pool1_pool`, then stacks conv2..conv5 of bottleneck blocks
 * named `convS_blockB_{0,1,2,3}_{conv,bn}`, `_add`, `_out`. Convs have biases;
 * BatchNorm epsilon 1.001e-5.
 *
 * This module only builds the architecture (no ResNet101/152, no v2).
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize, buildKit, type BuildKit } from './layers.js';
import { kerasWeights, type BackboneSpec, type BuildOptions, type Tf } from './spec.js';

type T = tfjs.SymbolicTensor;

function convBn(kit: BuildKit, x: T, filters: number, kernelSize: number, strides: number, padding: 'same' | 'valid', name: string): T {
  const tf = kit.tf;
  const y = tf.layers.conv2d({ filters, kernelSize, strides, padding, kernelInitializer: kit.kernel(), name: `${name}_conv` }).apply(x) as T;
  return tf.layers.batchNormalization({ axis: -1, epsilon: 1.001e-5, name: `${name}_bn` }).apply(y) as T;
}

function block(kit: BuildKit, x: T, filters: number, stride: number, convShortcut: boolean, name: string): T {
  const tf = kit.tf;
  const shortcut = convShortcut ? convBn(kit, x, 4 * filters, 1, stride, 'valid', `${name}_0`) : x;
  let y = convBn(kit, x, filters, 1, stride, 'valid', `${name}_1`);
  y = tf.layers.activation({ activation: 'relu', name: `${name}_1_relu` }).apply(y) as T;
  y = convBn(kit, y, filters, 3, 1, 'same', `${name}_2`);
  y = tf.layers.activation({ activation: 'relu', name: `${name}_2_relu` }).apply(y) as T;
  y = convBn(kit, y, 4 * filters, 1, 1, 'valid', `${name}_3`);
  y = tf.layers.add({ name: `${name}_add` }).apply([shortcut, y]) as T;
  return tf.layers.activation({ activation: 'relu', name: `${name}_out` }).apply(y) as T;
}

function stack(kit: BuildKit, x: T, filters: number, blocks: number, stride1: number, name: string): T {
  let y = block(kit, x, filters, stride1, true, `${name}_block1`);
  for (let i = 2; i <= blocks; i++) y = block(kit, y, filters, 1, false, `${name}_block${i}`);
  return y;
}

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('resnet50', opts.inputShape, spec.minSize);
  const kit = buildKit(tf, opts);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  let x = tf.layers.zeroPadding2d({ padding: [[3, 3], [3, 3]], name: 'conv1_pad' }).apply(input) as T;
  x = tf.layers.conv2d({ filters: 64, kernelSize: 7, strides: 2, kernelInitializer: kit.kernel(), name: 'conv1_conv' }).apply(x) as T;
  x = tf.layers.batchNormalization({ axis: -1, epsilon: 1.001e-5, name: 'conv1_bn' }).apply(x) as T;
  x = tf.layers.activation({ activation: 'relu', name: 'conv1_relu' }).apply(x) as T;
  x = tf.layers.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: 'pool1_pad' }).apply(x) as T;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x) as T;
  x = stack(kit, x, 64, 3, 1, 'conv2');
  x = stack(kit, x, 128, 4, 2, 'conv3');
  x = stack(kit, x, 256, 6, 2, 'conv4');
  x = stack(kit, x, 512, 3, 2, 'conv5');
  return tf.model({ inputs: input, outputs: x, name: 'resnet50' });
}

/** Registry entry for `resnet50`. */
export const spec: BackboneSpec = {
  name: 'resnet50',
  description: 'ResNet50 v1 (keras.applications): 2048-d features, caffe preprocessing',
  defaultSize: [224, 224],
  minSize: [32, 32],
  channels: 3,
  preprocessing: 'caffe',
  featureLayer: 'conv5_block3_out',
  featureDim: 2048,
  output: 'map',
  imagenet: kerasWeights('resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5', 94765736, '4d473c1dd8becc155b73f8504c6f6626'),
  pretrainedKinds: ['imagenet', 'none'],
  params: { total: 23587712, trainable: 23534592, nonTrainable: 53120 },
  build,
};
