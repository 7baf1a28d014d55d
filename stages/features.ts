/**
 * `features` (the bottleneck cache): runs the frozen backbone (+ pooling)
 * once per image, and once per augmented variant, in batches through the
 * fused inference compiler (stages/ml/fuse.ts), and writes per-split float32
 * feature matrices (`<split>.f32`, `<split>.labels`, `features.json`).
 *
 * Every vector is cached per item in `ctx.items` under
 * sha256(backbone, weights hash, preprocessing, input size, channels, pooling,
 * sha256 of the item's pixels): adding images computes only theirs, and
 * changing resize params or the backbone recomputes exactly what changed.
 * Training the head then never runs the backbone (the seed recomputed it for
 * every batch of every epoch).
 *
 * This stage does not train; it refuses a spec whose backbone is trained end to
 * end (features of a changing backbone cannot be cached).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type * as tfjs from '@tensorflow/tfjs';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { DataInputError } from './lib/data-error.js';
import { SPLITS, readPartition } from './lib/splits.js';
import { preprocess } from './ml/backbones/registry.js';
import { FEATURES_INDEX, featureFile, labelFile, pixelSplits, type FeaturesIndex } from './ml/dataset.js';
import { compileInference } from './ml/fuse.js';
import { poolingLayer } from './ml/head.js';
import { loadSpecBackbone, readSpec, type ModelSpec } from './ml/model-io.js';
import { backendResult, stageBackend, type ComputeParams } from './ml/runtime.js';
import { tfjsRuntimeFacts } from './lib/runtime-facts.js';

/** `features` params (see schemas/stages/features.json). */
export interface FeaturesParams extends ComputeParams {
  /** Images per backbone batch. */
  readonly batch_size: number;
}

/** Defaults (mirror the schema). */
export const FEATURES_DEFAULTS: FeaturesParams = { batch_size: 32, device: 'auto', backend: null, threads: null };

/** Bumped when the way a vector is computed changes (part of every item key). */
const FEATURE_KEY_VERSION = '1';

/** The per-item cache key (see module doc). */
export function featureKey(spec: ModelSpec, pixels: Uint8Array): string {
  const pix = createHash('sha256').update(pixels).digest('hex');
  const model = {
    v: FEATURE_KEY_VERSION,
    backbone: spec.backbone,
    weightsHash: spec.weightsHash,
    preprocessing: spec.preprocessing,
    inputSize: spec.inputSize,
    channels: spec.channels,
    pooling: spec.pooling,
  };
  return createHash('sha256').update(JSON.stringify({ model, pix })).digest('hex');
}

async function run(ctx: StageContext<FeaturesParams>): Promise<StageResult> {
  const p = { ...FEATURES_DEFAULTS, ...ctx.params };
  const modelDir = ctx.inputs['build-model'];
  const resizeDir = ctx.inputs['resize'];
  const partitionDir = ctx.inputs['partition'];
  if (modelDir === undefined || resizeDir === undefined || partitionDir === undefined) {
    throw new DataInputError(`${ctx.stageId}: features needs 'build-model', 'resize' and 'partition' inputs`);
  }
  const spec = await readSpec(modelDir);
  if (spec.weights === 'none') {
    throw new DataInputError(`${ctx.stageId}: backbone ${spec.backbone} has random weights (weights: none) and is trained end to end; remove the features stage and train on pixels`);
  }
  const be = await stageBackend(p, ctx.log);
  if (!be.ok) throw new DataInputError(`${ctx.stageId}: ${be.error}`);
  const { tf, choice } = be.value;
  const splits = pixelSplits(resizeDir, readPartition(partitionDir), ctx.inputs['augment']);
  const [h, w, c] = splits.sets.train.shape;
  if (h !== spec.inputSize[0] || w !== spec.inputSize[1] || c !== spec.channels) {
    throw new DataInputError(`${ctx.stageId}: the resize output is ${h}x${w}x${c} but the model expects ${spec.inputSize.join('x')}x${spec.channels}`);
  }
  const bb = await loadSpecBackbone(tf, modelDir, spec, { cacheDir: ctx.cacheDir, workspace: ctx.workspace, signal: ctx.signal, log: ctx.log });
  if (!bb.ok) throw new DataInputError(`${ctx.stageId}: ${bb.error}`);
  let extractor: tfjs.LayersModel = bb.value;
  if (spec.pooling !== null) {
    extractor = tf.model({ inputs: bb.value.inputs, outputs: poolingLayer(tf, spec.pooling).apply(bb.value.outputs[0]!) as tfjs.SymbolicTensor });
  }
  let fused: ReturnType<typeof compileInference> | undefined;
  const dim = spec.featureDim;
  const total = SPLITS.reduce((a, s) => a + splits.sets[s].size, 0);
  let done = 0;
  let computed = 0;
  let cached = 0;
  const splitIndex: Record<string, { count: number; ids: readonly string[] }> = {};
  const source = { backbone: spec.backbone, weightsHash: spec.weightsHash, preprocessing: spec.preprocessing, inputSize: spec.inputSize, channels: spec.channels, pooling: spec.pooling };
  const t0 = performance.now();
  let computeSeconds = 0;
  for (const split of SPLITS) {
    const set = splits.sets[split];
    const out = new Float32Array(set.size * dim);
    for (let s = 0; s < set.size; s += p.batch_size) {
      if (ctx.signal.aborted) throw new DataInputError(`${ctx.stageId}: cancelled`);
      const n = Math.min(p.batch_size, set.size - s);
      const missing: { k: number; key: string }[] = [];
      for (let k = s; k < s + n; k++) {
        const key = featureKey(spec, set.pixels(k));
        const hit = await ctx.items.get(key);
        if (hit !== undefined && hit.length === dim * 4) {
          out.set(new Float32Array(hit.buffer.slice(hit.byteOffset, hit.byteOffset + hit.byteLength)), k * dim);
          cached++;
        } else missing.push({ k, key });
      }
      if (missing.length > 0) {
        fused ??= compileInference(extractor);
        const tc = performance.now();
        const batch = new Float32Array(missing.length * set.sampleLength);
        missing.forEach(({ k }, j) => batch.set(set.pixels(k), j * set.sampleLength));
        const y = tf.tidy(() => fused!.predict(preprocess(tf, spec.preprocessing, tf.tensor4d(batch, [missing.length, h, w, c]))));
        const data = (await y.data()) as Float32Array;
        y.dispose();
        computeSeconds += (performance.now() - tc) / 1000;
        if (data.length !== missing.length * dim) throw new Error(`backbone produced ${data.length / missing.length} features per image, spec says ${dim}`);
        for (let j = 0; j < missing.length; j++) {
          const v = data.subarray(j * dim, (j + 1) * dim);
          out.set(v, missing[j]!.k * dim);
          await ctx.items.put(missing[j]!.key, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        }
        computed += missing.length;
      }
      done += n;
      ctx.log.progress(done, total, `${split} features (${computed} computed, ${cached} cached)`);
    }
    await fs.writeFile(path.join(ctx.outDir, featureFile(split)), Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    await fs.writeFile(path.join(ctx.outDir, labelFile(split)), Buffer.from(set.labels.buffer, set.labels.byteOffset, set.labels.byteLength));
    splitIndex[split] = { count: set.size, ids: set.ids };
  }
  const index: FeaturesIndex = { format: 'pipeline.features/v1', dim, classes: splits.classes, splits: splitIndex as FeaturesIndex['splits'], source };
  await fs.writeFile(path.join(ctx.outDir, FEATURES_INDEX), JSON.stringify(index));
  fused?.dispose();
  bb.value.dispose();
  const seconds = (performance.now() - t0) / 1000;
  return {
    backend: backendResult(choice),
    metrics: { items: total, computed, cached, feature_dim: dim, ...(computed > 0 ? { images_per_s: computed / computeSeconds } : {}) },
    summary: `${total} feature vectors (${dim}-d): ${computed} computed, ${cached} from cache in ${seconds.toFixed(1)}s`,
  };
}

export const featuresStage: BuiltinStage<FeaturesParams> = {
  name: 'features',
  version: '1',
  description: 'Bottleneck cache: runs the frozen backbone once per image / augmented variant (cached per item) and writes per-split feature matrices',
  runtimeFacts: (p) => tfjsRuntimeFacts(p),
  inputs: ['build-model', 'resize', 'partition'],
  optionalInputs: ['augment'],
  run,
};
