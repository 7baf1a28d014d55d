/**
 * Training checkpoints: all model weights (trainable and BN statistics, in
 * `model.weights` order), the optimizer's slots, and the loop state (next
 * epoch, history, best score, early-stopping counter) in one directory:
 *   checkpoint.json   meta + tensor table (name, shape, byte offset)
 *   tensors.bin       float32 data back to back
 * A checkpoint directory is written under a temp name and renamed into place,
 * so a kill -9 leaves either the previous checkpoint or the new one.
 *
 * This module does not decide when to checkpoint or where resumable
 * checkpoints live (the train stage does).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from './backbones/spec.js';

/** One epoch's record in history.jsonl. */
export interface EpochRecord {
  readonly phase: 'head' | 'fine_tune' | 'full';
  readonly epoch: number;
  readonly loss: number;
  readonly accuracy: number;
  readonly val_loss?: number;
  readonly val_accuracy?: number;
  readonly lr: number;
  readonly samples_per_s: number;
  readonly seconds: number;
}

/** Loop state saved with the weights. */
export interface LoopState {
  /** Index of the phase this checkpoint belongs to (0 = first). */
  readonly phase: number;
  /** The next epoch to run (0-based) within `phase`. */
  readonly nextEpoch: number;
  readonly history: readonly EpochRecord[];
  /** Best monitored value so far and its epoch (global index into history). */
  readonly best?: { readonly value: number; readonly historyIndex: number };
  /** Epochs since the best one (early stopping). */
  readonly sinceBest: number;
  /** True when early stopping ended the phase. */
  readonly stopped: boolean;
}

interface TensorEntry {
  readonly name: string;
  readonly shape: number[];
  readonly offset: number;
  readonly length: number;
  readonly dtype: 'float32' | 'int32';
}

interface CheckpointJson {
  readonly format: 'pipeline.checkpoint/v1';
  readonly state: LoopState;
  readonly model: TensorEntry[];
  readonly optimizer: TensorEntry[];
  /**
   * Optimizer state that `getWeights` leaves out, stored as is: Adam's running
   * bias-correction products `accBeta1`/`accBeta2`. `setWeights` recomputes them
   * as `pow(beta, step + 1)`, which rounds differently from the product the
   * uninterrupted run has accumulated, so a resumed run drifted by ~1e-8 from it;
   * with them restored, a resumed run is bit-identical. Absent in older checkpoints.
   */
  readonly optimizerExact?: TensorEntry[];
}

/** Adam's private running products (see `optimizerExact`); other optimizers keep all their state in getWeights. */
const EXACT_OPTIMIZER_FIELDS = ['accBeta1', 'accBeta2'] as const;

/** The optimizer's `EXACT_OPTIMIZER_FIELDS` that are tfjs variables, by name. */
function exactOptimizerState(optimizer: tfjs.Optimizer): [string, tfjs.Variable][] {
  const o = optimizer as unknown as Record<string, unknown>;
  return EXACT_OPTIMIZER_FIELDS.flatMap((name) => {
    const v = o[name] as { assign?: unknown; read?: unknown } | undefined;
    return v !== undefined && v !== null && typeof v.assign === 'function' ? [[name, v as unknown as tfjs.Variable]] : [];
  });
}

/** The weights a checkpoint of `model` holds: every weight (incl. BN statistics) of layers that can change in training. */
export function checkpointWeights(model: tfjs.LayersModel): tfjs.LayerVariable[] {
  const out: tfjs.LayerVariable[] = [];
  const walk = (m: tfjs.LayersModel): void => {
    if (!m.trainable) return;
    for (const l of m.layers) {
      if ('layers' in l && Array.isArray((l as unknown as tfjs.LayersModel).layers)) walk(l as unknown as tfjs.LayersModel);
      else if (l.trainable) out.push(...l.weights);
    }
  };
  walk(model);
  return out;
}

/** Writes a checkpoint atomically into `dir` (replacing any previous one there). */
export async function saveCheckpoint(weights: readonly tfjs.LayerVariable[], optimizer: tfjs.Optimizer | undefined, state: LoopState, dir: string): Promise<void> {
  const parts: Buffer[] = [];
  let offset = 0;
  const add = async (name: string, t: tfjs.Tensor): Promise<TensorEntry> => {
    const data = await t.data();
    const dtype = t.dtype === 'int32' ? 'int32' : 'float32';
    const arr = dtype === 'int32' ? Int32Array.from(data as Int32Array) : Float32Array.from(data as Float32Array);
    const buf = Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
    parts.push(buf);
    const e: TensorEntry = { name, shape: [...t.shape], offset, length: arr.length, dtype };
    offset += buf.length;
    return e;
  };
  const modelEntries: TensorEntry[] = [];
  for (const w of weights) modelEntries.push(await add(w.originalName ?? w.name, w.read()));
  const optEntries: TensorEntry[] = [];
  const exactEntries: TensorEntry[] = [];
  if (optimizer !== undefined) {
    for (const nt of await optimizer.getWeights()) optEntries.push(await add(nt.name, nt.tensor));
    for (const [name, v] of exactOptimizerState(optimizer)) exactEntries.push(await add(name, v));
  }
  const json: CheckpointJson = {
    format: 'pipeline.checkpoint/v1',
    state,
    model: modelEntries,
    optimizer: optEntries,
    ...(exactEntries.length > 0 ? { optimizerExact: exactEntries } : {}),
  };
  const tmp = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.mkdir(tmp, { recursive: true });
  await fs.writeFile(path.join(tmp, 'tensors.bin'), Buffer.concat(parts));
  await fs.writeFile(path.join(tmp, 'checkpoint.json'), JSON.stringify(json));
  const fh = await fs.open(path.join(tmp, 'tensors.bin'), 'r+');
  await fh.sync();
  await fh.close();
  const old = `${dir}.old-${randomBytes(4).toString('hex')}`;
  await fs.rename(dir, old).catch(() => undefined);
  await fs.rename(tmp, dir);
  await fs.rm(old, { recursive: true, force: true });
}

/** A checkpoint read back: state plus functions to restore tensors into a model / optimizer. */
export interface LoadedCheckpoint {
  readonly state: LoopState;
  /** Sets the weights (same list, same order as when saved). */
  restoreModel(tf: Tf, weights: readonly tfjs.LayerVariable[]): void;
  /** Sets the optimizer slots (call before the first step). */
  restoreOptimizer(tf: Tf, optimizer: tfjs.Optimizer): Promise<void>;
}

/** Reads a checkpoint, or undefined when `dir` holds none (or a damaged one). */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint | undefined> {
  let json: CheckpointJson;
  let bin: Buffer;
  try {
    json = JSON.parse(await fs.readFile(path.join(dir, 'checkpoint.json'), 'utf8')) as CheckpointJson;
    bin = await fs.readFile(path.join(dir, 'tensors.bin'));
  } catch {
    return undefined;
  }
  if (json.format !== 'pipeline.checkpoint/v1') return undefined;
  const expected = [...json.model, ...json.optimizer, ...(json.optimizerExact ?? [])].reduce((a, e) => Math.max(a, e.offset + e.length * 4), 0);
  if (bin.length < expected) return undefined;
  const ab = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const tensorOf = (tf: Tf, e: TensorEntry): tfjs.Tensor =>
    e.dtype === 'int32' ? tf.tensor(new Int32Array(ab, e.offset, e.length), e.shape, 'int32') : tf.tensor(new Float32Array(ab, e.offset, e.length), e.shape);
  return {
    state: json.state,
    restoreModel(tf, weights) {
      if (weights.length !== json.model.length) throw new Error(`checkpoint has ${json.model.length} weights, the model has ${weights.length}`);
      const ts = json.model.map((e) => tensorOf(tf, e));
      weights.forEach((w, i) => w.write(ts[i]!));
      ts.forEach((t) => t.dispose());
    },
    async restoreOptimizer(tf, optimizer) {
      if (json.optimizer.length === 0) return;
      await optimizer.setWeights(json.optimizer.map((e) => ({ name: e.name, tensor: tensorOf(tf, e) })));
      // After setWeights, which overwrote them with recomputed powers (see CheckpointJson.optimizerExact).
      const exact = new Map(exactOptimizerState(optimizer));
      for (const e of json.optimizerExact ?? []) {
        const v = exact.get(e.name);
        if (v === undefined || v.shape.join(',') !== e.shape.join(',')) continue;
        const t = tensorOf(tf, e);
        v.assign(t);
        t.dispose();
      }
    },
  };
}
