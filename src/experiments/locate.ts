/**
 * Finds the cache an experiment command reads, without running anything:
 * `--cache DIR`, else `$PIPELINE_CACHE`, else the pipeline file's `cache:`
 * key, else `cache/` beside the pipeline file. Reads the pipeline file only
 * to look at `cache:` (a cheap YAML parse, no validation).
 */
import fs from 'node:fs';
import path from 'node:path';

/** Inputs of the lookup (all paths may be relative to `cwd`). */
export interface CacheLookup {
  readonly cwd: string;
  readonly flag?: string;
  readonly env?: string;
  /** Pipeline file (default `pipeline.yaml`). */
  readonly file?: string;
}

/** The absolute cache directory and the pipeline file it was derived from (if any). */
export async function locateCache(q: CacheLookup): Promise<{ cacheDir: string; pipelineFile?: string }> {
  const file = path.resolve(q.cwd, q.file ?? 'pipeline.yaml');
  const exists = fs.existsSync(file) && fs.statSync(file).isFile();
  if (q.flag) return { cacheDir: path.resolve(q.cwd, q.flag), ...(exists && { pipelineFile: file }) };
  if (q.env) return { cacheDir: path.resolve(q.cwd, q.env), ...(exists && { pipelineFile: file }) };
  if (exists) {
    try {
      const { parse } = await import('yaml');
      const doc = parse(fs.readFileSync(file, 'utf8')) as { cache?: unknown } | null;
      if (doc && typeof doc.cache === 'string') return { cacheDir: path.resolve(path.dirname(file), doc.cache), pipelineFile: file };
    } catch {
      /* an invalid file has no usable cache key; fall through to the default */
    }
    return { cacheDir: path.join(path.dirname(file), 'cache'), pipelineFile: file };
  }
  return { cacheDir: path.resolve(q.cwd, 'cache') };
}
