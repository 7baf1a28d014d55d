/**
 * The snapshot of the current pipeline file for `pipeline diff ID`: its
 * resolved params and the key of every stage whose key can be known without
 * running anything (`?` for stages downstream of something that would rerun).
 * Plans, never runs; prints diagnostics for an invalid file.
 */
import type { CliIO } from '../cli/io.js';
import type { ExperimentSnapshot } from './diff.js';
import type { JsonValue } from '../pipeline.js';

/** Loads and plans `file`; undefined (diagnostics printed) when the file is invalid. */
export async function currentSnapshot(file: string, cacheDir: string, sets: readonly string[], io: CliIO): Promise<ExperimentSnapshot | undefined> {
  const [{ loadOrReport }, { parseOverride }, { openEngine }, { planStages }] = await Promise.all([
    import('../cli/common.js'),
    import('../config/overrides.js'),
    import('../runner.js'),
    import('../plan.js'),
  ]);
  const overrides: { path: string; value: JsonValue }[] = [];
  for (const s of sets) {
    const p = parseOverride(s);
    if (!p.ok || p.value.values.length !== 1) {
      io.stderr.write(`pipeline diff: -S ${s}: ${p.ok ? 'give one value' : p.error}\n`);
      return undefined;
    }
    overrides.push({ path: p.value.path, value: p.value.values[0]! });
  }
  const loaded = await loadOrReport(io, file, overrides);
  if (!loaded.ok) return undefined;
  const eng = await openEngine(loaded.graph, cacheDir);
  const plan = await planStages(eng.deps, [...loaded.graph.stages.keys()], new Set());
  return {
    id: 'workspace',
    params: loaded.graph.params,
    stageKeys: Object.fromEntries(plan.map((p) => [p.stage, p.key ?? '?'])),
    metrics: {},
  };
}
