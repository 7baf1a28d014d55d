/**
 * `pipeline` entry point: wires SIGINT/SIGTERM to an AbortSignal (a second
 * Ctrl-C exits at once), builds the `CliIO`, dispatches (`dispatch.ts`, which
 * documents the exit codes) and exits with the command's code.
 *
 * Only this module touches `process`. It imports nothing heavy.
 */
import type { CliIO } from './io.js';
import { ExitCode } from './io.js';
import { dispatch, reportInternalError } from './dispatch.js';

async function cli(): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      controller.abort(new Error(`received ${sig}`));
      return;
    }
    // Second Ctrl-C: stop waiting for children to finish.
    process.exit(ExitCode.interrupted);
  };
  // A closed pipe (`pipeline run --json | head`) is not an error worth a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const io: CliIO = { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env, signal: controller.signal };
  let code: number;
  try {
    code = await dispatch(process.argv.slice(2), io);
  } catch (e) {
    code = reportInternalError(e, io);
  }
  if (controller.signal.aborted && code === ExitCode.ok) code = ExitCode.interrupted;
  // Flush before exiting: stray handles (a stage host's grace timer) must not keep us alive.
  await Promise.all([
    new Promise<void>((r) => (process.stdout.writableLength === 0 ? r() : process.stdout.write('', () => r()))),
    new Promise<void>((r) => (process.stderr.writableLength === 0 ? r() : process.stderr.write('', () => r()))),
  ]);
  process.exit(code);
}

await cli();
