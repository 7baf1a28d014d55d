/**
 * `pipeline exp list|show|checkout`. Reads experiment records from the cache;
 * `checkout` materialises an experiment's outputs into the workspace through
 * the runner's restore path (never touching config files). Never modifies or
 * deletes a user's file.
 */
import { ExitCode, type CliIO } from './io.js';
import { parseArgs, listFlag } from './args.js';
import type { ExperimentRecord } from '../experiments/record.js';
import { openExperiments, pickExperiment, whereLooked } from './experiments-io.js';
import { buildTable, parseFilter, renderTable, type ExperimentFilter, type TableFormat } from '../experiments/table.js';
import { flattenParams, formatMetric, formatValue } from '../experiments/flatten.js';

const USAGE = `usage:
  pipeline exp list [--sort [-]COLUMN] [--filter EXPR]... [--limit N] [--all-metrics] [--json|--csv|--md] [--cache DIR] [-f FILE]
  pipeline exp show ID [--json]
  pipeline exp checkout ID
ID is an id (or unique prefix), a name given with -n, or HEAD~N for the N-th latest (HEAD~0 = latest;
plain ~N works only quoted: the shell expands ~0 to the current directory).
Columns: the params that differ, then the metrics that differ (else the last stage's; --all-metrics shows all).
A param named like a metric is shown (and sorted, filtered) as params.PATH.
EXPR is PATH OP VALUE with OP in = != > >= < <=, e.g. evaluate.accuracy>=0.9 or train.lr=0.01.
`;

const FLAGS = {
  sort: { type: 'string' },
  filter: { type: 'list' },
  limit: { type: 'number' },
  json: { type: 'boolean' },
  csv: { type: 'boolean' },
  md: { type: 'boolean' },
  'all-metrics': { type: 'boolean' },
  cache: { type: 'string' },
  file: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseArgs(argv, FLAGS);
  if (!parsed.ok) {
    io.stderr.write(`pipeline exp: ${parsed.error}\n${USAGE}`);
    return ExitCode.usage;
  }
  const { flags, positionals } = parsed.value;
  const [sub, ...rest] = positionals;
  if (flags['help'] || sub === undefined) {
    (flags['help'] ? io.stdout : io.stderr).write(USAGE);
    return flags['help'] ? ExitCode.ok : ExitCode.usage;
  }
  const opened = await openExperiments(io, flags);
  const { cacheDir, all } = opened;
  switch (sub) {
    case 'list': {
      const filters: ExperimentFilter[] = [];
      for (const f of listFlag(parsed.value, 'filter')) {
        const p = parseFilter(f);
        if (!p.ok) {
          io.stderr.write(`pipeline exp list: ${p.error}\n`);
          return ExitCode.usage;
        }
        filters.push(p.value);
      }
      const format: TableFormat = flags['json'] ? 'json' : flags['csv'] ? 'csv' : flags['md'] ? 'md' : 'text';
      const table = buildTable(all, { sort: flags['sort'] as string | undefined, filters, limit: flags['limit'] as number | undefined, allMetrics: flags['all-metrics'] === true });
      if (format === 'text' && table.rows.length === 0) {
        io.stdout.write(all.length === 0 ? `no experiments recorded yet ${whereLooked(io, opened)}\n` : `no experiment matches the filters (${all.length} recorded)\n`);
        return ExitCode.ok;
      }
      io.stdout.write(renderTable(table, format));
      return ExitCode.ok;
    }
    case 'show': {
      const rec = pick(all, rest[0], io);
      if (!rec) return ExitCode.usage;
      io.stdout.write(flags['json'] ? `${JSON.stringify(rec, null, 2)}\n` : showText(rec));
      return ExitCode.ok;
    }
    case 'checkout': {
      const rec = pick(all, rest[0], io);
      if (!rec) return ExitCode.usage;
      const { checkoutExperiment } = await import('../experiments/checkout.js');
      const r = await checkoutExperiment(rec, cacheDir);
      if (!r.ok) {
        io.stderr.write(`pipeline exp checkout: ${r.error}\n`);
        return ExitCode.stageFailed;
      }
      io.stdout.write(`checked out ${rec.id}${rec.name ? ` (${rec.name})` : ''}: ${r.value.restored} stage output(s) restored into ${rec.pipeline.workspace}\n`);
      return ExitCode.ok;
    }
    default:
      io.stderr.write(`pipeline exp: unknown subcommand "${sub}"\n${USAGE}`);
      return ExitCode.usage;
  }
}

function pick(all: readonly ExperimentRecord[], ref: string | undefined, io: CliIO): ExperimentRecord | undefined {
  if (ref === undefined) {
    io.stderr.write(`pipeline exp: an experiment id is required\n${USAGE}`);
    return undefined;
  }
  return pickExperiment(all, ref, io, 'exp');
}

function showText(rec: ExperimentRecord): string {
  const lines = [
    `experiment ${rec.id}${rec.name ? ` (${rec.name})` : ''}`,
    `  pipeline:  ${rec.pipeline.name} (${rec.pipeline.file})`,
    `  created:   ${rec.createdAt}`,
    `  status:    ${rec.status}`,
    `  duration:  ${(rec.durationMs / 1000).toFixed(1)} s`,
    ...(rec.backend ? [`  backend:   ${rec.backend}`] : []),
    ...(rec.git ? [`  git:       ${rec.git.commit.slice(0, 12)}${rec.git.dirty ? ' (dirty)' : ''}`] : []),
    '',
    'params:',
    ...[...flattenParams(rec.params)].map(([k, v]) => `  ${k} = ${formatValue(v)}`),
    '',
    'metrics:',
    ...(Object.keys(rec.metrics).length ? Object.entries(rec.metrics).map(([k, v]) => `  ${k} = ${formatMetric(v)}`) : ['  (none)']),
    '',
    'stages:',
    ...Object.entries(rec.stages).map(([id, s]) => `  ${id.padEnd(16)} ${s.status.padEnd(10)} ${s.key.slice(0, 12)}  ${(s.durationMs / 1000).toFixed(1)} s`),
    '',
  ];
  return lines.join('\n');
}
