/**
 * `simple_cnn`: a small CNN trained from scratch, for tiny images such as
 * Fashion-MNIST (28x28 grayscale). Two VGG-style blocks of
 * conv3x3-BN-ReLU x2, 2x2 max-pool and dropout 0.25, then flatten:
 * 32, 32 | pool | 64, 64 | pool | flatten → 7x7x64 = 3136 features at 28x28.
 * Convolutions have no bias (the following BatchNorm's beta is the bias).
 * BatchNorm momentum is 0.9, not Keras's 0.99: trained from scratch on small
 * data, the moving statistics must catch up within tens of steps, or inference
 * (which uses them) lags far behind training. Measured on 6,000 Fashion-MNIST
 * images (+ dense-128 head, Adam 1e-3, batch 64, wasm): with 0.99 the test
 * accuracy after 1 epoch was 0.22 (0.37 after 2, train 0.74); with 0.9 it was
 * 0.77 after 1 epoch.
 *
 * This module only builds the architecture; there are no pretrained weights
 * for it (train it, or load your own .h5 with `weights: ./file.h5`).
 */
import type * as tfjs from '@tensorflow/tfjs';
import { assertMinSize, buildKit } from './layers.js';
import type { BackboneSpec, BuildOptions, Tf } from './spec.js';

function build(tf: Tf, opts: BuildOptions): tfjs.LayersModel {
  assertMinSize('simple_cnn', opts.inputShape, spec.minSize);
  const kit = buildKit(tf, opts);
  const input = tf.input({ shape: [...opts.inputShape], name: 'input_layer' });
  let x = input as tfjs.SymbolicTensor;
  const convBnRelu = (filters: number, id: string): void => {
    x = tf.layers
      .conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: kit.kernel(), name: `${id}_conv` })
      .apply(x) as tfjs.SymbolicTensor;
    x = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-3, name: `${id}_bn` }).apply(x) as tfjs.SymbolicTensor;
    x = tf.layers.activation({ activation: 'relu', name: `${id}_relu` }).apply(x) as tfjs.SymbolicTensor;
  };
  convBnRelu(32, 'block1_1');
  convBnRelu(32, 'block1_2');
  x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'block1_pool' }).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.25, seed: opts.seed, name: 'block1_dropout' }).apply(x) as tfjs.SymbolicTensor;
  convBnRelu(64, 'block2_1');
  convBnRelu(64, 'block2_2');
  x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'block2_pool' }).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.25, seed: opts.seed === undefined ? undefined : opts.seed + 1, name: 'block2_dropout' }).apply(x) as tfjs.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tfjs.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x, name: 'simple_cnn' });
}

/** Registry entry for `simple_cnn`. */
export const spec: BackboneSpec = {
  name: 'simple_cnn',
  description: 'small CNN trained from scratch for tiny images (2 conv blocks, flatten), e.g. Fashion-MNIST 28x28x1',
  defaultSize: [28, 28],
  minSize: [4, 4],
  channels: 1,
  preprocessing: 'unit',
  featureLayer: 'flatten',
  featureDim: 7 * 7 * 64,
  output: 'vector',
  pretrainedKinds: ['none'],
  // conv 3*3*1*32 + 3*3*32*32 + 3*3*32*64 + 3*3*64*64 = 288 + 9216 + 18432 + 36864 = 64800 (1 input channel);
  // BN gamma+beta 2*(32+32+64+64) = 384 trainable, moving mean+var 384 non-trainable.
  params: { total: 65568, trainable: 65184, nonTrainable: 384 },
  build,
};
