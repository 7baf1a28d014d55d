/**
 * Sweeps: `pipeline run -S train.lr=0.001,0.01 -S model.backbone=a,b` runs the
 * cartesian product as separate experiments, one after another in the same
 * workspace. Upstream stages shared by all combinations have the same key in
 * every combination, so they run once and are fresh (or restored) afterwards;
 * each combination's own stages run in parallel within `--jobs` and the
 * resource pools. Each experiment is recorded with the sweep's id and its
 * overrides. The workspace ends holding the last combination's outputs;
 * `pipeline exp checkout ID` brings back any other.
 */
import { randomBytes } from 'node:crypto';
import type { CliIO } from './io.js';
import { ExitCode } from './io.js';
import type { JsonValue } from '../pipeline.js';
import type { RunCommandOptions } from './run.js';
import { formatValue } from '../experiments/flatten.js';

/** The cartesian product of the sweep axes, in axis order (last axis fastest). */
export function sweepCombinations(axes: readonly { path: string; values: readonly JsonValue[] }[]): { path: string; value: JsonValue }[][] {
  let combos: { path: string; value: JsonValue }[][] = [[]];
  for (const axis of axes) combos = combos.flatMap((c) => axis.values.map((v) => [...c, { path: axis.path, value: v }]));
  return combos;
}

export async function runSweep(opts: RunCommandOptions, io: CliIO): Promise<number> {
  const combos = sweepCombinations(opts.sweep);
  const sweepId = randomBytes(3).toString('hex');
  const [{ loadOrReport }, { runLoaded }] = await Promise.all([import('./common.js'), import('./run.js')]);
  // Validate every combination before running any, so a bad value fails fast with its diagnostics.
  const graphs = [];
  for (const combo of combos) {
    const loaded = await loadOrReport(io, opts.file, [...opts.overrides, ...combo]);
    if (!loaded.ok) return loaded.code;
    graphs.push(loaded.graph);
  }
  let worst: number = ExitCode.ok;
  for (const [i, combo] of combos.entries()) {
    const label = combo.map((c) => `${c.path}=${formatValue(c.value)}`).join(' ');
    if (!opts.json) io.stdout.write(`\n── sweep ${sweepId} · experiment ${i + 1}/${combos.length}: ${label}\n`);
    const code = await runLoaded(graphs[i]!, { ...opts, sweep: [], ...(opts.name !== undefined && { name: `${opts.name}-${i + 1}` }) }, io, {
      sweep: { id: sweepId, overrides: Object.fromEntries(combo.map((c) => [c.path, c.value])) },
    });
    if (code === ExitCode.interrupted) return code;
    if (code !== ExitCode.ok) worst = code;
  }
  return worst;
}
