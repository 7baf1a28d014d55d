/**
 * The training loop: seeded shuffling, mini-batch steps through the fast
 * executor (fast-graph.ts) with softmax cross-entropy (class weights, label
 * smoothing), a learning-rate schedule, validation every epoch, early
 * stopping with restore-best, and an `onEpoch` hook where the caller writes
 * checkpoints. The cosine schedule is applied per step (its value at the
 * fractional epoch), the others per epoch. Resuming = passing the state of the last checkpoint (the
 * weights and optimizer slots already restored): epoch e's shuffle and
 * dropout masks depend only on (seed, phase, e, step), so a resumed run follows
 * the same path as an uninterrupted one.
 *
 * This module does not read stage inputs or write files.
 */
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';
import { shuffledIndices, type SampleSet } from './dataset.js';
import { checkpointWeights, type EpochRecord, type LoopState } from './checkpoint.js';
import { compileFastGraph } from './fast-graph.js';
import { lrAt, setLearningRate, type LrSchedule } from './optimizers.js';

/** Metrics early stopping can watch. */
export const MONITORS = ['val_loss', 'val_accuracy', 'loss', 'accuracy'] as const;
export type Monitor = (typeof MONITORS)[number];

/** Early-stopping settings (patience 0 = off). */
export interface EarlyStopping {
  readonly monitor: Monitor;
  readonly patience: number;
  readonly restore_best: boolean;
  /** Minimum change that counts as an improvement. */
  readonly min_delta: number;
}

/** One training phase (head on features, full model on pixels, or fine-tuning). */
export interface Phase {
  readonly kind: EpochRecord['phase'];
  /** Index of this phase in the run (0-based); part of shuffle/dropout seeds. */
  readonly index: number;
  readonly model: tfjs.LayersModel;
  readonly train: SampleSet;
  readonly validation?: SampleSet;
  /** Turns a gathered float32 batch (n samples) into the model input tensor (reshape, preprocessing). */
  toInput(batch: Float32Array, n: number): tfjs.Tensor;
  readonly epochs: number;
  readonly lr: number;
  readonly optimizer: tfjs.Optimizer;
}

/** Loop options shared by phases. */
export interface LoopOptions {
  readonly batchSize: number;
  /** Batches per epoch; undefined = one pass over the train set. */
  readonly stepsPerEpoch?: number;
  readonly lrSchedule: LrSchedule;
  readonly earlyStopping: EarlyStopping;
  /** Per-class loss weight (Keras `class_weight`), or undefined for all 1. */
  readonly classWeights?: Float32Array;
  readonly labelSmoothing: number;
  readonly numClasses: number;
  readonly seed: number;
}

/** Callbacks into the stage. */
export interface LoopHooks {
  readonly signal: AbortSignal;
  progress(done: number, total: number, label: string): void;
  info(message: string): void;
  /** Called after every epoch with the new state (write checkpoints here). `isBest` when the monitored value improved. */
  onEpoch(state: LoopState, isBest: boolean): Promise<void>;
}

/** Thrown (as a value-carrying error) when the run's signal aborts mid-epoch. */
export class TrainingCancelled extends Error {}

function lossFn(tf: Tf, logits: tfjs.Tensor, labels: Int32Array, opts: LoopOptions, softmaxOutput: boolean): tfjs.Scalar {
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), opts.numClasses).toFloat();
  const ys = opts.labelSmoothing > 0 ? tf.add(tf.mul(y, 1 - opts.labelSmoothing), opts.labelSmoothing / opts.numClasses) : y;
  const logp = softmaxOutput ? tf.logSoftmax(logits) : tf.log(tf.clipByValue(logits, 1e-7, 1));
  const ce = tf.neg(tf.sum(tf.mul(ys, logp), -1));
  if (opts.classWeights === undefined) return tf.mean(ce) as tfjs.Scalar;
  const w = tf.tensor1d(Float32Array.from(labels, (l) => opts.classWeights![l]!));
  return tf.mean(tf.mul(ce, w)) as tfjs.Scalar;
}

/** Loss and accuracy of `model` on `set` (inference mode). */
export async function evaluateSet(tf: Tf, model: tfjs.LayersModel, set: SampleSet, toInput: Phase['toInput'], batchSize: number, opts: LoopOptions): Promise<{ loss: number; accuracy: number }> {
  const graph = compileFastGraph(tf, model);
  let loss = 0;
  let correct = 0;
  for (let s = 0; s < set.size; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, set.size - s) }, (_, k) => s + k);
    const labels = set.labels.subarray(s, s + idx.length);
    const [l, pred] = tf.tidy(() => {
      const logits = graph.forward(toInput(set.gather(idx), idx.length), { training: false, logits: true });
      const plain: LoopOptions = { ...opts, labelSmoothing: 0, classWeights: undefined };
      return [tf.mul(lossFn(tf, logits, labels, plain, graph.softmaxOutput), idx.length), tf.argMax(logits, -1)];
    });
    loss += (await l.data())[0]!;
    const p = await pred.data();
    for (let k = 0; k < idx.length; k++) if (p[k] === labels[k]) correct++;
    l.dispose();
    pred.dispose();
  }
  return { loss: set.size === 0 ? 0 : loss / set.size, accuracy: set.size === 0 ? 0 : correct / set.size };
}

function monitorValue(r: EpochRecord, m: Monitor): number | undefined {
  return r[m];
}

/**
 * Runs `phase` from `start` (a fresh state or a restored checkpoint's) and
 * returns the final state. Early stopping with restore_best puts the best
 * epoch's weights back into the model before returning.
 */
export async function runPhase(tf: Tf, phase: Phase, opts: LoopOptions, start: LoopState, hooks: LoopHooks): Promise<LoopState> {
  const graph = compileFastGraph(tf, phase.model);
  if (graph.genericLayers.length > 0) hooks.info(`layers without a fast training path (tfjs gradients): ${graph.genericLayers.join(', ')}`);
  const vars = phase.model.trainableWeights.map((w) => w.read() as tfjs.Variable);
  const ckptWeights = checkpointWeights(phase.model);
  const n = phase.train.size;
  if (n === 0) throw new Error('the train split is empty');
  const batch = Math.min(opts.batchSize, n);
  const steps = opts.stepsPerEpoch ?? Math.ceil(n / batch);
  let state = start;
  let bestWeights: tfjs.Tensor[] | undefined;
  const higherIsBetter = opts.earlyStopping.monitor.endsWith('accuracy');
  for (let epoch = start.nextEpoch; epoch < phase.epochs && !state.stopped; epoch++) {
    const lr = lrAt(phase.lr, opts.lrSchedule, epoch, phase.epochs);
    setLearningRate(phase.optimizer, lr);
    const t0 = performance.now();
    // Sample order: concatenated seeded permutations (more than one when steps*batch > n).
    const epochSeed = (opts.seed * 1_000_003 + phase.index * 10_007 + epoch) >>> 0;
    let perm = shuffledIndices(n, epochSeed);
    let permRound = 0;
    let cursor = 0;
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let step = 0; step < steps; step++) {
      if (hooks.signal.aborted) throw new TrainingCancelled('training cancelled');
      const idx: number[] = [];
      while (idx.length < batch) {
        if (cursor >= n) {
          if (opts.stepsPerEpoch === undefined) break;
          perm = shuffledIndices(n, (epochSeed + ++permRound * 7_919) >>> 0);
          cursor = 0;
        }
        idx.push(perm[cursor++]!);
      }
      if (idx.length === 0) break;
      // Cosine decays per step (the epoch-start rate is what the record shows): a per-epoch staircase leaves the
      // last epoch at a high rate when there are few epochs (4 epochs: the last ran at 0.29x the base rate).
      if (opts.lrSchedule.type === 'cosine') setLearningRate(phase.optimizer, lrAt(phase.lr, opts.lrSchedule, epoch + step / steps, phase.epochs));
      const labels = Int32Array.from(idx, (i) => phase.train.labels[i]!);
      const x = phase.train.gather(idx);
      let predicted: tfjs.Tensor | undefined;
      // The input is computed outside the gradient tape: preprocessing (or a frozen backbone) needs no gradients,
      // and taped ops would keep every intermediate activation alive until the step ends.
      const input = tf.tidy(() => phase.toInput(x, idx.length));
      const loss = tf.tidy(() =>
        phase.optimizer.minimize(
          () => {
            const logits = graph.forward(input, { training: true, logits: true, seed: (epochSeed * 131 + step) >>> 0 });
            predicted = tf.keep(tf.argMax(logits, -1));
            return lossFn(tf, logits, labels, opts, graph.softmaxOutput);
          },
          true,
          vars,
        )!,
      ) as tfjs.Scalar;
      input.dispose();
      const lv = (await loss.data())[0]!;
      loss.dispose();
      const p = await predicted!.data();
      predicted!.dispose();
      for (let k = 0; k < idx.length; k++) if (p[k] === labels[k]) correct++;
      lossSum += lv * idx.length;
      seen += idx.length;
      const secs = (performance.now() - t0) / 1000;
      hooks.progress(step + 1, steps, `epoch ${epoch + 1}/${phase.epochs} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(4)} ${Math.round(seen / secs)} samples/s`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const rec: EpochRecord = {
      phase: phase.kind,
      epoch: epoch + 1,
      loss: lossSum / seen,
      accuracy: correct / seen,
      ...(phase.validation !== undefined && phase.validation.size > 0
        ? await evaluateSet(tf, phase.model, phase.validation, phase.toInput, Math.max(batch, 256), opts).then((v) => ({ val_loss: v.loss, val_accuracy: v.accuracy }))
        : {}),
      lr,
      samples_per_s: seen / seconds,
      seconds,
    };
    const history = [...state.history, rec];
    const mv = monitorValue(rec, opts.earlyStopping.monitor) ?? monitorValue(rec, opts.earlyStopping.monitor.replace('val_', '') as Monitor)!;
    const improved =
      state.best === undefined || (higherIsBetter ? mv > state.best.value + opts.earlyStopping.min_delta : mv < state.best.value - opts.earlyStopping.min_delta);
    const best = improved ? { value: mv, historyIndex: history.length - 1 } : state.best;
    const sinceBest = improved ? 0 : state.sinceBest + 1;
    const stopped = opts.earlyStopping.patience > 0 && sinceBest >= opts.earlyStopping.patience;
    if (improved && opts.earlyStopping.restore_best) {
      bestWeights?.forEach((t) => t.dispose());
      bestWeights = ckptWeights.map((w) => tf.keep(w.read().clone()));
    }
    state = { phase: phase.index, nextEpoch: epoch + 1, history, ...(best !== undefined ? { best } : {}), sinceBest, stopped };
    hooks.info(
      `epoch ${rec.epoch}/${phase.epochs}: loss ${rec.loss.toFixed(4)} acc ${rec.accuracy.toFixed(4)}` +
        (rec.val_loss !== undefined ? ` val_loss ${rec.val_loss.toFixed(4)} val_acc ${rec.val_accuracy!.toFixed(4)}` : '') +
        ` lr ${lr.toPrecision(3)} ${Math.round(rec.samples_per_s)} samples/s${stopped ? ' (early stop)' : ''}`,
    );
    await hooks.onEpoch(state, improved);
  }
  if (opts.earlyStopping.restore_best && bestWeights !== undefined && state.best !== undefined && state.best.historyIndex !== state.history.length - 1) {
    ckptWeights.forEach((w, i) => w.write(bestWeights![i]!));
    hooks.info(`restored the best weights (epoch ${state.history[state.best.historyIndex]!.epoch}, ${opts.earlyStopping.monitor} ${state.best.value.toFixed(4)})`);
  }
  bestWeights?.forEach((t) => t.dispose());
  return state;
}
