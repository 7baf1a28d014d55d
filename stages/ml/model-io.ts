/**
 * How the model stages store models: tfjs layers models as `model.json` +
 * `weights.bin` in a directory (readable by `tf.loadLayersModel` through
 * `tf.io.fromMemory`, no tfjs-node needed), and the `spec.json` that says how
 * a backbone and a head form one classifier (backbone name and weights hash,
 * preprocessing, input size, how images were resized, classes, pooling, head layers).
 *
 * Layout of a build-model / train output directory:
 *   spec.json        ModelSpec
 *   head/            the head (feature vector → softmax)
 *   backbone/        only when the backbone's weights are not reproducible from the registry
 *                    (random init, trained from scratch, fine-tuned)
 *
 * {@link loadClassifier} puts the parts back together for inference.
 *
 * This module does not train, resize images or choose a backend.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import { writeFileAtomic } from '../../src/cache/atomic.js';
import { err, ok, type Result } from '../../src/result.js';
import { loadBackbone, preprocess, type BackboneName, type Preprocessing, type Tf } from './backbones/registry.js';
import { compileInference } from './fuse.js';
import { stackModel, type HeadLayer, type Pooling } from './head.js';
import { FITS, KERNELS, type Fit, type Kernel } from '../lib/image-io.js';
import type { ShardIndex } from '../lib/shards.js';

/** Format tag of spec.json. */
export const MODEL_SPEC_FORMAT = 'pipeline.model-spec/v1';
/** File names inside a model directory. */
export const SPEC_FILE = 'spec.json';
export const HEAD_DIR = 'head';
export const BACKBONE_DIR = 'backbone';

/** How backbone + head form a classifier (spec.json). */
export interface ModelSpec {
  readonly format: typeof MODEL_SPEC_FORMAT;
  readonly backbone: BackboneName;
  /** `weights:` as given to build-model (imagenet, bundled, none or a path). */
  readonly weights: string;
  /** Identity of the backbone weights (from the registry); part of feature cache keys. */
  readonly weightsHash: string;
  readonly preprocessing: Preprocessing;
  /** [height, width] of the model input. */
  readonly inputSize: readonly [number, number];
  readonly channels: number;
  /** Class names, in label-index order. */
  readonly classes: readonly string[];
  /** Pooling applied to a 4-D backbone output; null when the backbone already outputs vectors. */
  readonly pooling: Pooling | null;
  /** Length of the feature vector the head takes. */
  readonly featureDim: number;
  /** Head layers (before the final softmax). */
  readonly head: readonly HeadLayer[];
  /** Whether the backbone is frozen during head training. */
  readonly freeze: boolean;
  /**
   * Optional second phase: unfreeze from `from_layer` and train at `lr` for `epochs`. `batchnorm` (absent in older
   * specs = `train`, how they ran): `frozen` keeps every BatchNorm layer in inference mode with fixed
   * gamma/beta/statistics (Keras's fine-tuning advice: batch statistics of small batches shift the features the
   * head was trained on); `train` trains the unfrozen ones in training mode.
   */
  readonly fineTune?: { readonly fromLayer: string; readonly lr: number; readonly epochs: number; readonly batchnorm?: FineTuneBatchNorm };
  /** True when `backbone/` holds the backbone weights (else they come from the registry). */
  readonly backboneSaved: boolean;
  /** Seed used for initialisation. */
  readonly seed: number;
  /**
   * How training images were resized beyond `inputSize` / `channels` (the `resize` stage's fit, kernel and
   * background), so `predict` turns a new image into the same pixels. Absent in specs written before it was
   * recorded, or when the pixels did not come from a `resize` stage; predict then uses the resize defaults.
   */
  readonly resize?: ImageResize;
}

/** How BatchNorm layers behave in a fine-tune phase (see {@link ModelSpec.fineTune}). */
export const FINE_TUNE_BATCHNORM = ['frozen', 'train'] as const;
export type FineTuneBatchNorm = (typeof FINE_TUNE_BATCHNORM)[number];

/** The resize settings a model was trained with (see {@link ModelSpec.resize}). */
export interface ImageResize {
  readonly fit: Fit;
  readonly kernel: Kernel;
  /** `#rgb` / `#rrggbb`: alpha is flattened onto it; `contain` pads with it. */
  readonly background: string;
}

/**
 * The resize settings a shard directory's index records (`index.json` field `resize`: {fit, kernel, background},
 * written by the `resize` stage), checked; undefined when absent (older outputs, shards not made from image
 * files) or not valid.
 */
export function imageResizeOf(index: ShardIndex): ImageResize | undefined {
  const info = (index as { readonly resize?: { readonly fit?: unknown; readonly kernel?: unknown; readonly background?: unknown } }).resize;
  if (info === undefined || info === null || typeof info !== 'object') return undefined;
  const fit = FITS.find((f) => f === info.fit);
  const kernel = KERNELS.find((k) => k === info.kernel);
  const bg = info.background;
  if (fit === undefined || kernel === undefined || typeof bg !== 'string' || !/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(bg)) return undefined;
  return { fit, kernel, background: bg };
}

/** Serialises a layers model into `dir` (model.json + weights.bin). */
export async function saveModel(tf: Tf, model: tfjs.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData;
      const bytes = weightData === undefined ? new Uint8Array(0) : new Uint8Array(Array.isArray(weightData) ? concatBuffers(weightData) : weightData);
      await writeFileAtomic(path.join(dir, 'weights.bin'), bytes);
      const json = {
        format: 'layers-model',
        generatedBy: 'pipeline-engine',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON', weightDataBytes: bytes.byteLength } };
    }),
  );
}

function concatBuffers(parts: ArrayBuffer[]): ArrayBuffer {
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), o);
    o += p.byteLength;
  }
  return out.buffer;
}

/** Loads a model written by {@link saveModel}. */
export async function loadModel(tf: Tf, dir: string): Promise<tfjs.LayersModel> {
  const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: { weights: tfjs.io.WeightsManifestEntry[] }[];
  };
  const bin = await fs.readFile(path.join(dir, 'weights.bin'));
  const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((m) => m.weights), weightData }));
}

/** Reads spec.json of a model directory. */
export async function readSpec(dir: string): Promise<ModelSpec> {
  const spec = JSON.parse(await fs.readFile(path.join(dir, SPEC_FILE), 'utf8')) as ModelSpec;
  if (spec.format !== MODEL_SPEC_FORMAT) throw new Error(`${dir}: not a model directory (spec format ${String(spec.format)})`);
  return spec;
}

/** Writes spec.json. */
export async function writeSpec(dir: string, spec: ModelSpec): Promise<void> {
  await writeFileAtomic(path.join(dir, SPEC_FILE), JSON.stringify(spec, null, 2) + '\n');
}

/** Options for loading the backbone a spec names. */
export interface BackboneLoadOptions {
  readonly cacheDir: string;
  readonly workspace?: string;
  readonly signal?: AbortSignal;
  readonly log?: { info(m: string): void; warn(m: string): void };
}

/** Loads the backbone of a model directory: its saved copy when there is one, else from the registry. */
export async function loadSpecBackbone(tf: Tf, dir: string, spec: ModelSpec, opts: BackboneLoadOptions): Promise<Result<tfjs.LayersModel, string>> {
  if (spec.backboneSaved) return ok(await loadModel(tf, path.join(dir, BACKBONE_DIR)));
  const r = await loadBackbone(tf, spec.backbone, {
    weights: spec.weights,
    inputSize: spec.inputSize,
    channels: spec.channels,
    cacheDir: opts.cacheDir,
    ...(opts.workspace !== undefined ? { workspace: opts.workspace } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    seed: spec.seed,
  });
  if (!r.ok) return err(r.error.message);
  if (r.value.weightsHash !== spec.weightsHash) {
    return err(`backbone ${spec.backbone} weights changed since the model was built (hash ${r.value.weightsHash.slice(0, 12)} ≠ ${spec.weightsHash.slice(0, 12)})`);
  }
  return ok(r.value.model);
}

/** A loaded classifier for inference on uint8 pixels. */
export interface Classifier {
  readonly spec: ModelSpec;
  /** Class probabilities for `n` images packed as uint8 NHWC at the spec's size; row-major [n, classes]. */
  predict(pixels: Uint8Array, n: number): Promise<Float32Array>;
  dispose(): void;
}

/** Loads spec + backbone + head from a build-model / train output directory. */
export async function loadClassifier(tf: Tf, dir: string, opts: BackboneLoadOptions): Promise<Result<Classifier, string>> {
  let spec: ModelSpec;
  try {
    spec = await readSpec(dir);
  } catch (e) {
    return err(`${dir}: ${(e as Error).message}`);
  }
  const bb = await loadSpecBackbone(tf, dir, spec, opts);
  if (!bb.ok) return bb;
  const head = await loadModel(tf, path.join(dir, HEAD_DIR));
  const full = stackModel(tf, bb.value, head, spec.pooling ?? undefined);
  const fused = compileInference(full);
  const [h, w] = spec.inputSize;
  return ok({
    spec,
    async predict(pixels, n) {
      const out = tf.tidy(() => {
        const x = tf.tensor4d(Float32Array.from(pixels), [n, h, w, spec.channels]);
        return fused.predict(preprocess(tf, spec.preprocessing, x));
      });
      const data = (await out.data()) as Float32Array;
      out.dispose();
      return data;
    },
    dispose() {
      fused.dispose();
      full.dispose();
    },
  });
}
