/**
 * `pipeline exp checkout ID`: puts an experiment's recorded outputs (model,
 * metrics, reports) back into its workspace from the cache, under the
 * workspace lock, without touching config files. Stages are matched by id
 * against the current pipeline file (which says where each stage's outputs
 * live); user content in the way is backed up by `materialize`, never lost.
 */
import { err, ok, type Result } from '../result.js';
import type { StageId } from '../pipeline.js';
import type { ExperimentRecord } from './record.js';

/** Restores every stage of `rec` whose record is still in the cache. */
export async function checkoutExperiment(rec: ExperimentRecord, cacheDir: string): Promise<Result<{ restored: number; missing: string[] }, string>> {
  const [{ loadPipeline }, runner] = await Promise.all([import('../config/load.js'), import('../runner.js')]);
  const loaded = await loadPipeline(rec.pipeline.file);
  if (!loaded.ok) return err(`the pipeline file ${rec.pipeline.file} is invalid now; fix it first (pipeline status shows the diagnostics)`);
  const graph = loaded.value;
  const lock = await runner.lockWorkspace(graph.workspace);
  if (!lock.ok) return err(`workspace is locked by a running pipeline (pid ${lock.error.pid})`);
  try {
    const eng = await runner.openEngine(graph, cacheDir);
    let restored = 0;
    const missing: string[] = [];
    for (const [id, stage] of Object.entries(rec.stages)) {
      const node = graph.stages.get(id as StageId);
      const record = stage.key === '?' ? undefined : await eng.store.readRecord(stage.key);
      if (!node || !record) {
        missing.push(id);
        continue;
      }
      const r = await runner.restoreRecord(node, record, eng);
      if (!r.ok) {
        missing.push(`${id} (${r.why})`);
        continue;
      }
      eng.state.set(id, r.state);
      restored++;
    }
    await eng.state.save();
    return ok({ restored, missing });
  } finally {
    await lock.value.release();
  }
}
