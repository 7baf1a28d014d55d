/**
 * `evaluate`: scores the trained classifier on the TEST split: accuracy,
 * top-k, per-class precision / recall / F1, macro and weighted averages, the
 * confusion matrix (confusion.json, confusion.svg, confusion.png), a gallery
 * of misclassified test images with their top-3 classes (misclassified.html)
 * and metrics.json for experiment comparison.
 *
 * Predictions come from cached features (head only) when a `features` input is
 * given and the backbone was not trained, else from the full classifier on the
 * `resize` pixels.
 *
 * This stage does not train and never looks at the train/validation splits.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import { DataInputError } from './lib/data-error.js';
import { readPartition } from './lib/splits.js';
import { confusionSvg, galleryHtml, svgToPng, type GalleryItem } from './ml/confusion-image.js';
import { pixelSplits, readFeatures, type PixelSet } from './ml/dataset.js';
import { classificationReport, topIndices, type ClassificationReport } from './ml/metrics.js';
import { HEAD_DIR, loadClassifier, loadModel, readSpec } from './ml/model-io.js';
import { backendResult, stageBackend, type ComputeParams } from './ml/runtime.js';
import { imageRuntimeFacts, tfjsRuntimeFacts } from './lib/runtime-facts.js';

/** `evaluate` params (see schemas/stages/evaluate.json). */
export interface EvaluateParams extends ComputeParams {
  /** top-k accuracies to report (k larger than the class count are skipped). */
  readonly top_k: readonly number[];
  /** Most misclassified images shown in the gallery. */
  readonly gallery_limit: number;
  readonly batch_size: number;
}

/** Defaults (mirror the schema). */
export const EVALUATE_DEFAULTS: EvaluateParams = { top_k: [3, 5], gallery_limit: 200, batch_size: 256, device: 'auto', backend: null, threads: null };

/** Per-class table as text (like scikit-learn's classification_report). */
export function reportText(r: ClassificationReport): string {
  const w = Math.max(12, ...r.perClass.map((c) => c.name.length));
  const f = (x: number): string => x.toFixed(4).padStart(9);
  const lines = [`${''.padEnd(w)} precision    recall  f1-score   support`];
  for (const c of r.perClass) lines.push(`${c.name.padEnd(w)}${f(c.precision)} ${f(c.recall)} ${f(c.f1)} ${String(c.support).padStart(9)}`);
  lines.push('');
  lines.push(`${'accuracy'.padEnd(w)}${''.padStart(9)} ${''.padStart(9)} ${f(r.accuracy)} ${String(r.samples).padStart(9)}`);
  lines.push(`${'macro avg'.padEnd(w)}${f(r.macro.precision)} ${f(r.macro.recall)} ${f(r.macro.f1)} ${String(r.samples).padStart(9)}`);
  lines.push(`${'weighted avg'.padEnd(w)}${f(r.weighted.precision)} ${f(r.weighted.recall)} ${f(r.weighted.f1)} ${String(r.samples).padStart(9)}`);
  for (const [k, v] of Object.entries(r.topK)) if (k !== '1') lines.push(`top-${k} accuracy: ${v.toFixed(4)}`);
  return lines.join('\n') + '\n';
}

/** Writes every evaluate artifact for a report into `outDir`; returns the scalar metrics. */
export async function writeEvaluation(
  outDir: string,
  report: ClassificationReport,
  classes: readonly string[],
  probs: Float32Array,
  labels: Int32Array,
  ids: readonly string[],
  pixels: { set: PixelSet; byId: Map<string, number> } | undefined,
  galleryLimit: number,
): Promise<Record<string, number>> {
  const c = classes.length;
  const metrics: Record<string, number> = {
    accuracy: report.accuracy,
    ...Object.fromEntries(Object.entries(report.topK).filter(([k]) => k !== '1').map(([k, v]) => [`top${k}`, v])),
    macro_precision: report.macro.precision,
    macro_recall: report.macro.recall,
    macro_f1: report.macro.f1,
    weighted_f1: report.weighted.f1,
    loss: report.loss,
    test_samples: report.samples,
  };
  await fs.writeFile(path.join(outDir, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  await fs.writeFile(path.join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await fs.writeFile(path.join(outDir, 'report.txt'), reportText(report));
  await fs.writeFile(path.join(outDir, 'confusion.json'), JSON.stringify({ classes, matrix: report.confusion }, null, 2) + '\n');
  const svg = confusionSvg(report.confusion, classes);
  await fs.writeFile(path.join(outDir, 'confusion.svg'), svg);
  await fs.writeFile(path.join(outDir, 'confusion.png'), await svgToPng(svg));
  const wrong: GalleryItem[] = [];
  let totalWrong = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = probs.subarray(i * c, (i + 1) * c);
    const top = topIndices(row, Math.min(3, c));
    if (top[0] === labels[i]) continue;
    totalWrong++;
    if (wrong.length >= galleryLimit) continue;
    const k = pixels?.byId.get(ids[i]!);
    wrong.push({
      id: ids[i]!,
      trueClass: classes[labels[i]!]!,
      top: top.map((t) => ({ name: classes[t]!, p: row[t]! })),
      ...(k !== undefined ? { pixels: pixels!.set.pixels(k) } : {}),
    });
  }
  await fs.writeFile(path.join(outDir, 'misclassified.html'), await galleryHtml('Misclassified test images', wrong, pixels?.set.shape, totalWrong));
  return metrics;
}

async function run(ctx: StageContext<EvaluateParams>): Promise<StageResult> {
  const p = { ...EVALUATE_DEFAULTS, ...ctx.params };
  const be = await stageBackend(p, ctx.log);
  if (!be.ok) throw new DataInputError(`${ctx.stageId}: ${be.error}`);
  const { tf, choice } = be.value;
  const trainDir = ctx.inputs['train'];
  const partitionDir = ctx.inputs['partition'];
  if (trainDir === undefined || partitionDir === undefined) throw new DataInputError(`${ctx.stageId}: evaluate needs 'train' and 'partition' inputs`);
  const spec = await readSpec(trainDir);
  const featuresDir = ctx.inputs['features'];
  const resizeDir = ctx.inputs['resize'];
  const partition = readPartition(partitionDir);
  const pixels = resizeDir !== undefined ? pixelSplits(resizeDir, partition) : undefined;
  const useFeatures = featuresDir !== undefined && (!spec.backboneSaved || pixels === undefined);
  if (!useFeatures && pixels === undefined) throw new DataInputError(`${ctx.stageId}: evaluate needs a 'features' or a 'resize' input`);
  const c = spec.classes.length;
  let probs: Float32Array;
  let labels: Int32Array;
  let ids: readonly string[];
  if (useFeatures) {
    const { index, sets } = readFeatures(featuresDir);
    const test = sets.test;
    if (index.dim !== spec.featureDim) throw new DataInputError(`${ctx.stageId}: features have dimension ${index.dim}, the model expects ${spec.featureDim}`);
    const head = await loadModel(tf, path.join(trainDir, HEAD_DIR));
    probs = new Float32Array(test.size * c);
    for (let s = 0; s < test.size; s += p.batch_size) {
      const n = Math.min(p.batch_size, test.size - s);
      const out = tf.tidy(() => head.predict(tf.tensor2d(test.data.subarray(s * index.dim, (s + n) * index.dim), [n, index.dim])) as tfjs.Tensor);
      probs.set((await out.data()) as Float32Array, s * c);
      out.dispose();
      ctx.log.progress(s + n, test.size, 'test features');
    }
    head.dispose();
    labels = test.labels;
    ids = test.ids;
  } else {
    const test = pixels!.sets.test;
    const cl = await loadClassifier(tf, trainDir, { cacheDir: ctx.cacheDir, workspace: ctx.workspace, signal: ctx.signal, log: ctx.log });
    if (!cl.ok) throw new DataInputError(`${ctx.stageId}: ${cl.error}`);
    probs = new Float32Array(test.size * c);
    const idx: number[] = [];
    for (let s = 0; s < test.size; s += p.batch_size) {
      const n = Math.min(p.batch_size, test.size - s);
      idx.length = 0;
      for (let k = 0; k < n; k++) idx.push(s + k);
      const batch = new Uint8Array(n * test.sampleLength);
      idx.forEach((i, k) => batch.set(test.pixels(i), k * test.sampleLength));
      probs.set(await cl.value.predict(batch, n), s * c);
      ctx.log.progress(s + n, test.size, 'test images');
    }
    cl.value.dispose();
    labels = test.labels;
    ids = test.ids;
  }
  if (labels.length === 0) throw new DataInputError(`${ctx.stageId}: the test split is empty (check partition ratios)`);
  const report = classificationReport(probs, labels, spec.classes, [1, ...p.top_k]);
  const byId = pixels !== undefined ? new Map(pixels.sets.test.ids.map((id, k) => [id, k])) : undefined;
  const metrics = await writeEvaluation(ctx.outDir, report, spec.classes, probs, labels, ids, pixels !== undefined ? { set: pixels.sets.test, byId: byId! } : undefined, p.gallery_limit);
  await fs.writeFile(path.join(ctx.outDir, 'metrics.json'), JSON.stringify({ ...metrics, backend: backendResult(choice) }, null, 2) + '\n');
  return {
    backend: backendResult(choice),
    metrics,
    summary: `test accuracy ${(report.accuracy * 100).toFixed(2)}% on ${report.samples} images, macro F1 ${report.macro.f1.toFixed(4)}`,
  };
}

export const evaluateStage: BuiltinStage<EvaluateParams> = {
  name: 'evaluate',
  version: '1',
  description: 'Test-split accuracy, top-k, per-class precision/recall/F1, confusion matrix (JSON/SVG/PNG), misclassified gallery, metrics.json',
  runtimeFacts: (p) => ({ ...tfjsRuntimeFacts(p), ...imageRuntimeFacts() }),
  inputs: ['train', 'partition'],
  optionalInputs: ['features', 'resize'],
  run,
};
