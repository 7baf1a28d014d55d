/**
 * Shared fixtures for the model-stage tests: runs the real data stages
 * (ingest → resize → partition) over the committed Fashion-MNIST sample into a
 * stage rig, so the model stages get genuine inputs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ingestStage } from '../../stages/ingest.js';
import { resizeStage, RESIZE_DEFAULTS, type ResizeParams } from '../../stages/resize.js';
import { partitionStage, PARTITION_DEFAULTS } from '../../stages/partition.js';
import { INGEST_DEFAULTS } from '../../stages/ingest.js';
import { BUILD_MODEL_DEFAULTS } from '../../stages/build-model.js';
import type { StageRig } from '../helpers/stage-context.js';
import { repoRoot } from '../helpers/rig.js';

/** The committed sample (~400 28x28 PNGs in class folders). */
export const SAMPLE_DIR = path.join(repoRoot, 'pipelines', 'data', 'fashion-mnist-sample');

/** The sample's first image (by name) of class `cls`. */
export async function sampleImage(cls: string): Promise<string> {
  return path.join(SAMPLE_DIR, cls, (await fs.readdir(path.join(SAMPLE_DIR, cls))).sort()[0]!);
}

/** build-model params of a tiny from-scratch classifier (one 8-filter conv block, no head layers): quick to train. */
export const TINY_CNN_MODEL = { ...BUILD_MODEL_DEFAULTS, backbone: 'simple_cnn' as const, cnn: { filters: [8], convs_per_block: 1, dropout: 0 }, head: [] };

/** Output dirs of the data stages for the sample. */
export interface DataDirs {
  readonly ingest: string;
  readonly resize: string;
  readonly partition: string;
}

/** Runs ingest → resize (28x28x1 unless given; other resize params from `resize`) → partition on `source` (default: the sample). */
export async function dataStages(
  rig: StageRig,
  opts: { source?: string; size?: [number, number]; channels?: 1 | 3; ratios?: [number, number, number]; resize?: Partial<ResizeParams> } = {},
): Promise<DataDirs> {
  const ingest = await rig.context('ingest', { ...INGEST_DEFAULTS, source: opts.source ?? SAMPLE_DIR } as never);
  await ingestStage.run(ingest);
  const resize = await rig.context('resize', { ...RESIZE_DEFAULTS, ...opts.resize, size: opts.size ?? [28, 28], channels: opts.channels ?? 1 }, { ingest: ingest.outDir });
  await resizeStage.run(resize);
  const partition = await rig.context('partition', { ...PARTITION_DEFAULTS, ratios: opts.ratios ?? [0.7, 0.15, 0.15] }, { ingest: ingest.outDir });
  await partitionStage.run(partition);
  return { ingest: ingest.outDir, resize: resize.outDir, partition: partition.outDir };
}
