/**
 * What a CLI command may touch: streams, cwd, env, TTY-ness and a cancel signal.
 * Every `src/cli/<command>.ts` exports `main(argv, io): Promise<number>` (the
 * exit code) and gets the process only through this object, so tests can run
 * commands in-process. Only `src/cli/main.ts` reads `process` directly.
 */
import type { Writable } from 'node:stream';

/** The process surface a command sees. */
export interface CliIO {
  readonly stdout: Writable & { isTTY?: boolean; columns?: number };
  readonly stderr: Writable & { isTTY?: boolean };
  /** Directory relative paths on the command line resolve against. */
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C / SIGTERM. */
  readonly signal: AbortSignal;
}

/** A CLI subcommand entry point. */
export type CommandMain = (argv: readonly string[], io: CliIO) => Promise<number>;

/** Documented exit codes (README lists them). */
export const ExitCode = {
  /** Everything requested succeeded (or was already up to date). */
  ok: 0,
  /** A stage failed. */
  stageFailed: 1,
  /** Bad command line usage. */
  usage: 2,
  /** The pipeline file (or params) is invalid: diagnostics were printed. */
  invalidConfig: 3,
  /** Another run holds the workspace lock. */
  locked: 4,
  /** An unexpected exception (a bug): "internal error" is printed; the stack only with PIPELINE_DEBUG=1. */
  internalError: 70,
  /** Cancelled by a signal (Ctrl-C). */
  interrupted: 130,
} as const;
