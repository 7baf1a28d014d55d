/**
 * Subcommand dispatch for `pipeline` (the process wiring is in `main.ts`).
 *
 * Exit codes (README copies this table):
 * | code | meaning |
 * |------|---------|
 * | 0    | everything requested succeeded or was already up to date |
 * | 1    | a stage failed (or `cache verify` found corruption) |
 * | 2    | bad command-line usage |
 * | 3    | invalid pipeline file or params: diagnostics were printed |
 * | 4    | another `pipeline run` holds the workspace lock |
 * | 70   | internal error (a bug; set PIPELINE_DEBUG=1 for the stack) |
 * | 130  | cancelled by Ctrl-C / SIGTERM |
 *
 * Startup speed matters (a no-op run must finish in well under a second), so
 * this module imports nothing heavy: every command module is loaded with a
 * dynamic import, and commands load execa, the stage host etc. only when needed.
 *
 * It does not parse command flags (each command does), never touches
 * `process`, and prints only usage, version and internal errors.
 */
import type { CliIO, CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { diskFullText } from '../run/disk-full.js';

/** Subcommand → loader. A missing module (not yet built) reports "command not available". */
const commands: Record<string, { load: () => Promise<{ main: CommandMain }>; help: string }> = {
  run: { load: () => import('./run.js'), help: 'run the pipeline (only what changed)' },
  status: { load: () => import('./status.js'), help: 'show each stage: fresh, stale (why), restorable, will run' },
  explain: { load: () => import('./explain.js'), help: 'explain exactly what changed for one stage since its last run' },
  dag: { load: () => import('./dag.js'), help: 'print the stage graph (text, or --mermaid)' },
  cache: { load: () => import('./cache.js'), help: 'cache verify | cache gc [--keep-last N]' },
  exp: { load: () => import(`./${'exp'}.js`), help: 'list / show / checkout experiments' },
  diff: { load: () => import(`./${'diff'}.js`), help: 'compare two experiments (params, metrics, stage keys)' },
  report: { load: () => import(`./${'report'}.js`), help: 'write an HTML report of experiments' },
  watch: { load: () => import(`./${'watch'}.js`), help: 'rerun affected stages when files change' },
  predict: { load: () => import(`./${'predict'}.js`), help: 'classify images with a trained model' },
};

/** Commands of DVC (and npm-style habits) → what does that here, for the unknown-command message. */
const fromOtherTools: Record<string, string> = {
  repro: 'DVC\'s `dvc repro` is `pipeline run`',
  metrics: '`pipeline exp show ID` shows an experiment\'s metrics, `pipeline diff` compares them',
  params: '`pipeline exp show ID` shows its params, `pipeline diff` compares them',
  plots: '`pipeline report` draws learning curves and confusion matrices',
  gc: 'it is `pipeline cache gc`',
  checkout: 'it is `pipeline exp checkout ID`',
  show: 'it is `pipeline exp show ID`',
  list: 'it is `pipeline exp list`',
  ls: 'it is `pipeline exp list`',
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: pipeline <command> [options]',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.help}`),
    '',
    'run `pipeline <command> --help` for a command\'s options.',
    'exit codes: 0 ok, 1 stage failed, 2 usage, 3 invalid config, 4 workspace locked, 70 internal error, 130 interrupted',
    '',
  ].join('\n');
}

/** Runs one invocation; resolves the exit code. Exported for in-process tests. */
export async function dispatch(argv: readonly string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  // `pipeline help run` is `pipeline run --help`, as with git and npm.
  if (name === 'help' && rest[0] !== undefined && rest[0] in commands) return dispatch([rest[0], '--help'], io);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(usage());
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === '--version' || name === '-V') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.stdout.write(`${pkg.version}\n`);
    return ExitCode.ok;
  }
  const cmd = commands[name];
  if (!cmd) {
    const { didYouMean } = await import('../did-you-mean.js');
    const close = didYouMean(name, Object.keys(commands));
    const hint = fromOtherTools[name] ?? (close !== undefined ? `did you mean \`pipeline ${close}\`?` : undefined);
    io.stderr.write(`pipeline: unknown command "${name}"${hint !== undefined ? `; ${hint}` : ''}\n\n${usage()}`);
    return ExitCode.usage;
  }
  let mod: { main: CommandMain };
  try {
    mod = await cmd.load();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`/cli/${name}.js`)) {
      io.stderr.write(`pipeline: command "${name}" is not available in this build\n`);
      return ExitCode.usage;
    }
    throw e;
  }
  return mod.main(rest, io);
}

/**
 * Writes the internal-error message (stack only with PIPELINE_DEBUG=1). A full
 * disk or quota met outside any stage (the workspace lock, workspace state) is
 * no bug: it is said plainly, with what to do, and exits 1.
 */
export function reportInternalError(e: unknown, io: Pick<CliIO, 'stderr' | 'env'>): number {
  const full = diskFullText(e);
  if (full !== undefined) {
    io.stderr.write(`pipeline: ${full}: free some space and run again\n`);
    return ExitCode.stageFailed;
  }
  const debug = io.env.PIPELINE_DEBUG === '1';
  const msg = e instanceof Error ? e.message : String(e);
  io.stderr.write(`pipeline: internal error: ${msg}\n`);
  if (debug && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
  else io.stderr.write('(set PIPELINE_DEBUG=1 to see the stack trace; please report it)\n');
  return ExitCode.internalError;
}

