/**
 * `loadPipeline`: pipeline file → validated, analysed `PipelineGraph`, or every
 * problem found as located diagnostics (never an exception for bad input).
 *
 * Fast path: when the pipeline, its params files, the schemas it used and the
 * analysis/stage code are unchanged since a previous successful load (same
 * overrides), the graph comes from the graph cache without importing the YAML
 * parser, ajv, the analyser or the stage modules. Otherwise the full load in
 * `load-uncached.ts` runs and its result is cached. Does not plan,
 * fingerprint or run anything. Every load, cached or not, checks that no
 * symbolic link on disk leads an output outside the workspace.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Diagnostic } from '../diagnostic.js';
import type { PipelineGraph } from '../pipeline.js';
import type { Result } from '../result.js';
import { schemasDir as defaultSchemasDir } from '../paths.js';
import { defaultGraphCacheDir, type LoadOptions } from './load-options.js';
import { entryFile, readCachedGraph, writeCachedGraph } from './graph-cache.js';
import { checkOutputLinks } from './output-links.js';

export type { LoadOptions } from './load-options.js';
export { defaultGraphCacheDir, defaultValidatorCacheDir } from './load-options.js';

/** Loads, validates and analyses a pipeline file; see the module doc. */
export async function loadPipeline(file: string, opts: LoadOptions = {}): Promise<Result<PipelineGraph, Diagnostic[]>> {
  const abs = path.resolve(file);
  // An injected registry cannot be fingerprinted, so such loads are never cached.
  const cacheDir = opts.registry !== undefined || opts.graphCacheDir === false ? undefined : (opts.graphCacheDir ?? defaultGraphCacheDir);
  let text: string | undefined;
  let cacheFile: string | undefined;
  if (cacheDir !== undefined) {
    try {
      text = fs.readFileSync(abs, 'utf8');
    } catch {
      text = undefined; // the full load reports why
    }
    if (text !== undefined) {
      const schemasDir = path.resolve(opts.schemasDir ?? defaultSchemasDir);
      cacheFile = entryFile(cacheDir, {
        file: abs,
        overrides: opts.overrides ?? [],
        workspace: opts.workspace === undefined ? null : path.resolve(opts.workspace),
        schemasDir,
        stageSchemasDir: path.resolve(opts.stageSchemasDir ?? path.join(schemasDir, 'stages')),
        validatorCacheDir: opts.validatorCacheDir ?? null,
      });
      const hit = readCachedGraph(cacheFile, abs, text);
      if (hit) return withOutputLinksChecked(hit);
    }
  }
  const { loadPipelineUncached } = await import('./load-uncached.js');
  const { result, schemaFiles } = await loadPipelineUncached(abs, opts, text);
  if (result.ok && cacheFile !== undefined && text !== undefined) {
    writeCachedGraph(cacheFile, result.value, [...result.value.configFiles, ...schemaFiles], abs, text);
  }
  return result.ok ? withOutputLinksChecked(result.value) : result;
}

/** The graph, unless a symbolic link on disk would lead an output outside the workspace (checked on every load: links change without the pipeline file changing). */
function withOutputLinksChecked(graph: PipelineGraph): Result<PipelineGraph, Diagnostic[]> {
  const problems = checkOutputLinks(graph);
  return problems.length > 0 ? { ok: false, error: problems } : { ok: true, value: graph };
}
