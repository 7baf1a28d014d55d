/**
 * Small helpers the architecture builders share: Keras-3-style automatic layer
 * names (so unnamed keras.applications layers get the names a fresh Keras
 * session gives them: `conv2d`, `conv2d_1`, ...), and Keras's default
 * initialisers (tfjs defaults to glorotNormal; Keras uses glorot_uniform).
 *
 * This module does not build whole models and keeps no module state: each
 * build makes its own {@link BuildKit}.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { BuildOptions, Tf } from './spec.js';

/** A tfjs-layers initialiser (the package does not export the class type by name). */
export type Initializer = ReturnType<Tf['initializers']['glorotUniform']>;

/** Per-build helpers: a name counter and initialiser factories. */
export interface BuildKit {
  readonly tf: Tf;
  /** Next Keras-3 auto name for a layer class prefix: `conv2d`, then `conv2d_1`, `conv2d_2`, ... */
  auto(prefix: string): string;
  /** Kernel initialiser (glorot_uniform, seeded per layer when a seed is given; zeros when `init: 'zeros'`). */
  kernel(): Initializer;
}

/** Makes the helpers for one build. */
export function buildKit(tf: Tf, opts: BuildOptions): BuildKit {
  const counts = opts.autoNames ?? new Map<string, number>();
  let k = 0;
  return {
    tf,
    auto(prefix) {
      const n = counts.get(prefix) ?? 0;
      counts.set(prefix, n + 1);
      return n === 0 ? prefix : `${prefix}_${n}`;
    },
    kernel() {
      if (opts.init === 'zeros') return tf.initializers.zeros();
      const seed = opts.seed === undefined ? undefined : opts.seed + k++;
      return tf.initializers.glorotUniform(seed === undefined ? {} : { seed });
    },
  };
}

/** Rejects inputs smaller than the architecture allows, with a message naming the backbone. Throws: callers validate first (loadBackbone returns an error value). */
export function assertMinSize(name: string, inputShape: readonly [number, number, number], min: readonly [number, number]): void {
  if (inputShape[0] < min[0] || inputShape[1] < min[1]) {
    throw new Error(`${name}: input ${inputShape[0]}x${inputShape[1]} is smaller than the minimum ${min[0]}x${min[1]}`);
  }
}

/** Sum of parameter counts of the given weights. */
export function countWeights(weights: readonly tfjs.LayerVariable[]): number {
  return weights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 0), 1), 0);
}

/** Trainable / non-trainable / total parameter counts of a model (BN moving statistics are non-trainable). */
export function paramCounts(model: tfjs.LayersModel): { total: number; trainable: number; nonTrainable: number } {
  const trainable = countWeights(model.trainableWeights);
  const nonTrainable = countWeights(model.nonTrainableWeights);
  return { total: trainable + nonTrainable, trainable, nonTrainable };
}
