/**
 * The hook `pipeline run` calls after every real (non-dry) run: records the
 * run as an experiment in the cache. A failure to record is reported by the
 * caller but never changes the run's outcome.
 */
import type { PipelineGraph } from '../pipeline.js';
import type { RunSummary } from '../runner.js';
import type { ExperimentRecord } from './record.js';
import { recordExperiment } from './recorder.js';

/** Records `summary` as an experiment. */
export async function onRunFinished(summary: RunSummary, ctx: { graph: PipelineGraph; cacheDir: string; name?: string; sweep?: ExperimentRecord['sweep'] }): Promise<void> {
  await recordExperiment(ctx.graph, summary, { ...(ctx.name !== undefined && { name: ctx.name }), ...(ctx.sweep !== undefined && { sweep: ctx.sweep }) });
}
