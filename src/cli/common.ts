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

/**
 * The pipeline file from the positional argument or `-f FILE` (the spelling
 * `exp`, `diff` and `report` need, accepted everywhere), else `pipeline.yaml`
 * in cwd. Both given and different: a usage error.
 */
export function pipelineFileFrom(io: CliIO, positional: string | undefined, flag: unknown): { ok: true; file: string } | { ok: false; error: string } {
  const f = typeof flag === 'string' ? flag : undefined;
  if (positional !== undefined && f !== undefined && path.resolve(io.cwd, positional) !== path.resolve(io.cwd, f)) {
    return { ok: false, error: `two pipeline files given: ${positional} and -f ${f}` };
  }
  return { ok: true, file: path.resolve(io.cwd, positional ?? f ?? 'pipeline.yaml') };
}

/**
 * A hint for a pipeline file that does not exist: the YAML files with a
 * `stages:` key in the cwd and in `pipelines/` (the repo's examples), at most
 * five, or undefined when there are none.
 */
export function pipelineFileHint(io: CliIO, file: string): string | undefined {
  if (fs.existsSync(file)) return undefined;
  const stage = stageNamedAsFile(io, file);
  if (stage !== undefined) return `hint: \`${stage}\` is a stage of pipeline.yaml, not a pipeline file; stages are picked with \`pipeline run --stage ${stage}\``;
  const found: string[] = [];
  for (const dir of ['.', 'pipelines']) {
    let names: string[];
    try {
      names = fs.readdirSync(path.resolve(io.cwd, dir)).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const rel = dir === '.' ? n : `${dir}/${n}`;
      try {
        if (/^\s*"?stages"?\s*:/m.test(fs.readFileSync(path.resolve(io.cwd, rel), 'utf8'))) found.push(rel);
      } catch {
        /* unreadable: not suggested */
      }
    }
  }
  if (found.length === 0) return undefined;
  const shown = found.slice(0, 5).join(', ') + (found.length > 5 ? ', …' : '');
  return `hint: pass a pipeline file (as the file argument or -f FILE); pipeline files here: ${shown}`;
}

/**
 * The stage name a user typed where the pipeline file goes (`pipeline run train`,
 * as with `dvc repro train`): a bare word naming a key under `stages:` of
 * ./pipeline.yaml. A text match on the file, enough for a hint.
 */
function stageNamedAsFile(io: CliIO, file: string): string | undefined {
  const word = path.basename(file);
  if (path.dirname(file) !== path.resolve(io.cwd) || !/^[A-Za-z_][\w.-]*$/.test(word) || /\.ya?ml$/.test(word)) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(path.resolve(io.cwd, 'pipeline.yaml'), 'utf8');
  } catch {
    return undefined;
  }
  const escaped = word.replace(/[.]/g, '\\.');
  return new RegExp(`^\\s+["']?${escaped}["']?\\s*:`, 'm').test(text) ? word : undefined;
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
  const hint = pipelineFileHint(io, file);
  io.stderr.write(`${text}\n${hint !== undefined ? `${hint}\n` : ''}`);
  return { ok: false, code: ExitCode.invalidConfig };
}

/** Writes a usage error (exit 2). */
export function usageError(io: CliIO, command: string, message: string): number {
  io.stderr.write(`pipeline ${command}: ${message}\nrun \`pipeline ${command} --help\` for usage\n`);
  return ExitCode.usage;
}
