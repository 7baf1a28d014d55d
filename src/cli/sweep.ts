/**
 * Sweeps: `pipeline run -S train.lr=0.001,0.01 -S model.backbone=a,b` runs the
 * cartesian product as separate experiments. Every combination is validated
 * first (a bad value fails before anything runs); then all of them run under
 * ONE scheduler (`../sweep/run-sweep.ts`): one `--jobs` limit, one set of
 * resource pools (two variants' GPU stages never overlap), stages shared by
 * every variant run once in the workspace, the rest run per variant in
 * parallel, each in its own scratch workspace. Each variant is recorded as its
 * own experiment (with the sweep's id and its overrides) as soon as it ends.
 * The workspace ends holding the last variant that succeeded; `pipeline exp
 * checkout ID` brings back any other. `--dry` plans each variant in turn.
 *
 * Exit code: 130 if interrupted, else 1 if any variant failed, else 0.
 * It does not decide anything about stages; it only wires CLI options, the
 * lock, the reporter and the recorder to the sweep runner.
 */
import { randomBytes } from 'node:crypto';
import type { CliIO } from './io.js';
import { ExitCode } from './io.js';
import type { JsonValue, PipelineGraph } from '../pipeline.js';
import type { RunCommandOptions } from './run.js';
import { formatValue } from '../experiments/flatten.js';

/** The cartesian product of the sweep axes, in axis order (last axis fastest). */
export function sweepCombinations(axes: readonly { path: string; values: readonly JsonValue[] }[]): { path: string; value: JsonValue }[][] {
  let combos: { path: string; value: JsonValue }[][] = [[]];
  for (const axis of axes) combos = combos.flatMap((c) => axis.values.map((v) => [...c, { path: axis.path, value: v }]));
  return combos;
}

/** `train.lr=0.1 model.backbone=simple_cnn`: a variant's label. */
export function variantLabel(combo: readonly { path: string; value: JsonValue }[]): string {
  return combo.map((c) => `${c.path}=${formatValue(c.value)}`).join(' ');
}

export async function runSweep(opts: RunCommandOptions, io: CliIO): Promise<number> {
  const combos = sweepCombinations(opts.sweep);
  const sweepId = randomBytes(3).toString('hex');
  const [{ loadOrReport, usageError }, run] = await Promise.all([import('./common.js'), import('./run.js')]);
  // Validate every combination before running any, so a bad value fails fast with its diagnostics.
  const graphs: PipelineGraph[] = [];
  for (const combo of combos) {
    const loaded = await loadOrReport(io, opts.file, [...opts.overrides, ...combo]);
    if (!loaded.ok) return loaded.code;
    graphs.push(loaded.graph);
  }
  const nameOf = (i: number): string | undefined => (opts.name !== undefined ? `${opts.name}-${i + 1}` : undefined);
  const overridesOf = (i: number): Record<string, JsonValue> => Object.fromEntries(combos[i]!.map((c) => [c.path, c.value]));

  if (opts.dry) {
    // Planning reads only: each variant's plan in turn.
    let worst: number = ExitCode.ok;
    for (const [i, combo] of combos.entries()) {
      if (!opts.json) io.stdout.write(`\n── sweep ${sweepId} · experiment ${i + 1}/${combos.length}: ${variantLabel(combo)}\n`);
      const code = await run.runLoaded(graphs[i]!, { ...opts, sweep: [] }, io);
      if (code === ExitCode.interrupted) return code;
      if (code !== ExitCode.ok) worst = code;
    }
    return worst;
  }

  const { selectStages } = await import('../plan.js');
  for (const g of graphs) {
    for (const names of [opts.stages, opts.force]) {
      const picked = selectStages(g, names);
      if (!picked.ok) return usageError(io, 'run', picked.error.join('\n'));
    }
  }
  const [{ resolveCacheDir }, { runSweepPipeline }] = await Promise.all([import('../runner.js'), import('../sweep/run-sweep.js')]);
  const first = graphs[0]!;
  const cacheDir = resolveCacheDir(first, opts.cache, io.env, io.cwd);
  const lock = await run.lockForRun(first.workspace, opts.wait, io);
  if (!lock) return ExitCode.locked;
  const reporter = await run.makeReporter(opts, io);
  try {
    const recorder = await run.loadRecorder();
    const summary = await runSweepPipeline(
      graphs.map((g, i) => ({
        graph: g,
        label: variantLabel(combos[i]!),
        overrides: overridesOf(i),
        only: run.expandNames(g, opts.stages), // none named: [] = all stages
        force: run.expandNames(g, opts.force),
      })),
      {
        cacheDir,
        sweepId,
        ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
        keepGoing: opts.keepGoing,
        signal: io.signal,
        onEvent: reporter.sink,
        resources: opts.resources,
        ...(recorder
          ? {
              recordVariant: async (i, s) => {
                try {
                  const name = nameOf(i);
                  const rec = (await recorder.recordExperiment(graphs[i]!, s, { ...(name !== undefined ? { name } : {}), sweep: { id: sweepId, overrides: overridesOf(i) } })) as { id?: string } | undefined;
                  return rec?.id;
                } catch (e) {
                  // The stages' own records are safe; only the experiment entry is missing.
                  io.stderr.write(`pipeline run: warning: could not record experiment ${i + 1}: ${e instanceof Error ? e.message : String(e)}\n`);
                  return undefined;
                }
              },
            }
          : {}),
      },
    );
    if (summary.cancelled) return ExitCode.interrupted;
    return summary.ok ? ExitCode.ok : ExitCode.stageFailed;
  } finally {
    reporter.close();
    await lock.release();
  }
}
