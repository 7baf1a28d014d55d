/**
 * Pieces every engine command shares: loading the pipeline file with
 * diagnostics printed (exit 3 on failure), colour detection (NO_COLOR,
 * FORCE_COLOR, TTY), and the cache directory rule.
 *
 * It does not run or plan anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CliIO } from './io.js';
import { ExitCode } from './io.js';
import type { JsonValue, PipelineGraph } from '../pipeline.js';

/** Whether to colour output written to `stream`. */
export function useColor(io: CliIO, stream: CliIO['stdout'] | CliIO['stderr']): boolean {
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  if (io.env.FORCE_COLOR !== undefined && io.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true && io.env.TERM !== 'dumb';
}

/** The pipeline file from the first positional argument, or `pipeline.yaml` in cwd. */
export function pipelineFileArg(io: CliIO, positional: string | undefined): string {
  return path.resolve(io.cwd, positional ?? 'pipeline.yaml');
}

/** Loads and analyses the pipeline; on failure prints every diagnostic to stderr and returns the exit code. */
export async function loadOrReport(
  io: CliIO,
  file: string,
  overrides: readonly { path: string; value: JsonValue }[] = [],
): Promise<{ ok: true; graph: PipelineGraph } | { ok: false; code: number }> {
  const [{ loadPipeline }, { formatDiagnostics }] = await Promise.all([import('../config/load.js'), import('../diagnostic-printer.js')]);
  const r = await loadPipeline(file, { overrides });
  if (r.ok) return { ok: true, graph: r.value };
  const text = formatDiagnostics(r.error, {
    color: useColor(io, io.stderr),
    relativeTo: io.cwd,
    readSource: (f) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch {
        return undefined;
      }
    },
  });
  io.stderr.write(`${text}\n`);
  return { ok: false, code: ExitCode.invalidConfig };
}

/** Writes a usage error (exit 2). */
export function usageError(io: CliIO, command: string, message: string): number {
  io.stderr.write(`pipeline ${command}: ${message}\nrun \`pipeline ${command} --help\` for usage\n`);
  return ExitCode.usage;
}
