/**
 * `pipeline status [file] [--cache DIR] [--json]`: one line per stage:
 * - `fresh`       the workspace holds the outputs of its current key;
 * - `stale`       its key changed and no record exists: it will run (with the reason);
 * - `restorable`  its key changed (or outputs were touched) and the cache has the outputs;
 * - `will-run`    an upstream stage will run first, so its key is not known yet.
 *
 * Read-only apart from the hash memo (so the next run is faster). No lock.
 */
import type { CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { parseArgs } from './args.js';
import { loadOrReport, pipelineFileFrom, usageError, useColor } from './common.js';
import type { PlanEntry } from '../plan.js';
import { unreachable } from '../result.js';

const HELP = `usage: pipeline status [file | -f FILE] [--cache DIR] [--json]

Shows each stage as fresh, stale (and why), restorable from cache, or will-run
(an upstream stage runs first).
`;

/** Status words shown per stage. */
export type StageStatusWord = 'fresh' | 'stale' | 'restorable' | 'will-run';

/** Maps a plan entry to its status word. */
export function statusWord(p: PlanEntry): StageStatusWord {
  switch (p.action) {
    case 'fresh':
      return 'fresh';
    case 'run':
      return 'stale';
    case 'restore':
      return 'restorable';
    case 'unknown':
      return 'will-run';
    default:
      return unreachable(p.action);
  }
}

export const main: CommandMain = async (argv, io) => {
  const p = parseArgs(argv, { cache: { type: 'string' }, json: { type: 'boolean' }, file: { type: 'string', short: 'f' }, help: { type: 'boolean', short: 'h' } });
  if (!p.ok) return usageError(io, 'status', p.error);
  if (p.value.flags.help) {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  if (p.value.positionals.length > 1) return usageError(io, 'status', 'expected at most one pipeline file');
  const file = pipelineFileFrom(io, p.value.positionals[0], p.value.flags.file);
  if (!file.ok) return usageError(io, 'status', file.error);
  const loaded = await loadOrReport(io, file.file);
  if (!loaded.ok) return loaded.code;
  const graph = loaded.graph;
  const [{ openEngine, resolveCacheDir }, { planStages }, { makeStyle }] = await Promise.all([import('../runner.js'), import('../plan.js'), import('../log/human.js')]);
  const eng = await openEngine(graph, resolveCacheDir(graph, p.value.flags.cache as string | undefined, io.env, io.cwd));
  const plan = await planStages(eng.deps, [...graph.stages.keys()], new Set());
  await eng.hasher.save().catch(() => {});
  if (p.value.flags.json) {
    const rows = plan.map((e) => ({ stage: e.stage, status: statusWord(e), ...(e.reason ? { reason: e.reason } : {}), ...(e.key ? { key: e.key } : {}), ...(e.lastKey ? { lastKey: e.lastKey } : {}) }));
    io.stdout.write(`${JSON.stringify(rows)}\n`);
    return ExitCode.ok;
  }
  const st = makeStyle(useColor(io, io.stdout));
  const width = Math.max(...plan.map((e) => e.stage.length));
  const paint: Record<StageStatusWord, (s: string) => string> = { fresh: st.dim, stale: st.yellow, restorable: st.cyan, 'will-run': st.yellow };
  const lines = plan.map((e) => {
    const w = statusWord(e);
    const reason = w === 'fresh' ? '' : e.reason ?? '';
    return `${e.stage.padEnd(width)}  ${paint[w](w.padEnd(10))}${reason ? `  ${reason}` : ''}`.trimEnd();
  });
  io.stdout.write(`${lines.join('\n')}\n`);
  return ExitCode.ok;
};
