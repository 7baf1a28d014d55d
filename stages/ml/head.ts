/**
 * The classification head that build-model puts on a backbone: a list of
 * layer configs (default: the seed's BatchNorm → Dropout 0.5 → Dense 128 relu
 * → BatchNorm → Dropout 0.5), always followed by Dense(classes, softmax). It is
 * built as its own tfjs model over a feature vector, so it can be trained on
 * cached features alone or stacked on the backbone for end-to-end training.
 *
 * This module does not pool backbone outputs (see `poolingLayer`), train, or
 * save anything.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';

/** Activations a dense head layer may use. */
export const HEAD_ACTIVATIONS = ['relu', 'relu6', 'elu', 'selu', 'tanh', 'sigmoid', 'linear'] as const;
/** One of {@link HEAD_ACTIVATIONS}. */
export type HeadActivation = (typeof HEAD_ACTIVATIONS)[number];

/** One head layer, as written in `build-model`'s `head:` list. */
export type HeadLayer =
  | { readonly type: 'batch_norm' }
  | { readonly type: 'dropout'; readonly rate: number }
  | { readonly type: 'dense'; readonly units: number; readonly activation?: HeadActivation };

/** The seed's head (before the final softmax layer). */
export const SEED_HEAD: readonly HeadLayer[] = [
  { type: 'batch_norm' },
  { type: 'dropout', rate: 0.5 },
  { type: 'dense', units: 128, activation: 'relu' },
  { type: 'batch_norm' },
  { type: 'dropout', rate: 0.5 },
];

/** How a backbone's 4-D feature map becomes a vector. */
export const POOLINGS = ['avg', 'flatten'] as const;
/** `avg` = global average pooling; `flatten` = the seed's Flatten. */
export type Pooling = (typeof POOLINGS)[number];

/** Name of the final softmax layer (predict and evaluate read its output). */
export const OUTPUT_LAYER = 'predictions';

/**
 * Builds the head model: input [featureDim] → layers → Dense(classes, softmax).
 * Seeded initialisers make `weights: none` runs reproducible.
 */
export function buildHead(tf: Tf, featureDim: number, classes: number, layers: readonly HeadLayer[], seed: number): tfjs.LayersModel {
  const input = tf.input({ shape: [featureDim], name: 'features' });
  let x = input as tfjs.SymbolicTensor;
  let k = 0;
  layers.forEach((l, i) => {
    const name = `head_${i}_${l.type}`;
    switch (l.type) {
      case 'batch_norm':
        x = tf.layers.batchNormalization({ name }).apply(x) as tfjs.SymbolicTensor;
        break;
      case 'dropout':
        x = tf.layers.dropout({ rate: l.rate, name, seed: seed + 1000 + i }).apply(x) as tfjs.SymbolicTensor;
        break;
      case 'dense':
        x = tf.layers
          .dense({ units: l.units, activation: l.activation ?? 'relu', name, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k++ }) })
          .apply(x) as tfjs.SymbolicTensor;
        break;
    }
  });
  const out = tf.layers
    .dense({ units: classes, activation: 'softmax', name: OUTPUT_LAYER, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + k++ }) })
    .apply(x) as tfjs.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'head' });
}

/** A layer turning a [b, h, w, c] map into a vector, or undefined when the backbone already outputs vectors. */
export function poolingLayer(tf: Tf, pooling: Pooling): tfjs.layers.Layer {
  return pooling === 'avg' ? tf.layers.globalAveragePooling2d({ name: 'pool_avg' }) : tf.layers.flatten({ name: 'pool_flatten' });
}

/**
 * Stacks backbone → (pooling) → head into one model sharing the same layer
 * objects (so training it trains them; saving the parts separately saves the result).
 */
export function stackModel(tf: Tf, backbone: tfjs.LayersModel, head: tfjs.LayersModel, pooling: Pooling | undefined): tfjs.LayersModel {
  let x = backbone.outputs[0]!;
  if (pooling !== undefined) x = poolingLayer(tf, pooling).apply(x) as tfjs.SymbolicTensor;
  const y = head.apply(x) as tfjs.SymbolicTensor;
  return tf.model({ inputs: backbone.inputs, outputs: y, name: 'classifier' });
}
