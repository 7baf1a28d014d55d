/**
 * MobileNetV2 (alpha = 1.0), layer for layer as keras.applications
 * `mobilenet_v2.py` (Keras 3): `Conv1` (3x3/2, same) → `bn_Conv1` →
 * `Conv1_relu` (ReLU6), 17 inverted residual blocks (`expanded_conv_*`,
 * `block_{1..16}_*`), `Conv_1` (1x1, 1280) → `Conv_1_bn` → `out_relu`.
 * BatchNorm epsilon 1e-3, momentum 0.999 as in Keras.
 *
 * This module only builds the architecture (no weights, no other alpha).
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize, buildKit, type BuildKit } from './layers.js';
import { kerasWeights, type BackboneSpec, type BuildOptions, type Tf } from './spec.js';

type T = tfjs.SymbolicTensor;

/** Keras `_make_divisible`: round to a multiple of `divisor`, never below 90% of `v`. */
export function makeDivisible(v: number, divisor: number): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Keras `imagenet_utils.correct_pad` for a 3x3 kernel: ((top, bottom), (left, right)). */
function correctPad(h: number | null, w: number | null): [[number, number], [number, number]] {
  const adj = h === null || w === null ? [1, 1] : [1 - (h % 2), 1 - (w % 2)];
  return [
    [1 - adj[0], 1],
    [1 - adj[1], 1],
  ];
}

function bn(kit: BuildKit, name: string): tfjs.layers.Layer {
  return kit.tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name });
}

function invertedResBlock(kit: BuildKit, inputs: T, expansion: number, stride: number, filters: number, blockId: number): T {
  const tf = kit.tf;
  const inChannels = inputs.shape[3] as number;
  const pointwise = makeDivisible(filters, 8);
  let x = inputs;
  let prefix = `block_${blockId}_`;
  if (blockId) {
    x = tf.layers
      .conv2d({ filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: kit.kernel(), name: `${prefix}expand` })
      .apply(x) as T;
    x = bn(kit, `${prefix}expand_BN`).apply(x) as T;
    x = tf.layers.reLU({ maxValue: 6, name: `${prefix}expand_relu` }).apply(x) as T;
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) {
    x = tf.layers.zeroPadding2d({ padding: correctPad(x.shape[1], x.shape[2]), name: `${prefix}pad` }).apply(x) as T;
  }
  x = tf.layers
    .depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      useBias: false,
      padding: stride === 1 ? 'same' : 'valid',
      depthwiseInitializer: kit.kernel(),
      name: `${prefix}depthwise`,
    })
    .apply(x) as T;
  x = bn(kit, `${prefix}depthwise_BN`).apply(x) as T;
  x = tf.layers.reLU({ maxValue: 6, name: `${prefix}depthwise_relu` }).apply(x) as T;
  x = tf.layers
    .conv2d({ filters: pointwise, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: kit.kernel(), name: `${prefix}project` })
    .apply(x) as T;
  x = bn(kit, `${prefix}project_BN`).apply(x) as T;
  if (inChannels === pointwise && stride === 1) {
    return tf.layers.add({ name: `${prefix}add` }).apply([inputs, x]) as T;
  }
  return x;
}

/** [filters, stride, expansion] of blocks 0..16, as in Keras. */
const BLOCKS: readonly (readonly [number, number, number])[] = [
  [16, 1, 1],
  [24, 2, 6], [24, 1, 6],
  [32, 2, 6], [32, 1, 6], [32, 1, 6],
  [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
  [96, 1, 6], [96, 1, 6], [96, 1, 6],
  [160, 2, 6], [160, 1, 6], [160, 1, 6],
  [320, 1, 6],
];

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('mobilenet_v2', opts.inputShape, spec.minSize);
  const kit = buildKit(tf, opts);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  let x = tf.layers
    .conv2d({ filters: makeDivisible(32, 8), kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: kit.kernel(), name: 'Conv1' })
    .apply(input) as T;
  x = bn(kit, 'bn_Conv1').apply(x) as T;
  x = tf.layers.reLU({ maxValue: 6, name: 'Conv1_relu' }).apply(x) as T;
  BLOCKS.forEach(([filters, stride, expansion], id) => {
    x = invertedResBlock(kit, x, expansion, stride, filters, id);
  });
  x = tf.layers.conv2d({ filters: 1280, kernelSize: 1, useBias: false, kernelInitializer: kit.kernel(), name: 'Conv_1' }).apply(x) as T;
  x = bn(kit, 'Conv_1_bn').apply(x) as T;
  x = tf.layers.reLU({ maxValue: 6, name: 'out_relu' }).apply(x) as T;
  const rows = opts.inputShape[0];
  return tf.model({ inputs: input, outputs: x, name: `mobilenetv2_1.00_${rows}` });
}

/** Registry entry for `mobilenet_v2` (alpha 1.0). */
export const spec: BackboneSpec = {
  name: 'mobilenet_v2',
  description: 'MobileNetV2 alpha=1.0 (keras.applications): 1280-d features, the practical backbone on a CPU',
  defaultSize: [224, 224],
  minSize: [32, 32],
  channels: 3,
  preprocessing: 'tf',
  featureLayer: 'out_relu',
  featureDim: 1280,
  output: 'map',
  // Keras publishes no hash for MobileNetV2 (mobilenet_v2.py calls get_file without file_hash); the size is
  // from Keras's own download log ("9406464/9406464"). See imagenet.ts for what that means for verification.
  imagenet: kerasWeights('mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5', 9406464),
  pretrainedKinds: ['imagenet', 'bundled', 'none'],
  params: { total: 2257984, trainable: 2223872, nonTrainable: 34112 },
  build,
};
