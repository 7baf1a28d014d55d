/**
 * The backbone registry: one entry per architecture ({@link BACKBONES}), the
 * preprocessing each expects ({@link preprocess}), and {@link loadBackbone},
 * which builds an entry and fills it with weights (ImageNet download, the
 * bundled nsfwjs models, random, or a local .h5).
 *
 * This module does not train, pool or cache features (the stages do), and
 * does not pick a compute backend: the caller passes its `tf`.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { spec as all } from './all.js';
import { spec as inceptionV3 } from './inception-v3.js';
import { spec as mobilenetV2 } from './mobilenet-v2.js';
import { spec as resnet50 } from './resnet50.js';
import { spec as simpleCnn } from './simple-cnn.js';
import { spec as vgg19 } from './vgg19.js';
import { spec as xception } from './xception.js';
import { ALL_PARTS } from './all.js';
import { BACKBONE_NAMES, featureDimFor, isBackboneName, type BackboneName, type BackboneSpec, type Preprocessing, type Tf } from './spec.js';
import { err, ok, unreachable, type Result } from '../../../src/result.js';
import type { WeightsFailure, WeightsLogger } from '../weights/download.js';
import fs from 'node:fs/promises';
import path from 'node:path';

export * from './spec.js';
export { paramCounts } from './layers.js';
export type { WeightsFailure, WeightsFailureReason, WeightsLogger } from '../weights/download.js';

/** Every backbone by name, in {@link BACKBONE_NAMES} order. */
export const BACKBONES: ReadonlyMap<BackboneName, BackboneSpec> = new Map(
  [mobilenetV2, inceptionV3, xception, resnet50, vgg19, all, simpleCnn].map((s) => [s.name, s] as const),
);

if (BACKBONES.size !== BACKBONE_NAMES.length) throw new Error('backbone registry out of sync with BACKBONE_NAMES');

/** The ImageNet BGR channel means subtracted by `caffe` preprocessing (Keras imagenet_utils). */
export const CAFFE_BGR_MEANS = [103.939, 116.779, 123.68] as const;

/**
 * Applies `kind` to a batch of float32 RGB pixels in 0..255 ([b, h, w, c]); returns a new tensor (the input is
 * not disposed). `caffe` needs 3 channels; the others work on any channel count.
 */
export function preprocess(tf: Tf, kind: Preprocessing, x: tfjs.Tensor4D): tfjs.Tensor4D {
  return tf.tidy(() => {
    switch (kind) {
      case 'tf':
        return tf.sub(tf.div(x, 127.5), 1) as tfjs.Tensor4D;
      case 'caffe': {
        if (x.shape[3] !== 3) throw new Error(`caffe preprocessing needs 3 channels, got ${x.shape[3]}`);
        const bgr = tf.reverse(x, -1);
        return tf.sub(bgr, tf.tensor1d([...CAFFE_BGR_MEANS])) as tfjs.Tensor4D;
      }
      case 'unit':
        return tf.div(x, 255) as tfjs.Tensor4D;
      case 'none':
        return tf.clone(x);
      default:
        return unreachable(kind);
    }
  });
}

/** Options for {@link loadBackbone}. */
export interface LoadBackboneOptions {
  /**
   * `imagenet`: the official Keras no-top file(s), downloaded once into the cache and verified;
   * `bundled`: the pretrained models shipped by the nsfwjs npm package (mobilenet_v2 at 224, inception_v3 at 299);
   * `none`: random Keras-default initialisation (seeded by `seed`);
   * anything else: a path to a Keras .h5 weights file (relative paths resolve against `workspace`); for `all`, a
   * directory holding the three branch files under their Keras file names.
   */
  readonly weights: 'imagenet' | 'bundled' | 'none' | (string & {});
  /** [height, width]; default `spec.defaultSize`. */
  readonly inputSize?: readonly [number, number];
  /** Input channels; default `spec.channels`. Pretrained weights need 3. */
  readonly channels?: number;
  /** The engine's shared cache dir (weights go to `<cacheDir>/weights/`). */
  readonly cacheDir: string;
  /** Mirror replacing the Keras bucket URL; default: env PIPELINE_WEIGHTS_MIRROR. */
  readonly mirror?: string;
  /** Directory relative `weights:` paths resolve against (the workspace). Default: the current directory. */
  readonly workspace?: string;
  readonly signal?: AbortSignal;
  readonly log?: WeightsLogger;
  /** Seed for `weights: none` (and dropout in simple_cnn). */
  readonly seed?: number;
  /**
   * Check a local `.h5` against the backbone's ImageNet pin (size, MD5). Default true. Set false to load your own
   * weights (e.g. fine-tuned) into a pinned architecture; they are then identified by their SHA-256 only.
   */
  readonly verify?: boolean;
}

/** A ready backbone. */
export interface LoadedBackbone {
  /** The architecture with weights; output as described by `spec.output`. The caller disposes it. */
  readonly model: tfjs.LayersModel;
  readonly spec: BackboneSpec;
  /**
   * The preprocessing these weights expect: `spec.preprocessing`, except `unit` (x/255) for the bundled nsfwjs
   * models, which were trained on [0, 1] inputs. Apply it with {@link preprocess} before `model.predict`.
   */
  readonly preprocessing: Preprocessing;
  /** Feature size for the requested input size after the stages' reduction (see `spec.featureDim`). */
  readonly featureDim: number;
  /**
   * Identity of the weights for fingerprints: the SHA-256 of the weight file (combined for `all`), the bundled
   * model's identity, or `none:<seed>` for random weights.
   */
  readonly weightsHash: string;
}

function failure(reason: WeightsFailure['reason'], message: string, extra: Partial<WeightsFailure> = {}): { ok: false; error: WeightsFailure } {
  return err({ reason, message, ...extra });
}

/**
 * Builds backbone `name` for the requested input and fills it with weights. Every expected failure (unknown
 * name, bad input size, offline without a cached file, hash mismatch, a weight file that does not fit) is an
 * error value whose message says what to do.
 */
export async function loadBackbone(tf: Tf, name: string, opts: LoadBackboneOptions): Promise<Result<LoadedBackbone, WeightsFailure>> {
  if (!isBackboneName(name)) return failure('unknown-backbone', `unknown backbone '${name}'; known: ${BACKBONE_NAMES.join(', ')}`);
  const spec = BACKBONES.get(name)!;
  const [h, w] = opts.inputSize ?? spec.defaultSize;
  const c = opts.channels ?? spec.channels;
  if (h < spec.minSize[0] || w < spec.minSize[1]) {
    return failure('bad-input-shape', `${name}: input ${h}x${w} is smaller than the minimum ${spec.minSize[0]}x${spec.minSize[1]}`);
  }
  // ImageNet weights (downloaded, or a local copy checked against the pin) have 3-channel first convs.
  const imagenetWeights = (opts.weights === 'imagenet' && spec.pretrainedKinds.includes('imagenet')) || (!['none', 'bundled'].includes(opts.weights) && spec.imagenet !== undefined && opts.verify !== false);
  if (imagenetWeights && c !== 3) {
    return failure('bad-input-shape', `${name}: ImageNet weights need 3 input channels, got ${c} (convert grayscale to RGB in the resize stage)`);
  }
  const inputShape = [h, w, c] as const;

  switch (opts.weights) {
    case 'none': {
      const model = spec.build(tf, { inputShape, init: 'glorot', ...(opts.seed === undefined ? {} : { seed: opts.seed }) });
      return ok({ model, spec, preprocessing: spec.preprocessing, featureDim: featureDimFor(spec, [h, w]), weightsHash: `none:${opts.seed ?? 'unseeded'}` });
    }
    case 'imagenet': {
      if (!spec.pretrainedKinds.includes('imagenet')) {
        return failure('unsupported-weights', `${name}: has no ImageNet weights (supported: ${spec.pretrainedKinds.join(', ')}, or a .h5 path)`);
      }
      // Weight loaders (h5wasm glue, downloader, nsfwjs reader) load on use: the stage registry imports this module for metadata.
      const { imagenetParts, loadImagenetWeights, mirrorFromEnv } = await import('../weights/imagenet.js');
      const model = spec.build(tf, { inputShape, init: 'zeros' });
      const parts = imagenetParts(spec, model, name === 'all' ? ALL_PARTS : [])!;
      const r = await loadImagenetWeights(tf, parts, {
        cacheDir: opts.cacheDir,
        mirror: opts.mirror ?? mirrorFromEnv(process.env),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      if (!r.ok) {
        model.dispose();
        return r;
      }
      return ok({ model, spec, preprocessing: spec.preprocessing, featureDim: featureDimFor(spec, [h, w]), weightsHash: r.value });
    }
    case 'bundled': {
      if (!spec.pretrainedKinds.includes('bundled') || (name !== 'mobilenet_v2' && name !== 'inception_v3')) {
        return failure('unsupported-weights', `${name}: no bundled weights; only mobilenet_v2 (224x224) and inception_v3 (299x299) ship with nsfwjs`);
      }
      if (h !== spec.defaultSize[0] || w !== spec.defaultSize[1] || c !== 3) {
        return failure('bad-input-shape', `${name}: the bundled model has a fixed ${spec.defaultSize[0]}x${spec.defaultSize[1]}x3 input, got ${h}x${w}x${c}`);
      }
      const { loadBundledBackbone } = await import('../bundled.js');
      let got;
      try {
        got = await loadBundledBackbone(tf, name);
      } catch (e) {
        return failure('bundled-failed', `${name} bundled weights (nsfwjs): ${(e as Error).message}`);
      }
      return ok({ model: got.model, spec, preprocessing: 'unit', featureDim: spec.featureDim, weightsHash: got.weightsHash });
    }
    default:
      return loadLocal(tf, spec, opts.weights, inputShape, opts);
  }
}

/** `weights: ./file.h5` (or a directory of the three files for `all`). */
async function loadLocal(tf: Tf, spec: BackboneSpec, weights: string, inputShape: readonly [number, number, number], opts: LoadBackboneOptions): Promise<Result<LoadedBackbone, WeightsFailure>> {
  const target = path.resolve(opts.workspace ?? '.', weights);
  const { hashFile, verifyAgainstPin } = await import('../weights/download.js');
  const { formatH5Problems, loadKerasH5Weights } = await import('../weights/h5.js');
  const { combineHashes } = await import('../weights/imagenet.js');
  const st = await fs.stat(target).catch(() => undefined);
  if (!st) return failure('local-missing', `${spec.name}: weights file ${target} does not exist (weights: ${weights})`, { file: target });
  const model = spec.build(tf, { inputShape, init: 'zeros' });
  const parts =
    spec.name === 'all'
      ? ALL_PARTS.map((p) => ({ model: model.getLayer(p.name) as unknown as tfjs.LayersModel, name: p.name, file: path.join(target, p.imagenet!.fileName), pin: p.imagenet }))
      : [{ model, name: spec.name, file: target, pin: spec.imagenet }];
  if (spec.name === 'all' && !st.isDirectory()) {
    model.dispose();
    return failure('local-missing', `all: weights must be a directory holding ${ALL_PARTS.map((p) => p.imagenet!.fileName).join(', ')}; ${target} is a file`, { file: target });
  }
  const hashes: string[] = [];
  for (const part of parts) {
    const what = `${part.name} weights ${part.file}`;
    let sha: string;
    if (part.pin && opts.verify !== false) {
      const v = await verifyAgainstPin(part.file, part.pin, what);
      if (!v.ok) {
        model.dispose();
        return err({
          ...v.error,
          message: `${v.error.message}
The ImageNet pin is ${part.pin.fileName} (${part.pin.bytes} bytes${part.pin.md5 ? `, md5 ${part.pin.md5}` : ''}). To load other weights into this architecture on purpose, set verify: false.`,
        });
      }
      sha = v.value.sha256;
    } else {
      const ex = await fs.stat(part.file).catch(() => undefined);
      if (!ex) {
        model.dispose();
        return failure('local-missing', `${what}: file does not exist`, { file: part.file });
      }
      sha = (await hashFile(part.file)).sha256;
    }
    const loaded = await loadKerasH5Weights(tf, part.model, part.file);
    if (!loaded.ok) {
      model.dispose();
      return failure('h5-invalid', `${what} does not fit the model:\n${formatH5Problems(loaded.error)}`, { file: part.file, problems: loaded.error });
    }
    hashes.push(sha);
  }
  return ok({ model, spec, preprocessing: spec.preprocessing, featureDim: featureDimFor(spec, [inputShape[0], inputShape[1]]), weightsHash: combineHashes(hashes) });
}
