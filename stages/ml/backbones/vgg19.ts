/**
 * VGG19, layer for layer as keras.applications `vgg19.py`: five blocks of
 * 3x3 same-padded ReLU convs (2, 2, 4, 4, 4 of 64..512 filters) named
 * `blockB_convC`, each ending in a 2x2 max-pool `blockB_pool`.
 *
 * This module only builds the architecture (no fc layers: include_top=False).
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize, buildKit } from './layers.js';
import { kerasWeights, type BackboneSpec, type BuildOptions, type Tf } from './spec.js';

type T = tfjs.SymbolicTensor;

/** [filters, convs] per block. */
const BLOCKS: readonly (readonly [number, number])[] = [
  [64, 2],
  [128, 2],
  [256, 4],
  [512, 4],
  [512, 4],
];

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('vgg19', opts.inputShape, spec.minSize);
  const kit = buildKit(tf, opts);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  let x = input as T;
  BLOCKS.forEach(([filters, convs], b) => {
    for (let c = 1; c <= convs; c++) {
      x = tf.layers
        .conv2d({ filters, kernelSize: 3, activation: 'relu', padding: 'same', kernelInitializer: kit.kernel(), name: `block${b + 1}_conv${c}` })
        .apply(x) as T;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as T;
  });
  return tf.model({ inputs: input, outputs: x, name: 'vgg19' });
}

/** Registry entry for `vgg19`. */
export const spec: BackboneSpec = {
  name: 'vgg19',
  description: 'VGG19 (keras.applications): 512-d features, caffe preprocessing; slow on a CPU',
  defaultSize: [224, 224],
  minSize: [32, 32],
  channels: 3,
  preprocessing: 'caffe',
  featureLayer: 'block5_pool',
  featureDim: 512,
  output: 'map',
  imagenet: kerasWeights('vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5', 80134624, '253f8cb515780f3b799900260a226db6'),
  pretrainedKinds: ['imagenet', 'none'],
  params: { total: 20024384, trainable: 20024384, nonTrainable: 0 },
  build,
};
