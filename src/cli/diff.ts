/**
 * `pipeline diff [A] [B]`: with no ids compares the last two experiments; with
 * one, compares it against the current pipeline file (params after params
 * files and -S, and the stage keys the current inputs give). Prints text,
 * `--json` or `--md`.
 */
import { ExitCode, type CliIO } from './io.js';
import { parseArgs, listFlag } from './args.js';
import type { ExperimentRecord } from '../experiments/record.js';
import { openExperiments, pickExperiment, whereLooked } from './experiments-io.js';
import { diffExperiments, renderDiff, type ExperimentSnapshot } from '../experiments/diff.js';

const USAGE = `usage: pipeline diff [A] [B] [--json|--md] [-f FILE] [-S path=value]... [--cache DIR]
  no ids: the last two experiments; one id: that experiment against the current pipeline file.
`;

const FLAGS = {
  json: { type: 'boolean' },
  md: { type: 'boolean' },
  cache: { type: 'string' },
  file: { type: 'string', short: 'f' },
  set: { type: 'list', short: 'S' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The snapshot of a recorded experiment. */
export function snapshotOf(rec: ExperimentRecord): ExperimentSnapshot {
  return {
    id: rec.id,
    ...(rec.name !== undefined && { name: rec.name }),
    params: rec.params,
    stageKeys: Object.fromEntries(Object.entries(rec.stages).map(([id, s]) => [id, s.key])),
    metrics: rec.metrics,
  };
}

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseArgs(argv, FLAGS);
  if (!parsed.ok) {
    io.stderr.write(`pipeline diff: ${parsed.error}\n${USAGE}`);
    return ExitCode.usage;
  }
  const { flags, positionals } = parsed.value;
  if (flags['help']) {
    io.stdout.write(USAGE);
    return ExitCode.ok;
  }
  if (positionals.length > 2) {
    io.stderr.write(`pipeline diff: at most two experiments\n${USAGE}`);
    return ExitCode.usage;
  }
  const located = await openExperiments(io, flags);
  const all = located.all;
  const find = (ref: string): ExperimentRecord | undefined => pickExperiment(all, ref, io, 'diff');
  let a: ExperimentSnapshot;
  let b: ExperimentSnapshot;
  if (positionals.length === 0) {
    if (all.length < 2) {
      io.stderr.write(`pipeline diff: need two recorded experiments, found ${all.length} ${whereLooked(io, located)}; run the pipeline, or name one experiment to compare with the current file\n`);
      return ExitCode.usage;
    }
    a = snapshotOf(all[all.length - 2]!);
    b = snapshotOf(all[all.length - 1]!);
  } else if (positionals.length === 1) {
    const rec = find(positionals[0]!);
    if (!rec) return ExitCode.usage;
    a = snapshotOf(rec);
    if (!located.pipelineFile) {
      io.stderr.write(`pipeline diff: no pipeline file to compare with (looked for ${flags['file'] ?? 'pipeline.yaml'}; pass -f FILE)\n`);
      return ExitCode.usage;
    }
    const { currentSnapshot } = await import('../experiments/current.js');
    const cur = await currentSnapshot(located.pipelineFile, located.cacheDir, listFlag(parsed.value, 'set'), io);
    if (cur === undefined) return ExitCode.invalidConfig;
    b = cur;
  } else {
    const ra = find(positionals[0]!);
    const rb = find(positionals[1]!);
    if (!ra || !rb) return ExitCode.usage;
    a = snapshotOf(ra);
    b = snapshotOf(rb);
  }
  io.stdout.write(renderDiff(diffExperiments(a, b), flags['json'] ? 'json' : flags['md'] ? 'md' : 'text'));
  return ExitCode.ok;
}
