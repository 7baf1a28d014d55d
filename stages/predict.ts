/**
 * `predict`: classifies image files (paths, directories, globs; workspace
 * relative) with the model from a `train` input. Writes `predictions.json`
 * (or `predictions.csv`) with the top-k classes and probabilities per image; a
 * file that cannot be decoded gets its own `error` entry and the others are
 * still predicted. The same logic backs `pipeline predict` (src/cli/predict.ts).
 *
 * This stage does not train or evaluate.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { DataInputError } from './lib/data-error.js';
import { loadClassifier } from './ml/model-io.js';
import { expandImagePaths, predictFiles, predictionsCsv, predictResizeOptions } from './ml/predict-core.js';
import { backendResult, stageBackend, type ComputeParams } from './ml/runtime.js';
import { imageRuntimeFacts, tfjsRuntimeFacts } from './lib/runtime-facts.js';

/** `predict` params (see schemas/stages/predict.json). */
export interface PredictParams extends ComputeParams {
  /** Workspace-relative files, directories or globs. */
  readonly images: readonly string[];
  readonly top_k: number;
  readonly format: 'json' | 'csv';
  readonly batch_size: number;
}

/** Defaults (mirror the schema). */
export const PREDICT_DEFAULTS: Omit<PredictParams, 'images'> = { top_k: 3, format: 'json', batch_size: 32, device: 'auto', backend: null, threads: null };

async function run(ctx: StageContext<PredictParams>): Promise<StageResult> {
  const p = { ...PREDICT_DEFAULTS, ...ctx.params };
  const be = await stageBackend(p, ctx.log);
  if (!be.ok) throw new DataInputError(`${ctx.stageId}: ${be.error}`);
  const { tf, choice } = be.value;
  const trainDir = ctx.inputs['train'];
  if (trainDir === undefined) throw new DataInputError(`${ctx.stageId}: predict needs a 'train' input`);
  const { files, missing } = expandImagePaths(ctx.workspace, p.images);
  for (const m of missing) ctx.log.warn(`${m}: no such file (or the glob matched nothing)`);
  const cl = await loadClassifier(tf, trainDir, { cacheDir: ctx.cacheDir, workspace: ctx.workspace, signal: ctx.signal, log: ctx.log });
  if (!cl.ok) throw new DataInputError(`${ctx.stageId}: ${cl.error}`);
  const note = predictResizeOptions(cl.value.spec).note;
  if (note !== undefined) ctx.log.warn(note);
  const preds = await predictFiles(cl.value, files, {
    topK: p.top_k,
    batchSize: p.batch_size,
    display: (f) => path.relative(ctx.workspace, f).split(path.sep).join('/'),
    progress: (d, t) => ctx.log.progress(d, t, 'images'),
    signal: ctx.signal,
  });
  cl.value.dispose();
  const errors = preds.filter((x) => x.error !== undefined);
  for (const e of errors) ctx.log.warn(`${e.file}: ${e.error}`);
  if (p.format === 'csv') await fs.writeFile(path.join(ctx.outDir, 'predictions.csv'), predictionsCsv(preds, Math.min(p.top_k, cl.value.spec.classes.length)));
  else await fs.writeFile(path.join(ctx.outDir, 'predictions.json'), JSON.stringify({ classes: cl.value.spec.classes, predictions: preds.map(({ probabilities: _, ...rest }) => rest) }, null, 2) + '\n');
  return {
    backend: backendResult(choice),
    metrics: { images: files.length, predicted: files.length - errors.length, errors: errors.length },
    summary: `${files.length - errors.length} of ${files.length} images predicted${errors.length > 0 ? `, ${errors.length} failed` : ''}`,
  };
}

export const predictStage: BuiltinStage<PredictParams> = {
  name: 'predict',
  version: '2',
  description: 'Top-k classes with probabilities for image files, using a trained model (predictions.json or .csv); bad images get their own error',
  runtimeFacts: (p) => ({ ...tfjsRuntimeFacts(p), ...imageRuntimeFacts() }),
  inputs: ['train'],
  fileDeps(params) {
    return [...params.images];
  },
  run,
};
