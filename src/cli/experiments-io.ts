/**
 * What `exp`, `diff` and `report` share: finding the cache from `--cache` /
 * `-f`, reading its experiment records, and resolving a user's reference
 * with a clear message. Prints only those messages.
 */
import type { CliIO } from './io.js';
import { locateCache } from '../experiments/locate.js';
import { readExperiments, resolveExperiment, type ExperimentRecord } from '../experiments/record.js';

/** The records of the cache the flags point at (oldest first). */
export async function openExperiments(io: CliIO, flags: Readonly<Record<string, unknown>>): Promise<{ cacheDir: string; pipelineFile?: string; all: ExperimentRecord[] }> {
  const located = await locateCache({ cwd: io.cwd, flag: flags['cache'] as string | undefined, env: io.env['PIPELINE_CACHE'], file: flags['file'] as string | undefined });
  return { ...located, all: await readExperiments(located.cacheDir) };
}

/** Resolves `ref` (id prefix, name or ~N); prints why not and returns undefined when it does not resolve. */
export function pickExperiment(all: readonly ExperimentRecord[], ref: string, io: CliIO, command: string): ExperimentRecord | undefined {
  const r = resolveExperiment(all, ref);
  if (r.ok) return r.value;
  io.stderr.write(
    r.error.reason === 'ambiguous'
      ? `pipeline ${command}: "${ref}" is ambiguous: ${r.error.candidates.join(', ')}\n`
      : `pipeline ${command}: no experiment "${ref}" (${all.length} recorded; see pipeline exp list)\n`,
  );
  return undefined;
}
