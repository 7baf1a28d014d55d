/**
 * Options of `loadPipeline` and the default cache locations. Kept apart from
 * the loader so that `load.ts` can answer from the graph cache without
 * importing the YAML parser or the analyser. No I/O.
 */
import path from 'node:path';
import type { JsonValue } from '../pipeline.js';
import type { StageRegistry } from '../analyze/stages.js';
import { packageRoot } from '../paths.js';

/** Options for `loadPipeline`. */
export interface LoadOptions {
  /** Directory of the analysed-graph cache (see load.ts); `false` disables it. Never used with an injected `registry`. */
  readonly graphCacheDir?: string | false;
  /** -S overrides already split: each sets one dotted param path to one value (YAML-parsed scalar, e.g. "0.01" -> 0.01). The path must exist. */
  readonly overrides?: readonly { readonly path: string; readonly value: JsonValue }[];
  /** Workspace directory; defaults to the pipeline file's directory. */
  readonly workspace?: string;
  /** Built-in stages (tests inject small ones); default: `stages/registry.ts`, imported only if some stage has `uses:`. */
  readonly registry?: StageRegistry;
  /** Directory holding `pipeline.schema.json`; default: the package's `schemas/`. */
  readonly schemasDir?: string;
  /** Directory holding built-in params schemas `<name>.json`; default: `<schemasDir>/stages`. */
  readonly stageSchemasDir?: string;
  /** Where compiled validators are cached across processes; `false` disables; default `node_modules/.cache/pipeline-engine/validators` in the package. */
  readonly validatorCacheDir?: string | false;
}

/** Default on-disk cache of compiled schema validators. */
export const defaultValidatorCacheDir: string = path.join(packageRoot, 'node_modules', '.cache', 'pipeline-engine', 'validators');

/** Default on-disk cache of analysed graphs. */
export const defaultGraphCacheDir: string = path.join(packageRoot, 'node_modules', '.cache', 'pipeline-engine', 'graphs');
