/**
 * Optimizer construction and learning-rate schedules for the train stage.
 * Schedules are per epoch (Keras LearningRateScheduler style) and pure, so a
 * resumed run computes the same rate for the same epoch.
 *
 * This module does not run training steps.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';
import { unreachable } from '../../src/result.js';

/** Optimizers the train stage offers. */
export const OPTIMIZERS = ['adam', 'sgd', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** Learning-rate schedules. */
export const LR_SCHEDULES = ['none', 'step', 'cosine', 'exponential'] as const;
export type LrScheduleName = (typeof LR_SCHEDULES)[number];

/** Schedule params (train's `lr_schedule:` block). */
export interface LrSchedule {
  readonly type: LrScheduleName;
  /** step: multiply by `gamma` every `step_size` epochs; exponential: by `gamma` every epoch. */
  readonly gamma: number;
  readonly step_size: number;
  /** cosine: the floor the rate decays to by the end of the last epoch (the trainer applies cosine per step). */
  readonly min_lr: number;
}

/** Learning rate for 0-based `epoch` of `epochs`. */
export function lrAt(base: number, s: LrSchedule, epoch: number, epochs: number): number {
  switch (s.type) {
    case 'none':
      return base;
    case 'step':
      return base * Math.pow(s.gamma, Math.floor(epoch / Math.max(1, s.step_size)));
    case 'exponential':
      return base * Math.pow(s.gamma, epoch);
    case 'cosine':
      return s.min_lr + 0.5 * (base - s.min_lr) * (1 + Math.cos((Math.PI * epoch) / Math.max(1, epochs)));
    default:
      return unreachable(s.type);
  }
}

/** Builds the optimizer (sgd with `momentum` > 0 is momentum SGD, optionally Nesterov-free like Keras's default). */
export function makeOptimizer(tf: Tf, name: OptimizerName, lr: number, momentum: number): tfjs.Optimizer {
  switch (name) {
    case 'adam':
      return tf.train.adam(lr);
    case 'sgd':
      return momentum > 0 ? tf.train.momentum(lr, momentum) : tf.train.sgd(lr);
    case 'rmsprop':
      return tf.train.rmsprop(lr, 0.9, momentum);
    default:
      return unreachable(name);
  }
}

/** Changes an optimizer's learning rate in place (tfjs optimizers keep it in a field read on every step). */
export function setLearningRate(opt: tfjs.Optimizer, lr: number): void {
  const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  o.learningRate = lr;
}
