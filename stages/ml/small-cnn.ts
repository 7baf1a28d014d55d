/**
 * A configurable variant of the registry's `simple_cnn` for build-model's
 * `cnn:` param: `filters.length` blocks of `convs_per_block` ×
 * (conv3x3 no-bias → BN → ReLU), each followed by 2x2 max-pool and dropout,
 * then flatten. BatchNorm momentum is 0.9 (Keras: 0.99) so the moving statistics
 * settle within the few hundred steps of a small dataset. With the registry's settings (filters [32, 64], 2 convs per
 * block, dropout 0.25) build-model uses the registry's builder itself; this
 * module only exists so a lighter net can be chosen where training time
 * matters (measured: one conv per block trains ~2.5x faster per epoch on 2
 * wasm threads; see bench/train.bench.ts).
 *
 * This module does not load weights or add a classification head.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';

/** `cnn:` params of build-model (used with backbone simple_cnn). */
export interface SmallCnnConfig {
  /** Filters of each block; one block per entry. */
  readonly filters: readonly number[];
  readonly convs_per_block: number;
  /** Dropout rate after each block's pool (0 = none). */
  readonly dropout: number;
}

/** The registry's simple_cnn settings. */
export const REGISTRY_SIMPLE_CNN: SmallCnnConfig = { filters: [32, 64], convs_per_block: 2, dropout: 0.25 };

/** True when `c` equals the registry's simple_cnn (so its builder is used). */
export function isRegistrySimpleCnn(c: SmallCnnConfig): boolean {
  return c.convs_per_block === 2 && c.dropout === 0.25 && c.filters.length === 2 && c.filters[0] === 32 && c.filters[1] === 64;
}

/** Flattened feature size for an input [h, w]. */
export function smallCnnFeatureDim(c: SmallCnnConfig, size: readonly [number, number]): number {
  let [h, w] = size;
  for (let i = 0; i < c.filters.length; i++) {
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
  return h * w * c.filters[c.filters.length - 1]!;
}

/** Builds the net with seeded glorot-uniform kernels (layer names follow simple_cnn's: block{b}_{k}_conv …). */
export function buildSmallCnn(tf: Tf, c: SmallCnnConfig, inputShape: readonly [number, number, number], seed: number): tfjs.LayersModel {
  const input = tf.input({ shape: [...inputShape], name: 'input_layer' });
  let x = input as tfjs.SymbolicTensor;
  let k = 0;
  c.filters.forEach((filters, b) => {
    for (let j = 0; j < c.convs_per_block; j++) {
      const id = `block${b + 1}_${j + 1}`;
      x = tf.layers
        .conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k++ }), name: `${id}_conv` })
        .apply(x) as tfjs.SymbolicTensor;
      x = tf.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-3, name: `${id}_bn` }).apply(x) as tfjs.SymbolicTensor;
      x = tf.layers.activation({ activation: 'relu', name: `${id}_relu` }).apply(x) as tfjs.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as tfjs.SymbolicTensor;
    if (c.dropout > 0) x = tf.layers.dropout({ rate: c.dropout, seed: seed + 100 + b, name: `block${b + 1}_dropout` }).apply(x) as tfjs.SymbolicTensor;
  });
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tfjs.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x, name: 'simple_cnn' });
}
