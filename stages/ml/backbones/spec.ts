/**
 * Types shared by the backbone registry and the per-architecture builders:
 * backbone names, preprocessing kinds, where ImageNet weights come from, and the
 * registry entry shape.
 *
 * This module holds types and constants only; it builds nothing, downloads
 * nothing and touches no files.
 */
import type * as tfjs from '@tensorflow/tfjs';

/** The tfjs namespace a caller hands in (`@tensorflow/tfjs`, or tfjs-node's re-export of it). Passed, never imported as module state, so the caller picks the backend. */
export type Tf = typeof tfjs;

/** Every backbone the registry knows, in the order the docs list them. */
export const BACKBONE_NAMES = ['mobilenet_v2', 'inception_v3', 'xception', 'resnet50', 'vgg19', 'all', 'simple_cnn'] as const;

/** A registry key; the `backbone:` param of build-model / features. */
export type BackboneName = (typeof BACKBONE_NAMES)[number];

/** Type guard for user input (params are validated by schema, but the registry is also called from code). */
export function isBackboneName(x: string): x is BackboneName {
  return (BACKBONE_NAMES as readonly string[]).includes(x);
}

/** Preprocessing kinds, as an `as const` tuple so schemas and switches share it. */
export const PREPROCESSING_KINDS = ['tf', 'caffe', 'unit', 'none'] as const;

/**
 * How float32 RGB pixels in 0..255 become model input:
 * - `tf`:    x / 127.5 - 1 (Keras `imagenet_utils` mode "tf": MobileNetV2, InceptionV3, Xception);
 * - `caffe`: RGB → BGR, then minus the ImageNet BGR means [103.939, 116.779, 123.68], no scaling (ResNet50, VGG19);
 * - `unit`:  x / 255 (the bundled nsfwjs models and `simple_cnn`);
 * - `none`:  unchanged (the model does its own preprocessing, e.g. `all`).
 */
export type Preprocessing = (typeof PREPROCESSING_KINDS)[number];

/** Where a weights source may come from. `bundled` = shipped with an npm package; `none` = random initialisation. */
export type PretrainedKind = 'imagenet' | 'bundled' | 'none';

/** The Keras bucket every official `keras.applications` weight file lives under; a mirror replaces exactly this prefix. */
export const KERAS_WEIGHTS_BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/';

/**
 * One pinned weight file. `url` = `base + path`; a mirror (option `mirror` or env
 * `PIPELINE_WEIGHTS_MIRROR`) replaces `base`, so a mirror holds the files under
 * the same relative paths as the Keras bucket.
 */
export interface WeightsSource {
  /** URL prefix the file is published under (normally {@link KERAS_WEIGHTS_BASE}). */
  readonly base: string;
  /** Path below `base`, e.g. `resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`. */
  readonly path: string;
  /** File name inside the cache (`<cacheDir>/weights/<sha256>/<fileName>`). */
  readonly fileName: string;
  /** Exact size in bytes (published in Keras download logs); a different size is an error before any hash is computed. */
  readonly bytes: number;
  /** MD5 as published in keras.applications source (`file_hash=`), lower-case hex. Absent where Keras publishes none (MobileNetV2). */
  readonly md5?: string;
  /** SHA-256, lower-case hex, when a published value exists; none of the Keras files has one published, see imagenet.ts. */
  readonly sha256?: string;
}

/** Builds a pinned Keras-bucket source (fileName = last path segment). The URL is `base + path` (download.ts `weightsUrl`). */
export function kerasWeights(p: string, bytes: number, md5?: string): WeightsSource {
  return { base: KERAS_WEIGHTS_BASE, path: p, fileName: p.slice(p.lastIndexOf('/') + 1), bytes, ...(md5 ? { md5 } : {}) };
}

/** Options for {@link BackboneSpec.build}. */
export interface BuildOptions {
  /** [height, width, channels] of the input (channels last). */
  readonly inputShape: readonly [number, number, number];
  /** Only `false` is supported: backbones are feature extractors; the head is build-model's job. */
  readonly includeTop?: false;
  /**
   * Initial weights: `glorot` = Keras defaults (glorot_uniform kernels, zero biases, BN gamma 1 / beta 0 /
   * mean 0 / var 1); `zeros` = all kernels zero, which skips random-number generation when the
   * weights will be overwritten by a loaded file anyway (or in tests that only count parameters).
   */
  readonly init?: 'glorot' | 'zeros';
  /** Seed for the glorot initialisers, so `weights: none` runs are reproducible. Each layer gets `seed + k`. */
  readonly seed?: number;
  /**
   * Automatic-name counters shared between builds, like one Keras session: `all` passes one map through its
   * branches so Xception's unnamed layers continue after InceptionV3's (`conv2d_94`, ...) instead of colliding
   * (tfjs refuses to save a model with duplicate weight names). Mutated by the build. Default: a fresh map.
   */
  readonly autoNames?: Map<string, number>;
}

/** What the model returned by `build` outputs. */
export type BackboneOutput =
  /** A 4-D feature map [batch, h, w, featureDim]; the stages apply global average pooling (or flatten) themselves. */
  | 'map'
  /** A 2-D vector [batch, featureDim] already pooled/flattened inside the model (`all`, `simple_cnn`). */
  | 'vector';

/** Keras's parameter counts for the architecture with include_top=False, pooling=None (the numbers tests check). */
export interface ParamCounts {
  readonly total: number;
  readonly trainable: number;
  readonly nonTrainable: number;
}

/** A registry entry: everything a stage needs to know about a backbone. */
export interface BackboneSpec {
  readonly name: BackboneName;
  /** One line for docs and `pipeline dag`. */
  readonly description: string;
  /** [height, width] the pretrained weights were trained at. */
  readonly defaultSize: readonly [number, number];
  /** Smallest [height, width] the architecture accepts (Keras `obtain_input_shape` min_size). */
  readonly minSize: readonly [number, number];
  /** Default input channels (3 = RGB; `simple_cnn` defaults to 1 = grayscale). Pretrained weights need 3. */
  readonly channels: number;
  /** How 0..255 RGB becomes model input; apply with `preprocess()` before `model.predict`. */
  readonly preprocessing: Preprocessing;
  /** Name of the layer whose output is the feature (the model's output layer). */
  readonly featureLayer: string;
  /**
   * Feature size at `defaultSize`. For `output: 'map'` it is the channel count, i.e. the dimension after global
   * average pooling, which is what the features stage stores (flattening would make it depend on the input size).
   * For `output: 'vector'` it is the model's output width at `defaultSize` (simple_cnn flattens, so its width grows
   * with the input size: use {@link featureDimFor}).
   */
  readonly featureDim: number;
  /** Whether the model outputs a feature map or an already pooled/flattened vector. */
  readonly output: BackboneOutput;
  /** Pinned official Keras no-top weights (for `all`, see `imagenetParts`). */
  readonly imagenet?: WeightsSource;
  /** Which `weights:` values the entry supports (a local `.h5` path is always allowed besides these). */
  readonly pretrainedKinds: readonly PretrainedKind[];
  /** Keras's include_top=False parameter counts (for `all`: the sum of its parts plus its fixed preprocessing). */
  readonly params: ParamCounts;
  /** Builds the architecture with layer names matching keras.applications (Keras 3 auto-names for unnamed layers). */
  build(tf: Tf, opts: BuildOptions): tfjs.LayersModel;
}

/** Feature size for an input size: `featureDim` for pooled outputs; the flatten size for `simple_cnn`. */
export function featureDimFor(spec: BackboneSpec, size: readonly [number, number]): number {
  if (spec.name === 'simple_cnn') return Math.floor(Math.floor(size[0] / 2) / 2) * Math.floor(Math.floor(size[1] / 2) / 2) * 64;
  return spec.featureDim;
}
