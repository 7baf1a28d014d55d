/**
 * What watch mode watches, and which file events matter. Given an analysed
 * pipeline, lists the roots to hand to chokidar (config files, params files,
 * every declared input, the code files a `cmd` stage names as deps) and
 * classifies a changed path as `config`, `input` or `ignored`. Paths the
 * pipeline itself writes (built-in out dirs, declared outs, the cache) are
 * always ignored, so a run never triggers itself. Pure: no file system access.
 */
import path from 'node:path';
import type { PipelineGraph } from '../pipeline.js';
import { compileGlob, isGlob } from '../hash/glob.js';

/** How a changed path relates to the pipeline. */
export type ChangeKind =
  /** The pipeline file or a params file: re-validate and re-plan. */
  | 'config'
  /** A declared input of some stage: re-plan (keys change). */
  | 'input'
  /** Not a dependency, or written by the pipeline itself. */
  | 'ignored';

/** The watch set of one pipeline version. */
export interface WatchTargets {
  /** Absolute paths to watch (files or directories), sorted, without duplicates. */
  readonly roots: readonly string[];
  classify(absPath: string): ChangeKind;
}

const isInside = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/** Computes the watch set. `cacheDir` is absolute. */
export function watchTargets(graph: PipelineGraph, cacheDir: string): WatchTargets {
  const ws = graph.workspace;
  const config = new Set(graph.configFiles.map((f) => path.resolve(f)));
  const outputs: string[] = [path.resolve(cacheDir)];
  const plain: string[] = [];
  const globs: { base: string; matches: (rel: string) => boolean }[] = [];
  for (const stage of graph.stages.values()) {
    if (stage.kind === 'builtin') outputs.push(path.resolve(ws, stage.outDir));
    else for (const o of stage.outs) outputs.push(path.resolve(ws, stage.cwd, o.path));
    for (const d of stage.deps) {
      if (d.kind !== 'path') continue;
      if (isGlob(d.path)) {
        const g = compileGlob(d.path);
        globs.push({ base: path.resolve(ws, g.base), matches: g.matches });
      } else {
        plain.push(path.resolve(ws, d.path));
      }
    }
  }
  const isOutput = (p: string): boolean => outputs.some((o) => isInside(p, o));
  const roots = [...new Set([...config, ...plain.filter((p) => !isOutput(p)), ...globs.map((g) => g.base)])].sort();
  return {
    roots,
    classify(absPath) {
      const p = path.resolve(absPath);
      if (config.has(p)) return 'config';
      if (isOutput(p)) return 'ignored';
      if (plain.some((d) => isInside(p, d))) return 'input';
      const rel = path.relative(ws, p).split(path.sep).join('/');
      if (globs.some((g) => isInside(p, g.base) && g.matches(rel))) return 'input';
      return 'ignored';
    },
  };
}
