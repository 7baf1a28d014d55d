/**
 * `pipeline dag [file] [--mermaid]`: the stage graph as text (one line per
 * stage with what it needs) or a Mermaid flowchart. Rendering is in
 * `src/dag-render.ts`; this only loads and writes.
 */
import type { CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { parseArgs } from './args.js';
import { loadOrReport, pipelineFileFrom, usageError } from './common.js';

const HELP = `usage: pipeline dag [file | -f FILE] [--mermaid]\n`;

export const main: CommandMain = async (argv, io) => {
  const p = parseArgs(argv, { mermaid: { type: 'boolean' }, file: { type: 'string', short: 'f' }, help: { type: 'boolean', short: 'h' } });
  if (!p.ok) return usageError(io, 'dag', p.error);
  if (p.value.flags.help) {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  if (p.value.positionals.length > 1) return usageError(io, 'dag', 'expected at most one pipeline file');
  const file = pipelineFileFrom(io, p.value.positionals[0], p.value.flags.file);
  if (!file.ok) return usageError(io, 'dag', file.error);
  const loaded = await loadOrReport(io, file.file);
  if (!loaded.ok) return loaded.code;
  const { renderDagMermaid, renderDagText } = await import('../dag-render.js');
  io.stdout.write(p.value.flags.mermaid ? renderDagMermaid(loaded.graph) : renderDagText(loaded.graph));
  return ExitCode.ok;
};
