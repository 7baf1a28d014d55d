/**
 * What `exp`, `diff` and `report` share: finding the cache from `--cache` /
 * `-f`, reading its experiment records (only the pipeline file's own when a
 * file is known: several pipelines may share one cache), and resolving a
 * user's reference with a clear message. Prints only those messages (and
 * one located line per damaged record it skipped).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CliIO } from './io.js';
import { locateCache } from '../experiments/locate.js';
import { readExperimentsReport, resolveExperiment, type ExperimentRecord } from '../experiments/record.js';

/** The experiments a command works on, and where they came from. */
export interface OpenedExperiments {
  readonly cacheDir: string;
  /** The pipeline file (`-f`, or `pipeline.yaml` in the cwd) when one exists. */
  readonly pipelineFile?: string;
  /** The records, oldest first: the pipeline file's own when it is known, else every record in the cache. */
  readonly all: ExperimentRecord[];
  /** How many records of other pipelines in the same cache were left out. */
  readonly otherPipelines: number;
}

/** `file` as given and as its real path: the spellings a record made by running it can hold. */
function spellingsOf(file: string): Set<string> {
  try {
    return new Set([file, fs.realpathSync(file)]);
  } catch {
    return new Set([file]);
  }
}

/** The records of the cache the flags point at (oldest first). */
export async function openExperiments(io: CliIO, flags: Readonly<Record<string, unknown>>): Promise<OpenedExperiments> {
  const located = await locateCache({ cwd: io.cwd, flag: flags['cache'] as string | undefined, env: io.env['PIPELINE_CACHE'], file: flags['file'] as string | undefined });
  const { records, skipped } = await readExperimentsReport(located.cacheDir);
  // A damaged record is left in place (it is the user's history) and named, never a crash.
  for (const s of skipped) io.stderr.write(`${path.relative(io.cwd, s.file) || s.file}:${s.line}:${s.column}: skipped experiment record: ${s.reason}\n`);
  if (located.pipelineFile === undefined) return { ...located, all: records, otherPipelines: 0 };
  const spellings = spellingsOf(located.pipelineFile);
  const all = records.filter((r) => spellings.has(r.pipeline.file));
  return { ...located, all, otherPipelines: records.length - all.length };
}

/**
 * Why a command found no (or too few) experiments, as one parenthesised
 * clause: which cache was read, for which pipeline file, and how to point
 * elsewhere.
 */
export function whereLooked(io: CliIO, opened: Pick<OpenedExperiments, 'cacheDir' | 'pipelineFile' | 'otherPipelines'>): string {
  const rel = (p: string): string => path.relative(io.cwd, p) || '.';
  if (opened.pipelineFile !== undefined) {
    const others = opened.otherPipelines > 0 ? `; ${opened.otherPipelines} of other pipelines in that cache` : '';
    return `(looked in ${rel(opened.cacheDir)} for runs of ${rel(opened.pipelineFile)}${others})`;
  }
  return `(looked in ${rel(opened.cacheDir)}: there is no pipeline.yaml here; pass -f FILE, e.g. -f pipelines/quickstart.yaml, or --cache DIR)`;
}

/** Resolves `ref` (id prefix, name or ~N); prints why not and returns undefined when it does not resolve. */
export function pickExperiment(all: readonly ExperimentRecord[], ref: string, io: CliIO, command: string): ExperimentRecord | undefined {
  const r = resolveExperiment(all, ref);
  if (r.ok) return r.value;
  // bash and zsh expand ~0 to the current directory (~N: the N-th directory-stack entry) before we see it.
  const expanded = path.isAbsolute(ref) && path.resolve(ref) === path.resolve(io.cwd) ? ' (your shell expanded ~0 to the current directory: write HEAD~0, or quote it: "~0")' : '';
  io.stderr.write(
    r.error.reason === 'ambiguous'
      ? `pipeline ${command}: "${ref}" is ambiguous: ${r.error.candidates.join(', ')}\n`
      : `pipeline ${command}: no experiment "${ref}"${expanded} (${all.length} recorded; see pipeline exp list)\n`,
  );
  return undefined;
}
