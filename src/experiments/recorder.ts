/**
 * Turns a finished run into an experiment record and stores it in the cache
 * (called from `pipeline run` through `RunOptions.afterRun`). Reads the git
 * commit and dirty flag when the workspace is inside a git repository; git is
 * never required. A run that only finds every stage fresh, exactly as this
 * pipeline's latest experiment left it, is not recorded again. Does not print.
 */
import { execFile } from 'node:child_process';
import type { PipelineGraph } from '../pipeline.js';
import type { RunSummary } from '../runner.js';
import { newExperimentId, readLatestExperiment, writeExperiment, type ExperimentRecord, type ExperimentStage } from './record.js';

function git(args: string[], cwd: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, timeout: 5000 }, (e, stdout) => resolve(e ? undefined : stdout));
  });
}

/** The workspace's git commit and dirty flag, or undefined outside a repo / without git. */
export async function gitInfo(workspace: string): Promise<ExperimentRecord['git']> {
  const commit = (await git(['rev-parse', 'HEAD'], workspace))?.trim();
  if (!commit) return undefined;
  // No optional locks: status may run while a stage does, and must never hold index.lock against a git command there.
  const status = await git(['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no'], workspace);
  return { commit, dirty: (status ?? '').trim().length > 0 };
}

/** Builds the record for a run (pure apart from the id). */
export function experimentFromRun(id: string, graph: PipelineGraph, summary: RunSummary, extra: { name?: string; git?: ExperimentRecord['git']; sweep?: ExperimentRecord['sweep'] }): ExperimentRecord {
  const stages: Record<string, ExperimentStage> = {};
  const metrics: Record<string, number> = {};
  let backend: string | undefined;
  for (const id of summary.order) {
    const s = summary.stages.get(id);
    if (!s) continue;
    stages[id] = {
      key: s.key ?? '?',
      status: s.status,
      durationMs: Math.round(s.durationMs),
      ...(s.outputsHash !== undefined && { outputsHash: s.outputsHash }),
      metrics: s.metrics,
    };
    for (const [k, v] of Object.entries(s.metrics)) metrics[`${id}.${k}`] = v;
    if (backend === undefined && s.backend) backend = s.backend.threads ? `${s.backend.name} (${s.backend.threads} threads)` : s.backend.name;
  }
  const statuses = [...summary.stages.values()].map((s) => s.status);
  return {
    format: 'pipeline.experiment/v1',
    id,
    ...(extra.name !== undefined && { name: extra.name }),
    createdAt: summary.startedAt,
    pipeline: { name: graph.name, file: graph.file, workspace: graph.workspace },
    params: graph.params,
    stages,
    metrics,
    status: summary.cancelled ? 'cancelled' : statuses.some((s) => s === 'failed' || s === 'skipped-upstream-failed') ? 'failed' : 'succeeded',
    durationMs: Math.round(summary.durationMs),
    ...(backend !== undefined && { backend }),
    ...(extra.git !== undefined && { git: extra.git }),
    ...(extra.sweep !== undefined && { sweep: extra.sweep }),
  };
}

/**
 * The latest experiment of this pipeline when the run adds nothing to it: every
 * stage was already fresh (nothing ran, nothing was restored), and that
 * experiment saw the same resolved params and the same stage keys and
 * succeeded. Named runs and sweep variants are always recorded.
 */
export function sameAsLatest(last: ExperimentRecord | undefined, rec: ExperimentRecord): ExperimentRecord | undefined {
  if (rec.name !== undefined || rec.sweep !== undefined || rec.status !== 'succeeded') return undefined;
  const stages = Object.entries(rec.stages);
  if (stages.length === 0 || stages.some(([, s]) => s.status !== 'fresh')) return undefined;
  if (last === undefined || last.status !== 'succeeded' || last.sweep !== undefined) return undefined;
  if (JSON.stringify(last.params) !== JSON.stringify(rec.params)) return undefined;
  const lastIds = Object.keys(last.stages);
  if (lastIds.length !== stages.length) return undefined;
  return stages.every(([id, s]) => last.stages[id]?.key === s.key) ? last : undefined;
}

/**
 * Records the run as an experiment in the cache and returns it. A no-op run
 * (every stage fresh, same params and keys as this pipeline's latest
 * experiment) is not recorded again: the latest experiment is returned, so
 * `pipeline diff` keeps comparing the last two runs that differ.
 */
export async function recordExperiment(
  graph: PipelineGraph,
  summary: RunSummary,
  extra: {
    name?: string;
    sweep?: ExperimentRecord['sweep'];
    /** `gitInfo` of the workspace started when the run began its first stage (its commit is the code the run used); default: read now. */
    git?: Promise<ExperimentRecord['git']>;
  } = {},
): Promise<ExperimentRecord> {
  if (extra.name === undefined && extra.sweep === undefined && [...summary.stages.values()].every((s) => s.status === 'fresh')) {
    const rec = experimentFromRun('', graph, summary, {});
    const same = sameAsLatest(await readLatestExperiment(summary.cacheDir, rec.pipeline.file, rec.pipeline.workspace), rec);
    if (same !== undefined) return same;
  }
  const [id, gitState] = await Promise.all([newExperimentId(summary.cacheDir), extra.git ?? gitInfo(graph.workspace)]);
  const { git: _started, ...rest } = extra;
  const rec = experimentFromRun(id, graph, summary, { ...rest, ...(gitState !== undefined && { git: gitState }) });
  await writeExperiment(summary.cacheDir, rec);
  return rec;
}
