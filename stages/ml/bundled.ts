/**
 * The `bundled` backbone weights: the pretrained Keras models that the npm
 * package `nsfwjs` 4.2.1 ships inside `node_modules/nsfwjs/dist/models/`, loaded
 * offline with `tf.io.fromMemory`.
 *
 * What they are, honestly: nsfwjs's MobileNetV2 (α=1.0, 224×224) and
 * InceptionV3 (299×299) are ImageNet-pretrained Keras models that nsfwjs
 * FINE-TUNED on its own 5-class task (drawing / hentai / neutral / porn / sexy).
 * Their convolutional features are therefore not the stock ImageNet features;
 * they are good generic image features, biased toward that task. The weights
 * ship 8-bit quantised (`uint8` with per-tensor min/scale), which tfjs
 * dequantises on load, so they differ slightly from the float originals.
 * Inputs are RGB scaled to [0, 1] (nsfwjs divides by 255), not Keras's [−1, 1].
 *
 * File format (found by inspection): each file is a browserify UMD bundle.
 * `model.min.js` exports `{modelTopology, weightsManifest}` (a Keras 2.2.4
 * `model.json`); `group1-shardKofN.min.js` exports the shard's bytes as one
 * base64 string.
 *
 * This module does NOT download anything, does not include nsfwjs's
 * classification head (the models are cut at the feature layer), and does not
 * preprocess images.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);

/** Names of the bundled backbones, as used by `weights: bundled`. */
export const BUNDLED_BACKBONES = ['mobilenet_v2', 'inception_v3'] as const;
/** One of `BUNDLED_BACKBONES`. */
export type BundledBackboneName = (typeof BUNDLED_BACKBONES)[number];

/** Static facts about each bundled model. */
export interface BundledSpec {
  /** Directory under `nsfwjs/dist/models/`. */
  readonly dir: string;
  /** Square input side the model was trained at. */
  readonly inputSize: number;
  /** Layer the backbone is cut at. */
  readonly featureLayer: string;
  /** [height, width, channels] of the feature map at `inputSize`. */
  readonly featureShape: readonly [number, number, number];
}

/** The table of bundled models (feature layers as in keras.applications). */
export const BUNDLED_SPECS: Readonly<Record<BundledBackboneName, BundledSpec>> = {
  mobilenet_v2: { dir: 'mobilenet_v2', inputSize: 224, featureLayer: 'out_relu', featureShape: [7, 7, 1280] },
  inception_v3: { dir: 'inception_v3', inputSize: 299, featureLayer: 'mixed10', featureShape: [8, 8, 2048] },
};

/** A loaded bundled backbone. */
export interface BundledBackbone {
  readonly name: BundledBackboneName;
  /** The Keras model truncated at `spec.featureLayer`; input [n, size, size, 3]. */
  readonly model: tfTypes.LayersModel;
  readonly spec: BundledSpec;
  /** The range the model expects its RGB inputs in. */
  readonly inputRange: readonly [0, 1];
  /** sha256 (hex) of the shipped weight bytes, for cache keys and fingerprints. */
  readonly weightsHash: string;
  /** Where the weights came from, e.g. `nsfwjs@4.2.1 dist/models/mobilenet_v2`. */
  readonly source: string;
}

interface ModelModule {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tfTypes.io.WeightsManifestEntry[] }[];
}

/** The installed nsfwjs package directory (its `exports` map hides package.json, so walk up from the entry point). */
function nsfwjsRoot(): { root: string; version: string } {
  let dir = path.dirname(require.resolve('nsfwjs'));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nsfwjs') return { root: dir, version: pkg.version ?? 'unknown' };
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('nsfwjs: package root not found above its entry point');
    dir = up;
  }
}

/** Reads the model files of `name` from the installed nsfwjs package: topology, specs, weight bytes. */
export function readBundledArtifacts(name: BundledBackboneName): { artifacts: tfTypes.io.ModelArtifacts; weightsHash: string; source: string } {
  const spec = BUNDLED_SPECS[name];
  const { root, version } = nsfwjsRoot();
  const dir = path.join(root, 'dist', 'models', spec.dir);
  const mod = require(path.join(dir, 'model.min.js')) as ModelModule;
  const buffers: Buffer[] = [];
  for (const group of mod.weightsManifest) {
    for (const p of group.paths) {
      const b64 = require(path.join(dir, `${p}.min.js`)) as unknown;
      if (typeof b64 !== 'string') throw new Error(`nsfwjs ${spec.dir}/${p}.min.js: expected a base64 string export`);
      buffers.push(Buffer.from(b64, 'base64'));
    }
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return {
    artifacts: {
      modelTopology: mod.modelTopology,
      weightSpecs: mod.weightsManifest.flatMap((g) => g.weights),
      weightData,
      format: 'layers-model',
    },
    weightsHash: createHash('sha256').update(all).digest('hex'),
    source: `nsfwjs@${version} dist/models/${spec.dir}`,
  };
}

/**
 * Loads a bundled backbone offline and cuts it at its feature layer.
 * Throws only when the nsfwjs install itself is broken (a bug of the install,
 * not a user error).
 */
export async function loadBundledBackbone(tf: typeof tfTypes, name: BundledBackboneName): Promise<BundledBackbone> {
  const spec = BUNDLED_SPECS[name];
  const { artifacts, weightsHash, source } = readBundledArtifacts(name);
  const full = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const model = tf.model({ inputs: full.inputs, outputs: full.getLayer(spec.featureLayer).output as tfTypes.SymbolicTensor, name: `${name}_bundled` });
  // Free nsfwjs's classification head: its layers are not part of the truncated model.
  const kept = new Set(model.layers);
  for (const layer of full.layers) if (!kept.has(layer)) layer.dispose();
  return { name, model, spec, inputRange: [0, 1], weightsHash, source };
}
