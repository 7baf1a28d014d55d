/**
 * `pipeline watch [file | -f FILE] [--debounce MS] [-S path=value…] [--jobs N] [--json]`:
 * runs the pipeline, then reruns exactly the stale stages whenever a watched
 * file changes (see `src/watch/session.ts` for the rules). Human output says
 * what changed, what reran and the new metrics against the previous run;
 * `--json` writes run and watch events as NDJSON. Ctrl-C exits cleanly.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CliIO, CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { parseArgs } from './args.js';
import { loadOrReport, pipelineFileFrom, usageError, useColor } from './common.js';
import type { JsonValue } from '../pipeline.js';
import type { RunEvent } from '../events.js';
import type { WatchEvent } from '../watch/session.js';
import { formatMetric } from '../experiments/flatten.js';

const HELP = `usage: pipeline watch [file | -f FILE] [options]

Runs the pipeline, then reruns only what a file change makes stale.
Watches the pipeline file, params files, every declared input and the code
files cmd stages list as deps. The pipeline's own outputs never trigger a run.

options:
  --debounce MS        wait this long after the last change (default 200)
  -S, --set path=value override a param (repeatable)
  -j, --jobs N         stages running at once
  --cache DIR          cache directory
  --json               NDJSON run and watch events on stdout
`;

const FLAGS = {
  debounce: { type: 'number' },
  set: { type: 'list', short: 'S' },
  jobs: { type: 'number', short: 'j' },
  cache: { type: 'string' },
  json: { type: 'boolean' },
  file: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const main: CommandMain = async (argv, io) => {
  const p = parseArgs(argv, FLAGS);
  if (!p.ok) return usageError(io, 'watch', p.error);
  const f = p.value.flags;
  if (f['help']) {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  const picked = pipelineFileFrom(io, p.value.positionals[0], f['file']);
  if (!picked.ok) return usageError(io, 'watch', picked.error);
  const file = picked.file;
  if (!fs.existsSync(file)) {
    // Nothing to watch yet: a missing file at start is a mistake (wrong directory), not an edit in progress.
    const loaded = await loadOrReport(io, file);
    if (!loaded.ok) return loaded.code;
  }
  const { parseOverride } = await import('../config/overrides.js');
  const overrides: { path: string; value: JsonValue }[] = [];
  for (const s of (f['set'] as string[] | undefined) ?? []) {
    const o = parseOverride(s);
    if (!o.ok) return usageError(io, 'watch', o.error);
    if (o.value.values.length !== 1) return usageError(io, 'watch', `-S ${s}: watch takes one value per param (sweeps are for pipeline run)`);
    overrides.push({ path: o.value.path, value: o.value.values[0]! });
  }
  const [{ loadPipeline }, { runPipeline, resolveCacheDir, lockWorkspace }, { watchPipeline }, { formatDiagnostics }, { recordExperiment }] = await Promise.all([
    import('../config/load.js'),
    import('../runner.js'),
    import('../watch/session.js'),
    import('../diagnostic-printer.js'),
    import('../experiments/recorder.js'),
  ]);
  const color = useColor(io, io.stdout);
  const sink = f['json'] ? (await import('../log/ndjson.js')).ndjsonReporter(io.stdout) : undefined;
  const human = f['json'] ? undefined : await import('../log/human.js');
  let reporter: { sink: (e: RunEvent) => void; close(): void } | undefined;
  const say = (line: string): void => void io.stdout.write(`${line}\n`);
  const onEvent = (e: RunEvent | WatchEvent): void => {
    if (sink) {
      sink(e as RunEvent);
      return;
    }
    switch (e.type) {
      case 'watch-ready':
        {
          // Name what is watched (relative to the cwd) when it fits on a line; else count it.
          const rel = e.roots.map((x) => path.relative(io.cwd, x) || '.');
          const named = rel.join(', ');
          say(`watching ${rel.length <= 4 && named.length <= 120 ? named : `${rel.length} paths`}; Ctrl-C to stop`);
        }
        return;
      case 'watch-change':
        say(`\nchanged: ${e.paths.map((x) => x.replace(`${io.cwd}/`, '')).join(', ')}`);
        return;
      case 'watch-invalid':
        io.stderr.write(`${formatDiagnostics(e.diagnostics, { color: useColor(io, io.stderr), relativeTo: io.cwd })}\nthe last valid pipeline stays in effect; fix the file and save again\n`);
        return;
      case 'watch-run':
        reporter = human!.humanReporter({ out: io.stdout, tty: io.stdout.isTTY === true && io.env['TERM'] !== 'dumb', color, ...(io.stdout.columns ? { columns: io.stdout.columns } : {}) });
        return;
      case 'watch-idle': {
        const s = e.summary;
        say(s.ran.length === 0 ? 'nothing to rerun' : `reran: ${s.ran.join(', ')}`);
        const hasPrev = Object.keys(s.previousMetrics).length > 0;
        for (const [k, v] of Object.entries(s.metrics)) {
          const prev = s.previousMetrics[k];
          // After the first run, show only what moved; the first time, the last stage's figures.
          if (hasPrev ? prev === v : !k.startsWith(`${s.lastStageWithMetrics}.`)) continue;
          say(`  ${k} = ${formatMetric(v)}${prev !== undefined && prev !== v ? `  (was ${formatMetric(prev)}, ${v - prev >= 0 ? '+' : ''}${formatMetric(v - prev)})` : ''}`);
        }
        say('waiting for changes…');
        return;
      }
      default:
        reporter?.sink(e);
        if (e.type === 'run-end') {
          reporter?.close();
          reporter = undefined;
        }
    }
  };
  // Like `run`, a watch session owns the workspace: a concurrent run would interleave with it.
  const lock = await lockWorkspace(path.dirname(file));
  if (!lock.ok) {
    io.stderr.write(`pipeline watch: another run (pid ${lock.error.pid}) holds the workspace lock; stop it first\n`);
    return ExitCode.locked;
  }
  try {
    await watchPipeline(
      {
        load: (file2, ov) => loadPipeline(file2, { overrides: ov }),
        cacheDirOf: (g) => resolveCacheDir(g, f['cache'] as string | undefined, io.env, io.cwd),
        run: (graph, o) =>
          runPipeline(graph, {
            cacheDir: resolveCacheDir(graph, f['cache'] as string | undefined, io.env, io.cwd),
            ...(typeof f['jobs'] === 'number' && { jobs: f['jobs'] }),
            signal: o.signal,
            lockHeld: true,
            // In watch mode a broken stage must not hold back independent branches.
            keepGoing: true,
            skipKeys: o.skipKeys,
            onEvent: o.onEvent,
            afterRun: (summary) => (summary.cancelled ? Promise.resolve() : recordExperiment(graph, summary).then(() => undefined)),
          }),
      },
      { file, overrides, ...(typeof f['debounce'] === 'number' && { debounceMs: f['debounce'] }), signal: io.signal, onEvent },
    );
  } finally {
    await lock.value.release();
  }
  reporter?.close();
  // Ctrl-C is how a watch session ends: a clean exit.
  return ExitCode.ok;
};
