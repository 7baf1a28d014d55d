/**
 * `pipeline run [file] [--stage NAME…] [--force NAME…] [--dry] [-S path=value…]
 * [--jobs N] [--keep-going] [--json] [--cache DIR] [--wait SECONDS] [--resource name=N] [-n NAME]`
 *
 * Loads the pipeline (diagnostics → exit 3), takes the workspace lock (held by
 * a live run → exit 4), runs via `runPipeline` with the human reporter or
 * NDJSON (`--json`), and maps the outcome to the exit code: 0 ok, 1 a stage
 * failed, 130 interrupted. `-S a=1,2` (a sweep) is handed to `./sweep.js`
 * when that module exists (all variants under one scheduler). After a real run, `../experiments/recorder.js` (when
 * present) records the experiment.
 *
 * It does not decide anything about stages (runner.ts / plan.ts do).
 */
import type { CliIO, CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { listFlag, parseArgs } from './args.js';
import { loadOrReport, pipelineFileFrom, usageError, useColor } from './common.js';
import type { JsonValue, PipelineGraph, StageId } from '../pipeline.js';
import type { RunOptions, RunSummary } from '../runner.js';
import type { RunEvent } from '../events.js';
import type { Lock } from '../cache/lock.js';

const HELP = `usage: pipeline run [file | -f FILE] [options]

Runs the pipeline in file (default ./pipeline.yaml): only stages whose key
changed run; outputs of earlier keys are restored from the cache.

options:
  --stage NAME…        run only these stages (and what they need)
  --force NAME…        run these stages even if fresh
  --dry                print the plan (run / restore / fresh and why), run nothing
  -S, --set path=value override a param (repeatable); path=a,b sweeps
  -j, --jobs N         stages running at once (default: number of cores)
  -k, --keep-going     keep running independent stages after a failure
  --resource name=N    units of a resource pool (default 1 each), e.g. gpu=2
  --cache DIR          cache directory (default: PIPELINE_CACHE, the file's cache:, ./cache)
  --wait SECONDS       if another run holds the workspace lock, wait up to this long (default: fail at once)
  -n, --name NAME      name the experiment this run records
  --json               NDJSON events on stdout instead of human output

exit codes: 0 ok, 1 stage failed, 2 usage, 3 invalid config, 4 workspace locked, 130 interrupted
`;

const flagSpec = {
  stage: { type: 'list', greedy: true },
  force: { type: 'list', greedy: true },
  dry: { type: 'boolean' },
  set: { type: 'list', short: 'S' },
  jobs: { type: 'number', short: 'j' },
  'keep-going': { type: 'boolean', short: 'k' },
  resource: { type: 'list' },
  cache: { type: 'string' },
  wait: { type: 'number' },
  name: { type: 'string', short: 'n' },
  json: { type: 'boolean' },
  file: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parsed `pipeline run` options (also used by sweeps). */
export interface RunCommandOptions {
  readonly file: string;
  readonly stages: readonly string[];
  readonly force: readonly string[];
  readonly dry: boolean;
  /** Single-value overrides. */
  readonly overrides: readonly { path: string; value: JsonValue }[];
  /** Overrides with several values (a sweep). */
  readonly sweep: readonly { path: string; values: JsonValue[] }[];
  readonly jobs?: number;
  readonly keepGoing: boolean;
  readonly resources: Readonly<Record<string, number>>;
  readonly cache?: string;
  /** Seconds to wait for the workspace lock. */
  readonly wait?: number;
  readonly name?: string;
  readonly json: boolean;
}

/** Parses argv; a string is a usage error. */
export async function parseRunArgs(argv: readonly string[], io: CliIO): Promise<RunCommandOptions | string | 'help'> {
  const p = parseArgs(argv, flagSpec);
  if (!p.ok) return p.error;
  const f = p.value.flags;
  if (f.help) return 'help';
  if (p.value.positionals.length > 1) return `expected at most one pipeline file, got ${p.value.positionals.join(' ')}`;
  const overrides: { path: string; value: JsonValue }[] = [];
  const sweep: { path: string; values: JsonValue[] }[] = [];
  const sets = (f.set as string[] | undefined) ?? [];
  // Loaded only when needed: it pulls in the YAML parser, which a cached no-op run never needs.
  const { parseOverride } = sets.length > 0 ? await import('../config/overrides.js') : { parseOverride: undefined as never };
  for (const s of sets) {
    const o = parseOverride(s);
    if (!o.ok) return o.error;
    if (o.value.values.length === 1) overrides.push({ path: o.value.path, value: o.value.values[0] });
    else sweep.push(o.value);
  }
  const file = pipelineFileFrom(io, p.value.positionals[0], f.file);
  if (!file.ok) return file.error;
  const resources: Record<string, number> = {};
  for (const r of (f.resource as string[] | undefined) ?? []) {
    const m = /^([A-Za-z0-9_-]+)=(\d+)$/.exec(r);
    if (!m || Number(m[2]) < 1) return `--resource ${r}: expected name=N with N >= 1, e.g. gpu=2`;
    resources[m[1]] = Number(m[2]);
  }
  return {
    file: file.file,
    stages: listFlag(p.value, 'stage'),
    force: listFlag(p.value, 'force'),
    dry: f.dry === true,
    overrides,
    sweep,
    ...(typeof f.jobs === 'number' ? { jobs: f.jobs } : {}),
    keepGoing: f['keep-going'] === true,
    resources,
    ...(typeof f.cache === 'string' ? { cache: f.cache } : {}),
    ...(typeof f.wait === 'number' ? { wait: f.wait } : {}),
    ...(typeof f.name === 'string' ? { name: f.name } : {}),
    json: f.json === true,
  };
}

/** Loads an optional module; undefined when it is not part of this build. */
async function optionalImport<T>(load: () => Promise<T>, file: string): Promise<T | undefined> {
  try {
    return await load();
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(file)) return undefined;
    throw e;
  }
}

/** The experiments module's recorder (records each run). */
export interface RecorderModule {
  recordExperiment(graph: PipelineGraph, summary: RunSummary, extra?: { name?: string; sweep?: { id: string; overrides: Record<string, unknown> }; git?: Promise<GitState> }): Promise<unknown>;
  /** The workspace's git commit and dirty flag (undefined outside a repository or without git); never rejects. */
  gitInfo(workspace: string): Promise<GitState>;
}

/** What `RecorderModule.gitInfo` finds. */
type GitState = { readonly commit: string; readonly dirty: boolean } | undefined;

/** The experiments recorder, or undefined when that module is not part of this build. */
export function loadRecorder(): Promise<RecorderModule | undefined> {
  return optionalImport(() => import(`../experiments/${'recorder'}.js`) as Promise<RecorderModule>, '/experiments/recorder.js');
}

/** Hook the sweeps module provides. */
interface SweepModule {
  runSweep(opts: RunCommandOptions, io: CliIO): Promise<number>;
}

export const main: CommandMain = async (argv, io) => {
  const parsed = await parseRunArgs(argv, io);
  if (parsed === 'help') {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  if (typeof parsed === 'string') return usageError(io, 'run', parsed);
  if (parsed.sweep.length > 0) {
    const sweeps = await optionalImport(() => import(`./${'sweep'}.js`) as Promise<SweepModule>, '/cli/sweep.js');
    if (!sweeps) return usageError(io, 'run', `-S ${parsed.sweep[0].path}=… has several values (a sweep); sweeps are not available in this build`);
    return sweeps.runSweep(parsed, io);
  }

  // Start loading the engine while the pipeline file is read and validated.
  void import('../runner.js').catch(() => {});
  const loaded = await loadOrReport(io, parsed.file, parsed.overrides);
  if (!loaded.ok) return loaded.code;
  const graph = loaded.graph;
  return runLoaded(graph, parsed, io);
};

/** Runs an already loaded graph with parsed options (sweeps call this per experiment). */
export async function runLoaded(
  graph: PipelineGraph,
  parsed: RunCommandOptions,
  io: CliIO,
  experiment: { sweep?: { id: string; overrides: Record<string, unknown> } } = {},
): Promise<number> {
  const { selectStages } = await import('../plan.js');
  const picked = selectStages(graph, parsed.stages);
  if (!picked.ok) return usageError(io, 'run', picked.error.join('\n'));
  const forced = selectStages(graph, parsed.force);
  if (!forced.ok) return usageError(io, 'run', forced.error.join('\n'));
  // --force NAME forces exactly the named stages (their upstream runs only if needed).
  const forceIds = parsed.force.length === 0 ? [] : expandNames(graph, parsed.force);

  const { runPipeline, resolveCacheDir } = await import('../runner.js');
  const cacheDir = resolveCacheDir(graph, parsed.cache, io.env, io.cwd);

  let release: (() => Promise<void>) | undefined;
  if (!parsed.dry) {
    const lock = await lockForRun(graph.workspace, parsed.wait, io);
    if (!lock) return ExitCode.locked;
    release = () => lock.release();
  }
  const reporter = await makeReporter(parsed, io);
  let summary: RunSummary;
  try {
    const recorder = parsed.dry ? undefined : await loadRecorder();
    // git is asked once the first stage starts (a run with nothing to do never spawns it), while the stages
    // work, rather than after them: the experiment records the commit the run started from.
    let gitAtStart: Promise<GitState> | undefined;
    const sink = (e: RunEvent): void => {
      if (recorder !== undefined && gitAtStart === undefined && e.type === 'stage-start') gitAtStart = recorder.gitInfo(graph.workspace);
      reporter.sink(e);
    };
    const opts: RunOptions = {
      cacheDir,
      ...(parsed.jobs !== undefined ? { jobs: parsed.jobs } : {}),
      force: forceIds,
      only: picked.value.length === graph.stages.size ? [] : (parsed.stages.length > 0 ? expandNames(graph, parsed.stages) : []),
      dry: parsed.dry,
      keepGoing: parsed.keepGoing,
      signal: io.signal,
      onEvent: sink,
      resources: parsed.resources,
      ...(recorder
        ? {
            afterRun: async (s: RunSummary) => {
              try {
                await recorder.recordExperiment(graph, s, { ...(parsed.name ? { name: parsed.name } : {}), ...(experiment.sweep ? { sweep: experiment.sweep } : {}), ...(gitAtStart ? { git: gitAtStart } : {}) });
              } catch (e) {
                // The stages' own records are safe; only the experiment entry is missing.
                io.stderr.write(`pipeline run: warning: could not record the experiment: ${e instanceof Error ? e.message : String(e)}\n`);
              }
            },
          }
        : {}),
    };
    summary = await runPipeline(graph, opts);
  } finally {
    reporter.close();
    await release?.();
  }
  if (summary.cancelled) return ExitCode.interrupted;
  return summary.ok ? ExitCode.ok : ExitCode.stageFailed;
}

/**
 * Takes the workspace lock, waiting up to `wait` seconds if given; when another
 * run holds it, says which (on stderr) and returns undefined (exit `locked`).
 */
export async function lockForRun(workspace: string, wait: number | undefined, io: CliIO): Promise<Lock | undefined> {
  const { lockWorkspace } = await import('../runner.js');
  const lock = await lockWorkspace(workspace, wait !== undefined ? { waitMs: wait * 1000 } : {});
  if (lock.ok) {
    const r = lock.value.reclaimed;
    if (r) {
      const who = r.why === 'unreadable' ? 'an unreadable lock file' : `pid ${r.pid} on ${r.hostname}, since ${r.since}, which is no longer running`;
      io.stderr.write(`pipeline run: reclaimed the workspace lock ${lock.value.file} left by ${who}\n`);
    }
    return lock.value;
  }
  const b = lock.error;
  io.stderr.write(`pipeline run: another run (pid ${b.pid} on ${b.hostname}, since ${b.since}) holds the workspace lock ${b.file}; wait for it to finish (or pass --wait SECONDS)\n`);
  return undefined;
}

/** The reporter `--json` asks for: NDJSON events, or the human one. */
export async function makeReporter(parsed: Pick<RunCommandOptions, 'json'>, io: CliIO): Promise<{ sink: (e: RunEvent) => void; close(): void }> {
  return parsed.json
    ? { sink: (await import('../log/ndjson.js')).ndjsonReporter(io.stdout), close() {} }
    : (await import('../log/human.js')).humanReporter({
        out: io.stdout,
        tty: io.stdout.isTTY === true && io.env.TERM !== 'dumb',
        color: useColor(io, io.stdout),
        ...(io.stdout.columns ? { columns: io.stdout.columns } : {}),
      });
}

/** Stage names as given, with foreach/matrix base names expanded to their instances. */
export function expandNames(graph: PipelineGraph, names: readonly string[]): StageId[] {
  const ids = [...graph.stages.keys()];
  return names.flatMap((n) => (graph.stages.has(n as StageId) ? [n as StageId] : ids.filter((s) => s.startsWith(`${n}@`))));
}
