/**
 * `train`: trains the classifier that build-model described.
 *
 * - With a `features` input: trains the head on cached backbone features (the
 *   backbone never runs); then, if build-model set `fine_tune`, unfreezes the
 *   backbone from the named layer and trains end to end on pixels at the
 *   fine-tune learning rate (needs `resize` + `partition`).
 * - Without features: trains backbone + head on pixels (`resize` +
 *   `partition`, plus `augment` variants for the train split): `simple_cnn`
 *   from scratch, or the seed's way with a frozen pretrained backbone.
 *
 * Writes `spec.json`, `head/`, `backbone/` (when the backbone was trained),
 * `checkpoints/epoch-NNN/` (every epoch: weights + loop state, no optimizer slots), `best/` (the best epoch's model),
 * `history.jsonl`, `metrics.json` and TensorBoard event files in
 * `tensorboard/{train,validation}/` (ml/tensorboard.ts; plus tfjs-node's own
 * writer's in `tensorboard-tfjs-node/` when that is the backend). Resumable
 * checkpoints live outside the out dir, under `<cacheDir>/train-resume/<key>`,
 * where key = hash of the
 * params, the seed, and the identity of every input (spec.json, features /
 * shard / partition indexes); an interrupted run with the same key continues
 * from its last completed epoch. The directory is removed after success.
 *
 * This stage does not evaluate on the test split (evaluate does).
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type * as tfjs from '@tensorflow/tfjs';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { DataInputError } from './lib/data-error.js';
import { readPartition } from './lib/splits.js';
import { writeFileAtomic } from '../src/cache/atomic.js';
import { preprocess, type Tf } from './ml/backbones/registry.js';
import { checkpointWeights, loadCheckpoint, saveCheckpoint, type EpochRecord, type LoopState } from './ml/checkpoint.js';
import { pixelSplits, readFeatures, type SampleSet } from './ml/dataset.js';
import { poolingLayer, stackModel } from './ml/head.js';
import { compileInference } from './ml/fuse.js';
import { BACKBONE_DIR, HEAD_DIR, imageResizeOf, loadModel, loadSpecBackbone, readSpec, saveModel, writeSpec, type ModelSpec } from './ml/model-io.js';
import { ShardReader } from './lib/shards.js';
import { makeOptimizer, type LrSchedule, type OptimizerName } from './ml/optimizers.js';
import { backendResult, stageBackend, type ComputeParams } from './ml/runtime.js';
import { runPhase, TrainingCancelled, type EarlyStopping, type LoopOptions, type Phase } from './ml/trainer.js';
import { tensorBoardLogger, TENSORBOARD_DIR, tfjsNodeSummaryWriters, type EpochLogger } from './ml/tensorboard.js';
import { tfjsRuntimeFacts } from './lib/runtime-facts.js';

/** `train` params (see schemas/stages/train.json). */
export interface TrainParams extends ComputeParams {
  readonly optimizer: OptimizerName;
  readonly lr: number;
  /** sgd / rmsprop momentum. */
  readonly momentum: number;
  readonly lr_schedule: LrSchedule;
  readonly batch_size: number;
  readonly epochs: number;
  /** Batches per epoch (the seed's 200); null = one pass over the train split. */
  readonly steps_per_epoch: number | null;
  readonly early_stopping: EarlyStopping;
  /** `none`, `balanced` (n / (classes * count)), or class name → weight. */
  readonly class_weight: 'none' | 'balanced' | Readonly<Record<string, number>>;
  readonly label_smoothing: number;
  /** Evaluate on the validation split after every epoch. */
  readonly validate: boolean;
}

/** Defaults (mirrors the schema). */
export const TRAIN_DEFAULTS: TrainParams = {
  optimizer: 'adam',
  lr: 0.001,
  momentum: 0.9,
  lr_schedule: { type: 'none', gamma: 0.1, step_size: 10, min_lr: 0 },
  batch_size: 64,
  epochs: 10,
  steps_per_epoch: null,
  early_stopping: { monitor: 'val_loss', patience: 0, restore_best: true, min_delta: 0 },
  class_weight: 'none',
  label_smoothing: 0,
  validate: true,
  device: 'auto',
  backend: null,
  threads: null,
};

function withDefaults(p: Partial<TrainParams>): TrainParams {
  return {
    ...TRAIN_DEFAULTS,
    ...p,
    lr_schedule: { ...TRAIN_DEFAULTS.lr_schedule, ...(p.lr_schedule ?? {}) },
    early_stopping: { ...TRAIN_DEFAULTS.early_stopping, ...(p.early_stopping ?? {}) },
  };
}

/** File names in the out dir. */
export const HISTORY_FILE = 'history.jsonl';
export const METRICS_FILE = 'metrics.json';
/** Where tfjs-node's own summary writer logs (beside our `tensorboard/`, so TensorBoard shows no point twice). */
export const NODE_TENSORBOARD_DIR = 'tensorboard-tfjs-node';

function hashFile(h: ReturnType<typeof createHash>, file: string): void {
  h.update(file.split(path.sep).slice(-2).join('/'));
  h.update(fss.existsSync(file) ? fss.readFileSync(file) : Buffer.from('absent'));
}

/** The resume key: stage version, params, seed and the identity of every input. */
export function resumeKey(version: string, params: TrainParams, seed: number, inputs: Readonly<Record<string, string>>): string {
  const h = createHash('sha256');
  const { device: _d, backend, threads: _t, ...rest } = params;
  h.update(JSON.stringify({ version, params: rest, backend, seed }));
  const files: Record<string, string[]> = {
    'build-model': ['spec.json', 'head/weights.bin', 'backbone/weights.bin'],
    features: ['features.json', 'train.labels', 'validation.labels'],
    resize: ['index.json'],
    augment: ['index.json'],
    partition: ['partition.json'],
  };
  for (const slot of Object.keys(files).sort()) {
    const dir = inputs[slot];
    h.update(`slot:${slot}:${dir === undefined ? 'none' : 'present'}`);
    if (dir !== undefined) for (const f of files[slot]!) hashFile(h, path.join(dir, f));
  }
  return h.digest('hex').slice(0, 32);
}

function classWeights(p: TrainParams, classes: readonly string[], labels: Int32Array): Float32Array | undefined {
  if (p.class_weight === 'none') return undefined;
  if (p.class_weight === 'balanced') {
    const counts = new Array<number>(classes.length).fill(0);
    for (const l of labels) counts[l]!++;
    return Float32Array.from(counts, (c) => (c === 0 ? 0 : labels.length / (classes.length * c)));
  }
  const map = p.class_weight;
  for (const name of Object.keys(map)) if (!classes.includes(name)) throw new DataInputError(`class_weight names unknown class '${name}' (classes: ${classes.join(', ')})`);
  return Float32Array.from(classes, (c) => map[c] ?? 1);
}

/** Sets every BatchNormalization layer of `model` (nested models included) non-trainable: inference mode, fixed weights. */
function freezeBatchNorm(model: tfjs.LayersModel): void {
  for (const l of model.layers) {
    if ('layers' in l && Array.isArray((l as unknown as tfjs.LayersModel).layers)) freezeBatchNorm(l as unknown as tfjs.LayersModel);
    else if (l.getClassName() === 'BatchNormalization') l.trainable = false;
  }
}

async function copyDir(src: string, dst: string): Promise<void> {
  await fs.cp(src, dst, { recursive: true });
}

async function run(ctx: StageContext<TrainParams>): Promise<StageResult> {
  const p = withDefaults(ctx.params);
  const be = await stageBackend(p, ctx.log);
  if (!be.ok) throw new DataInputError(`${ctx.stageId}: ${be.error}`);
  const { tf, choice } = be.value;
  const modelDir = ctx.inputs['build-model'];
  if (modelDir === undefined) throw new DataInputError(`${ctx.stageId}: train needs a 'build-model' input`);
  const built = await readSpec(modelDir);
  const featuresDir = ctx.inputs['features'];
  const resizeDir = ctx.inputs['resize'];
  const partitionDir = ctx.inputs['partition'];
  const havePixels = resizeDir !== undefined && partitionDir !== undefined;
  // The model is trained on this resize output's pixels: its settings are what predict must repeat.
  const trainedResize = resizeDir !== undefined ? imageResizeOf(new ShardReader(resizeDir).index) : undefined;
  const spec: ModelSpec = trainedResize !== undefined ? { ...built, resize: trainedResize } : built;
  if (featuresDir === undefined && !havePixels) {
    throw new DataInputError(`${ctx.stageId}: train needs either a 'features' input or both 'resize' and 'partition' inputs`);
  }
  const key = resumeKey(trainStage.version, p, ctx.seed, ctx.inputs);
  const resumeDir = path.join(ctx.cacheDir, 'train-resume', key);
  await fs.mkdir(resumeDir, { recursive: true });
  const resumed = await loadCheckpoint(path.join(resumeDir, 'last'));

  const head = await loadModel(tf, path.join(modelDir, HEAD_DIR));
  let backbone: tfjs.LayersModel | undefined;
  const getBackbone = async (): Promise<tfjs.LayersModel> => {
    if (backbone !== undefined) return backbone;
    const r = await loadSpecBackbone(tf, modelDir, spec, { cacheDir: ctx.cacheDir, workspace: ctx.workspace, signal: ctx.signal, log: ctx.log });
    if (!r.ok) throw new DataInputError(`${ctx.stageId}: ${r.error}`);
    backbone = r.value;
    return backbone;
  };
  const pixels = havePixels ? pixelSplits(resizeDir, readPartition(partitionDir), ctx.inputs['augment']) : undefined;
  if (pixels !== undefined) {
    const [h, w, c] = pixels.sets.train.shape;
    if (h !== spec.inputSize[0] || w !== spec.inputSize[1] || c !== spec.channels) {
      throw new DataInputError(`${ctx.stageId}: the resize output is ${h}x${w}x${c} but the model expects ${spec.inputSize.join('x')}x${spec.channels}`);
    }
  }
  const toPixels = (batch: Float32Array, n: number): tfjs.Tensor =>
    tf.tidy(() => preprocess(tf as Tf, spec.preprocessing, tf.tensor4d(batch, [n, spec.inputSize[0], spec.inputSize[1], spec.channels])));

  const phases: { make: () => Promise<Omit<Phase, 'index'>> }[] = [];
  const optimizerFor = (lr: number): tfjs.Optimizer => makeOptimizer(tf, p.optimizer, lr, p.momentum);
  const valOf = (s: SampleSet | undefined): SampleSet | undefined => (p.validate && s !== undefined && s.size > 0 ? s : undefined);
  let trainLabels: Int32Array;
  if (featuresDir !== undefined) {
    const feats = readFeatures(featuresDir);
    if (feats.index.dim !== spec.featureDim) throw new DataInputError(`${ctx.stageId}: features have dimension ${feats.index.dim}, the head expects ${spec.featureDim}`);
    trainLabels = feats.sets.train.labels;
    phases.push({
      make: async () => ({
        kind: 'head',
        model: head,
        train: feats.sets.train,
        ...(valOf(feats.sets.validation) ? { validation: feats.sets.validation } : {}),
        toInput: (b, n) => tf.tensor2d(b, [n, spec.featureDim]),
        epochs: p.epochs,
        lr: p.lr,
        optimizer: optimizerFor(p.lr),
      }),
    });
  } else {
    trainLabels = pixels!.sets.train.labels;
    phases.push({
      make: async () => {
        const bb = await getBackbone();
        bb.trainable = !spec.freeze;
        if (spec.freeze) {
          // The seed's way: the frozen backbone runs on every batch (fused, outside the gradient tape); only the head trains.
          ctx.log.info('backbone frozen: it runs on every batch of every epoch (add a features stage to compute it once per image)');
          const extractor = spec.pooling !== null ? tf.model({ inputs: bb.inputs, outputs: poolingLayer(tf as Tf, spec.pooling).apply(bb.outputs[0]!) as tfjs.SymbolicTensor }) : bb;
          const fused = compileInference(extractor);
          return {
            kind: 'full',
            model: head,
            train: pixels!.sets.train,
            ...(valOf(pixels!.sets.validation) ? { validation: pixels!.sets.validation } : {}),
            toInput: (b: Float32Array, n: number) => tf.tidy(() => fused.predict(toPixels(b, n) as tfjs.Tensor4D)),
            epochs: p.epochs,
            lr: p.lr,
            optimizer: optimizerFor(p.lr),
          };
        }
        return {
          kind: 'full',
          model: stackModel(tf as Tf, bb, head, spec.pooling ?? undefined),
          train: pixels!.sets.train,
          ...(valOf(pixels!.sets.validation) ? { validation: pixels!.sets.validation } : {}),
          toInput: toPixels,
          epochs: p.epochs,
          lr: p.lr,
          optimizer: optimizerFor(p.lr),
        };
      },
    });
  }
  if (spec.fineTune !== undefined) {
    if (pixels === undefined) throw new DataInputError(`${ctx.stageId}: fine_tune needs 'resize' and 'partition' inputs (it trains on pixels)`);
    const ft = spec.fineTune;
    if (ft.lr >= p.lr) ctx.log.warn(`fine_tune.lr ${ft.lr} is not lower than lr ${p.lr}: unfrozen pretrained layers usually need a lower rate`);
    phases.push({
      make: async () => {
        const bb = await getBackbone();
        const from = bb.layers.findIndex((l) => l.name === ft.fromLayer);
        if (from < 0) throw new DataInputError(`${ctx.stageId}: fine_tune.from_layer '${ft.fromLayer}' is not a layer of ${spec.backbone}`);
        bb.trainable = true;
        bb.layers.forEach((l, i) => (l.trainable = i >= from));
        if ((ft.batchnorm ?? 'train') === 'frozen') freezeBatchNorm(bb);
        return {
          kind: 'fine_tune',
          model: stackModel(tf as Tf, bb, head, spec.pooling ?? undefined),
          train: pixels.sets.train,
          ...(valOf(pixels.sets.validation) ? { validation: pixels.sets.validation } : {}),
          toInput: toPixels,
          epochs: ft.epochs,
          lr: ft.lr,
          optimizer: optimizerFor(ft.lr),
        };
      },
    });
  }
  const opts: LoopOptions = {
    batchSize: p.batch_size,
    ...(p.steps_per_epoch !== null ? { stepsPerEpoch: p.steps_per_epoch } : {}),
    lrSchedule: p.lr_schedule,
    earlyStopping: p.early_stopping,
    ...(() => {
      const w = classWeights(p, spec.classes, trainLabels);
      return w !== undefined ? { classWeights: w } : {};
    })(),
    labelSmoothing: p.label_smoothing,
    numClasses: spec.classes.length,
    seed: ctx.seed,
  };

  // Outputs written as we go.
  const ckptOut = path.join(ctx.outDir, 'checkpoints');
  await fs.mkdir(ckptOut, { recursive: true });
  let history: EpochRecord[] = [];
  let startPhase = 0;
  let startState: LoopState | undefined;
  if (resumed !== undefined) {
    startPhase = resumed.state.phase;
    startState = resumed.state;
    history = [...resumed.state.history];
    ctx.log.info(`resuming from ${resumeDir} at phase ${startPhase + 1}, epoch ${resumed.state.nextEpoch + 1}`);
    // Bring over per-epoch checkpoints of earlier attempts.
    for (const name of await fs.readdir(resumeDir)) if (/^epoch-\d+$/.test(name) || name === 'best') await copyDir(path.join(resumeDir, name), path.join(name === 'best' ? ctx.outDir : ckptOut, name));
  }

  // TensorBoard: our event files on every backend; tfjs-node's writer too when that is the backend.
  // Steps are epoch numbers across phases (1-based), so a fine-tune phase continues the head phase's curves.
  const tbLoggers: EpochLogger[] = [tensorBoardLogger(path.join(ctx.outDir, TENSORBOARD_DIR))];
  const nodeTb = await tfjsNodeSummaryWriters(choice.package, path.join(ctx.outDir, NODE_TENSORBOARD_DIR));
  if (nodeTb !== undefined) tbLoggers.push(nodeTb);
  const logEpoch = (step: number, r: EpochRecord): void => tbLoggers.forEach((l) => l.epoch(step, r));
  history.forEach((r, i) => logEpoch(i + 1, r));

  const saveParts = async (dir: string, trainedBackbone: boolean): Promise<void> => {
    const s: ModelSpec = { ...spec, backboneSaved: spec.backboneSaved || trainedBackbone };
    await writeSpec(dir, s);
    await saveModel(tf, head, path.join(dir, HEAD_DIR));
    if (s.backboneSaved) await saveModel(tf, await getBackbone(), path.join(dir, BACKBONE_DIR));
  };
  const backboneTrained = (k: Phase['kind']): boolean => k !== 'head' || spec.backboneSaved;

  let last: LoopState | undefined;
  let samplesPerS = 0;
  try {
    for (let i = startPhase; i < phases.length; i++) {
      const phase: Phase = { ...(await phases[i]!.make()), index: i };
      const ckptWeights = checkpointWeights(phase.model);
      // The resumed phase continues from its checkpoint; a new phase starts its own early-stopping record.
      const state: LoopState = startState ?? { phase: i, nextEpoch: 0, history, sinceBest: 0, stopped: false };
      if (startState !== undefined) {
        resumed!.restoreModel(tf, ckptWeights);
        await resumed!.restoreOptimizer(tf, phase.optimizer);
      }
      try {
        last = await runPhase(tf, phase, opts, state, {
          signal: ctx.signal,
          progress: (d, t, l) => ctx.log.progress(d, t, l),
          info: (m) => ctx.log.info(m),
          async onEpoch(st, isBest) {
            history = [...st.history];
            const tag = `epoch-${String(st.history.length).padStart(3, '0')}`;
            // Per-epoch checkpoints hold weights and loop state only (Keras's save_weights_only): the optimizer's
            // slots (2x the weights for Adam) are kept just in `last`, which resuming needs.
            await saveCheckpoint(ckptWeights, undefined, st, path.join(resumeDir, tag));
            await fs.rm(path.join(ckptOut, tag), { recursive: true, force: true });
            await copyDir(path.join(resumeDir, tag), path.join(ckptOut, tag));
            if (isBest) {
              await fs.rm(path.join(resumeDir, 'best.tmp'), { recursive: true, force: true });
              await saveParts(path.join(resumeDir, 'best.tmp'), backboneTrained(phase.kind));
              await fs.rm(path.join(resumeDir, 'best'), { recursive: true, force: true });
              await fs.rename(path.join(resumeDir, 'best.tmp'), path.join(resumeDir, 'best'));
              await fs.rm(path.join(ctx.outDir, 'best'), { recursive: true, force: true });
              await copyDir(path.join(resumeDir, 'best'), path.join(ctx.outDir, 'best'));
            }
            // `last` is written last: it is what a resumed run starts from.
            await saveCheckpoint(ckptWeights, phase.optimizer, st, path.join(resumeDir, 'last'));
            await writeFileAtomic(path.join(ctx.outDir, HISTORY_FILE), st.history.map((r) => JSON.stringify(r)).join('\n') + '\n');
            logEpoch(st.history.length, st.history[st.history.length - 1]!);
          },
        });
      } catch (e) {
        if (e instanceof TrainingCancelled) throw new DataInputError(`${ctx.stageId}: cancelled; the next run resumes from the last completed epoch`);
        throw e;
      }
      history = [...last.history];
      const lastRec = last.history[last.history.length - 1];
      if (lastRec !== undefined) samplesPerS = lastRec.samples_per_s;
      phase.optimizer.dispose();
      startState = undefined;
    }
  } finally {
    tbLoggers.forEach((l) => l.close());
  }
  // The backbone's weights changed (so backbone/ must be saved) when it trained from scratch / unfrozen, or in a
  // fine-tune phase, whichever input the first phase used.
  const trainedBackbone = spec.backboneSaved || spec.fineTune !== undefined || (featuresDir === undefined && !spec.freeze);
  await saveParts(ctx.outDir, trainedBackbone);
  await writeFileAtomic(path.join(ctx.outDir, HISTORY_FILE), history.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const final = history[history.length - 1];
  const bestRec = last?.best !== undefined ? history[last.best.historyIndex] : undefined;
  const metrics: Record<string, number> = {
    epochs: history.length,
    ...(final ? { loss: final.loss, accuracy: final.accuracy, samples_per_s: samplesPerS } : {}),
    ...(final?.val_loss !== undefined ? { val_loss: final.val_loss, val_accuracy: final.val_accuracy! } : {}),
    ...(bestRec?.val_accuracy !== undefined ? { best_val_accuracy: bestRec.val_accuracy, best_epoch: bestRec.epoch } : {}),
  };
  await writeFileAtomic(path.join(ctx.outDir, METRICS_FILE), JSON.stringify({ ...metrics, backend: backendResult(choice) }, null, 2) + '\n');
  head.dispose();
  backbone?.dispose();
  await fs.rm(resumeDir, { recursive: true, force: true });
  return {
    backend: backendResult(choice),
    metrics,
    summary: trainSummary(history, p.early_stopping.restore_best ? bestRec : undefined, samplesPerS),
  };
}

/**
 * The one-line result: epochs run, the last epoch's accuracy, and, when the
 * saved model is an earlier best epoch (restore_best), that epoch's
 * validation accuracy, since that is the model the outputs hold.
 */
export function trainSummary(history: readonly EpochRecord[], best: EpochRecord | undefined, samplesPerS: number): string {
  const final = history[history.length - 1];
  if (final === undefined) return 'no epochs run';
  const n = `${history.length} epoch${history.length === 1 ? '' : 's'}`;
  const val = final.val_accuracy !== undefined ? `, val_acc ${final.val_accuracy.toFixed(4)}` : '';
  const bestIndex = best === undefined ? -1 : history.indexOf(best);
  const kept = best !== undefined && bestIndex !== history.length - 1 && best.val_accuracy !== undefined
    ? `; kept the best epoch ${bestIndex + 1} (val_acc ${best.val_accuracy.toFixed(4)})`
    : '';
  return `${n}, last acc ${final.accuracy.toFixed(4)}${val}${kept}, ${Math.round(samplesPerS)} samples/s`;
}

export const trainStage: BuiltinStage<TrainParams> = {
  name: 'train',
  version: '2',
  description: 'Trains the head on cached features (or the whole model on pixels), with checkpoints every epoch, early stopping and resume',
  runtimeFacts: (p) => tfjsRuntimeFacts(p),
  inputs: ['build-model'],
  optionalInputs: ['features', 'resize', 'partition', 'augment'],
  resources(params) {
    const r: Record<string, number> = params.device === 'gpu' ? { gpu: 1 } : {};
    return r;
  },
  run,
};
