/**
 * `pipeline report [IDs…] [-o report.html]`: writes a self-contained HTML
 * report (no network) and, beside it, every chart as SVG and PNG so a terminal
 * or CI artefact can show them. Default: the last 5 experiments. Writes only
 * the files it names on stdout, never over a file it did not create unless
 * `-o` names it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, type CliIO } from './io.js';
import { parseArgs } from './args.js';
import type { ExperimentRecord } from '../experiments/record.js';
import { openExperiments, pickExperiment, whereLooked } from './experiments-io.js';

const USAGE = `usage: pipeline report [IDs…] [-o FILE] [--last N] [--cache DIR] [-f FILE]
  writes FILE (default report/report.html) plus each chart as .svg and .png beside it.
`;

const FLAGS = {
  out: { type: 'string', short: 'o' },
  last: { type: 'number' },
  cache: { type: 'string' },
  file: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseArgs(argv, FLAGS);
  if (!parsed.ok) {
    io.stderr.write(`pipeline report: ${parsed.error}\n${USAGE}`);
    return ExitCode.usage;
  }
  const { flags, positionals } = parsed.value;
  if (flags['help']) {
    io.stdout.write(USAGE);
    return ExitCode.ok;
  }
  const located = await openExperiments(io, flags);
  const all = located.all;
  let chosen: ExperimentRecord[];
  if (positionals.length > 0) {
    chosen = [];
    for (const ref of positionals) {
      const rec = pickExperiment(all, ref, io, 'report');
      if (!rec) return ExitCode.usage;
      chosen.push(rec);
    }
  } else {
    chosen = all.slice(-((flags['last'] as number | undefined) ?? 5));
  }
  if (chosen.length === 0) {
    io.stderr.write(`pipeline report: no experiments recorded yet ${whereLooked(io, located)}; run the pipeline first\n`);
    return ExitCode.usage;
  }
  const [{ CacheStore }, { reportDataFor }, { buildCharts, renderReport }] = await Promise.all([
    import('../cache/store.js'),
    import('../experiments/artifacts.js'),
    import('../report/html.js'),
  ]);
  const store = await CacheStore.open(located.cacheDir);
  const data = await Promise.all(chosen.map((rec) => reportDataFor(store, rec)));
  const charts = buildCharts(data);
  const outFile = path.resolve(io.cwd, (flags['out'] as string | undefined) ?? path.join('report', 'report.html'));
  const outDir = path.dirname(outFile);
  await fs.mkdir(outDir, { recursive: true });
  const title = `${chosen[0]!.pipeline.name}: ${chosen.length} experiment(s)`;
  await fs.writeFile(outFile, renderReport(data, charts, { title, generatedAt: new Date().toISOString() }));
  const sharp = (await import('sharp')).default;
  const written = [outFile];
  for (const [name, svg] of Object.entries(charts)) {
    const svgFile = path.join(outDir, name);
    await fs.writeFile(svgFile, svg);
    const pngFile = svgFile.replace(/\.svg$/, '.png');
    await sharp(Buffer.from(svg)).png().toFile(pngFile);
    written.push(svgFile, pngFile);
  }
  io.stdout.write(`${written.map((f) => path.relative(io.cwd, f) || f).join('\n')}\n`);
  return ExitCode.ok;
}
