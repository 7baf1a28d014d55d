/**
 * ImageNet weights for the registry: which pinned Keras files a backbone needs, and getting them verified into
 * a model (download or cache via download.ts, then h5.ts).
 *
 * Pins: URLs and MD5s are Keras's own (`file_hash=` in keras/src/applications/*.py); sizes are the byte counts
 * Keras prints when it downloads them. Keras publishes no SHA-256 for any of these files and no hash at all for
 * MobileNetV2, and the files cannot be fetched from this build machine, so no SHA-256 is pinned yet. The code
 * path is ready for one: a `sha256` on a WeightsSource is checked on every download / hand-placed file and
 * selects the cache directory (download.ts). Without it a file is checked by size + MD5 (MobileNetV2: size only,
 * with a warning), installed under `<cache>/weights/<its sha256>/`, and the SHA-256 is logged on that first
 * install (`pipeline run` prints it) so a maintainer with network access can pin it; build-model also records
 * it as `weightsHash` in spec.json.
 *
 * This module does not build architectures (backbones/*) and does not read `process.env` except through
 * {@link mirrorFromEnv}, which callers use at the edge.
 */
import type * as tfjs from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { err, ok, type Result } from '../../../src/result.js';
import type { BackboneSpec, Tf, WeightsSource } from '../backbones/spec.js';
import { fetchWeights, type FetchWeightsOptions, type WeightsFailure } from './download.js';
import { formatH5Problems, loadKerasH5Weights } from './h5.js';

/** Environment variable naming a mirror of the Keras weights bucket (same relative paths). */
export const MIRROR_ENV = 'PIPELINE_WEIGHTS_MIRROR';

/** Reads the mirror setting from an environment (pass `process.env` from the CLI / stage host). */
export function mirrorFromEnv(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const v = env[MIRROR_ENV]?.trim();
  return v ? v : undefined;
}

/** One branch of a model that takes ImageNet weights: the (nested) model to fill and its pinned file. */
export interface ImagenetPart {
  /** The model to load into: the backbone itself, or the nested branch model for `all`. */
  readonly model: tfjs.LayersModel;
  readonly source: WeightsSource;
  /** Backbone name of the part, for messages. */
  readonly name: string;
}

/** The parts of `model` (built from `spec`) that take ImageNet files; `all` has three nested ones. */
export function imagenetParts(spec: BackboneSpec, model: tfjs.LayersModel, partSpecs: readonly BackboneSpec[]): ImagenetPart[] | undefined {
  if (spec.imagenet) return [{ model, source: spec.imagenet, name: spec.name }];
  if (partSpecs.length === 0) return undefined;
  return partSpecs.map((p) => ({ model: model.getLayer(p.name) as unknown as tfjs.LayersModel, source: p.imagenet!, name: p.name }));
}

/** Combines the SHA-256s of several files into one weights identity (one file: its own SHA-256). */
export function combineHashes(hashes: readonly string[]): string {
  if (hashes.length === 1) return hashes[0]!;
  return createHash('sha256').update(JSON.stringify(hashes)).digest('hex');
}

/**
 * Fetches (or finds) every part's file, then loads them. All files are tried before any error is returned, so an
 * offline `all` lists the three files to fetch by hand at once. Returns the combined weights hash.
 */
export async function loadImagenetWeights(tf: Tf, parts: readonly ImagenetPart[], opts: FetchWeightsOptions): Promise<Result<string, WeightsFailure>> {
  const fetched: { part: ImagenetPart; path: string; sha256: string }[] = [];
  const failures: WeightsFailure[] = [];
  for (const part of parts) {
    const got = await fetchWeights(part.source, { ...opts, what: `${part.name} ImageNet weights` });
    if (got.ok) fetched.push({ part, path: got.value.path, sha256: got.value.sha256 });
    else failures.push(got.error);
    if (opts.signal?.aborted) break;
  }
  if (failures.length === 1) return err(failures[0]!);
  if (failures.length > 1) {
    return err({ ...failures[0]!, message: `${failures.length} of ${parts.length} weight files are missing:\n\n${failures.map((f) => f.message).join('\n\n')}` });
  }
  for (const { part, path } of fetched) {
    const loaded = await loadKerasH5Weights(tf, part.model, path);
    if (!loaded.ok) {
      return err({
        reason: 'h5-invalid',
        file: path,
        problems: loaded.error,
        message: `${part.name} ImageNet weights: ${path} does not fit the model:\n${formatH5Problems(loaded.error)}`,
      });
    }
  }
  return ok(combineHashes(fetched.map((f) => f.sha256)));
}
