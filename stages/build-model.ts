/**
 * `build-model`: a backbone from the registry plus a classification head.
 * Writes `spec.json` (how backbone and head form the classifier, and how the
 * `resize` input made its pixels, so `predict` can do the same), `head/`
 * (tfjs layers model: feature vector → softmax), `backbone/` only when its
 * weights cannot be reproduced from the registry (random init), and
 * `summary.txt` (layer table, trainable / non-trainable parameter counts).
 *
 * Pooling defaults to global average (`avg`) rather than the seed's Flatten:
 * features then do not depend on the input size, the head has ~50x fewer
 * parameters for InceptionV3 at 256 (2048 vs 6x6x2048 inputs) and the feature
 * cache is 36x smaller; `pooling: flatten` reproduces the seed exactly.
 *
 * This stage does not train and does not read pixels.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { readManifest } from './lib/manifest.js';
import { ShardReader } from './lib/shards.js';
import { DataInputError } from './lib/data-error.js';
import { BACKBONES, featureDimFor, loadBackbone, paramCounts, type BackboneName } from './ml/backbones/registry.js';
import { buildHead, SEED_HEAD, stackModel, type HeadLayer, type Pooling } from './ml/head.js';
import { BACKBONE_DIR, HEAD_DIR, imageResizeOf, MODEL_SPEC_FORMAT, saveModel, writeSpec, type FineTuneBatchNorm, type ImageResize, type ModelSpec } from './ml/model-io.js';
import { backendResult, stageBackend, type ComputeParams } from './ml/runtime.js';
import { buildSmallCnn, isRegistrySimpleCnn, REGISTRY_SIMPLE_CNN, smallCnnFeatureDim, type SmallCnnConfig } from './ml/small-cnn.js';
import type { Tf } from './ml/backbones/spec.js';
import { tfjsRuntimeFacts } from './lib/runtime-facts.js';

/** `build-model` params (see schemas/stages/build-model.json). */
export interface BuildModelParams extends ComputeParams {
  readonly backbone: BackboneName;
  /** imagenet | bundled | none | a path; null = bundled for mobilenet_v2/inception_v3, none for simple_cnn, else imagenet. */
  readonly weights: string | null;
  /** [height, width]; null = the resize input's size, else the backbone's default. */
  readonly input_size: readonly [number, number] | null;
  /** 1 or 3; null = the resize input's channels, else the backbone's default. */
  readonly channels: 1 | 3 | null;
  readonly head: readonly HeadLayer[];
  readonly pooling: Pooling;
  readonly freeze: boolean;
  /** Second phase; `batchnorm` (default `frozen`) keeps unfrozen BatchNorm layers in inference mode, as Keras advises. */
  readonly fine_tune: { readonly from_layer: string; readonly lr: number; readonly epochs: number; readonly batchnorm?: FineTuneBatchNorm } | null;
  /** simple_cnn only: architecture knobs (defaults = the registry's simple_cnn). */
  readonly cnn: SmallCnnConfig;
}

/** Defaults (mirrors the schema). */
export const BUILD_MODEL_DEFAULTS: Omit<BuildModelParams, 'backbone'> = {
  weights: null,
  input_size: null,
  channels: null,
  head: SEED_HEAD,
  pooling: 'avg',
  freeze: true,
  fine_tune: null,
  cnn: REGISTRY_SIMPLE_CNN,
  device: 'auto',
  backend: null,
  threads: null,
};

/** The `weights:` a backbone gets when the param is null. */
export function defaultWeights(backbone: BackboneName): string {
  if (backbone === 'mobilenet_v2' || backbone === 'inception_v3') return 'bundled';
  if (backbone === 'simple_cnn') return 'none';
  return 'imagenet';
}

function withDefaults(p: Partial<BuildModelParams> & { backbone: BackboneName }): BuildModelParams {
  return { ...BUILD_MODEL_DEFAULTS, ...p, cnn: { ...REGISTRY_SIMPLE_CNN, ...(p.cnn ?? {}) } };
}

/** A Keras-like layer table with parameter counts. */
export function modelSummary(model: tfjs.LayersModel, title: string): string {
  const rows: string[][] = [['Layer (type)', 'Output shape', 'Params', 'Trainable']];
  const walk = (m: tfjs.LayersModel, prefix: string): void => {
    for (const l of m.layers) {
      const count = l.countParams();
      const shape = JSON.stringify(l.outputShape).replace(/null/g, 'None');
      rows.push([`${prefix}${l.name} (${l.getClassName()})`, shape, String(count), l.trainable ? 'yes' : 'no']);
    }
  };
  walk(model, '');
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((v, c) => (c === 2 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join('  ').trimEnd();
  const counts = paramCounts(model);
  return [
    `Model: ${title}`,
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    '',
    `Total params: ${counts.total.toLocaleString('en-US')}`,
    `Trainable params: ${counts.trainable.toLocaleString('en-US')}`,
    `Non-trainable params: ${counts.nonTrainable.toLocaleString('en-US')}`,
    '',
  ].join('\n');
}

/** The classes and pixel geometry the inputs provide. */
function readInputs(ctx: StageContext<BuildModelParams>): { classes: string[]; size?: [number, number]; channels?: 1 | 3; resize?: ImageResize } {
  const resize = ctx.inputs['resize'];
  const ingest = ctx.inputs['ingest'];
  if (resize !== undefined) {
    const r = new ShardReader(resize);
    const recorded = imageResizeOf(r.index);
    if (recorded === undefined) ctx.log.warn(`${ctx.stageId}: the resize output does not record fit/kernel/background (made by an older resize); predict will resize new images with the resize defaults`);
    return { classes: [...r.index.classes], size: [r.index.height, r.index.width], channels: r.index.channels, ...(recorded !== undefined ? { resize: recorded } : {}) };
  }
  if (ingest !== undefined) return { classes: readManifest(ingest).classes };
  throw new DataInputError(`${ctx.stageId}: build-model needs an 'ingest' or 'resize' input to know the classes`);
}

/** Builds (or loads) the backbone described by the params; returns it with its weights identity. */
async function makeBackbone(
  tf: Tf,
  ctx: StageContext<BuildModelParams>,
  p: BuildModelParams,
  weights: string,
  size: [number, number],
  channels: number,
): Promise<{ model: tfjs.LayersModel; weightsHash: string; featureDim: number; preprocessing?: ModelSpec['preprocessing'] }> {
  if (p.backbone === 'simple_cnn' && !isRegistrySimpleCnn(p.cnn)) {
    if (weights !== 'none') throw new DataInputError(`${ctx.stageId}: a custom 'cnn' architecture can only start from weights: none`);
    const model = buildSmallCnn(tf, p.cnn, [size[0], size[1], channels], ctx.seed);
    return { model, weightsHash: `none:${ctx.seed}:cnn:${JSON.stringify(p.cnn)}`, featureDim: smallCnnFeatureDim(p.cnn, size) };
  }
  const r = await loadBackbone(tf, p.backbone, {
    weights,
    inputSize: size,
    channels,
    cacheDir: ctx.cacheDir,
    workspace: ctx.workspace,
    signal: ctx.signal,
    seed: ctx.seed,
    log: ctx.log,
  });
  if (!r.ok) throw new DataInputError(`${ctx.stageId}: ${r.error.message}`);
  const spec = BACKBONES.get(p.backbone)!;
  const featureDim = spec.output === 'vector' ? featureDimFor(spec, size) : spec.featureDim;
  // Bundled nsfwjs weights expect [0, 1] inputs ('unit'), not the architecture's own preprocessing.
  return { model: r.value.model, weightsHash: r.value.weightsHash, featureDim, preprocessing: r.value.preprocessing };
}

async function run(ctx: StageContext<BuildModelParams>): Promise<StageResult> {
  const p = withDefaults(ctx.params);
  const be = await stageBackend(p, ctx.log);
  if (!be.ok) throw new DataInputError(`${ctx.stageId}: ${be.error}`);
  const { tf, choice } = be.value;
  const spec = BACKBONES.get(p.backbone)!;
  const inputs = readInputs(ctx);
  if (inputs.classes.length < 2) throw new DataInputError(`${ctx.stageId}: need at least 2 classes, the inputs have ${inputs.classes.length}`);
  const size = (inputs.size ?? p.input_size ?? spec.defaultSize) as [number, number];
  if (inputs.size !== undefined && p.input_size !== null && (p.input_size[0] !== size[0] || p.input_size[1] !== size[1])) {
    throw new DataInputError(`${ctx.stageId}: input_size ${p.input_size.join('x')} differs from the resize output ${size.join('x')}; change one of them`);
  }
  const channels = inputs.channels ?? p.channels ?? spec.channels;
  const weights = p.weights ?? defaultWeights(p.backbone);
  const bb = await makeBackbone(tf, ctx, p, weights, size, channels);
  if (p.fine_tune !== null && !bb.model.layers.some((l) => l.name === p.fine_tune!.from_layer)) {
    const names = bb.model.layers.filter((l) => l.countParams() > 0).map((l) => l.name);
    const shown = names.length > 12 ? [...names.slice(0, 6), '…', ...names.slice(-6)] : names;
    throw new DataInputError(`${ctx.stageId}: fine_tune.from_layer '${p.fine_tune.from_layer}' is not a layer of ${p.backbone} (layers with weights: ${shown.join(', ')}; all in summary.txt of a build without fine_tune)`);
  }
  const pooling = spec.output === 'map' ? p.pooling : null;
  const outShape = bb.model.outputs[0]!.shape;
  const featureDim = pooling === 'flatten' ? outShape.slice(1).reduce((a: number, b) => a * (b ?? 1), 1) : bb.featureDim;
  const head = buildHead(tf, featureDim, inputs.classes.length, p.head, ctx.seed);
  const backboneSaved = weights === 'none';
  if (p.freeze) bb.model.trainable = false;
  const full = stackModel(tf, bb.model, head, pooling ?? undefined);
  const modelSpec: ModelSpec = {
    format: MODEL_SPEC_FORMAT,
    backbone: p.backbone,
    weights,
    weightsHash: bb.weightsHash,
    preprocessing: bb.preprocessing ?? spec.preprocessing,
    inputSize: size,
    channels,
    classes: inputs.classes,
    pooling,
    featureDim,
    head: p.head,
    freeze: p.freeze && weights !== 'none',
    ...(p.fine_tune !== null ? { fineTune: { fromLayer: p.fine_tune.from_layer, lr: p.fine_tune.lr, epochs: p.fine_tune.epochs, batchnorm: p.fine_tune.batchnorm ?? 'frozen' } } : {}),
    backboneSaved,
    seed: ctx.seed,
    ...(inputs.resize !== undefined ? { resize: inputs.resize } : {}),
  };
  if (weights === 'none' && p.freeze) ctx.log.info('backbone has random weights (weights: none): it is trained with the head, freeze does not apply');
  await writeSpec(ctx.outDir, modelSpec);
  await saveModel(tf, head, path.join(ctx.outDir, HEAD_DIR));
  if (backboneSaved) {
    bb.model.trainable = true;
    await saveModel(tf, bb.model, path.join(ctx.outDir, BACKBONE_DIR));
  }
  const summary = modelSummary(full, `${p.backbone} (${weights}) ${size.join('x')}x${channels} + head → ${inputs.classes.length} classes`);
  await fs.writeFile(path.join(ctx.outDir, 'summary.txt'), summary);
  const counts = paramCounts(full);
  full.dispose();
  return {
    backend: backendResult(choice),
    metrics: { params_total: counts.total, params_trainable: counts.trainable, feature_dim: featureDim },
    summary: `${p.backbone} ${size.join('x')}x${channels}, ${inputs.classes.length} classes, ${counts.total.toLocaleString('en-US')} params (${counts.trainable.toLocaleString('en-US')} trainable)`,
  };
}

export const buildModelStage: BuiltinStage<BuildModelParams> = {
  name: 'build-model',
  version: '4',
  description: 'Backbone from the registry + classification head (default: the seed\'s BN/Dropout/Dense128/BN/Dropout/softmax); writes spec.json, head/, summary.txt',
  runtimeFacts: (p) => tfjsRuntimeFacts(p),
  inputs: [],
  optionalInputs: ['ingest', 'resize'],
  fileDeps(params) {
    const w = params.weights;
    return w !== null && w !== undefined && !['imagenet', 'bundled', 'none'].includes(w) ? [w] : [];
  },
  resources(params) {
    const r: Record<string, number> = params.device === 'gpu' ? { gpu: 1 } : {};
    return r;
  },
  run,
};
