/**
 * `npm run bench`: runs every `bench/*.bench.js` suite (or those named on the
 * command line), writes `bench/results/latest.json` and `BENCHMARKS.md`.
 * `--quick` shrinks sizes for a smoke run.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, BenchSuite } from './types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));

const files = (await fs.readdir(here)).filter((f) => f.endsWith('.bench.js')).sort();
const all: { suite: string; results: BenchResult[] }[] = [];
for (const f of files) {
  const suite = ((await import(pathToFileURL(path.join(here, f)).href)) as { default: BenchSuite }).default;
  if (only.length > 0 && !only.includes(suite.name)) continue;
  process.stdout.write(`# ${suite.name}\n`);
  const results = await suite.run({ quick, log: (line) => process.stdout.write(`  ${line}\n`) });
  for (const r of results) process.stdout.write(`  ${r.name}: ${r.value} ${r.unit}${r.goal ? ` (goal ${r.goal}: ${r.met ? 'met' : 'NOT met'})` : ''}\n`);
  all.push({ suite: suite.name, results });
}

const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` };
const date = new Date().toISOString();
await fs.mkdir(path.join(repoRoot, 'bench', 'results'), { recursive: true });
await fs.writeFile(path.join(repoRoot, 'bench', 'results', 'latest.json'), JSON.stringify({ date, machine, quick, suites: all }, null, 2));
const md = [
  '# Benchmarks',
  '',
  `Measured ${date} on ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}${quick ? ' (quick mode: reduced sizes)' : ''}.`,
  '',
  '| suite | figure | value | goal | met |',
  '|---|---|---|---|---|',
  ...all.flatMap(({ suite, results }) =>
    results.map((r) => `| ${suite} | ${r.name}${r.detail ? ` — ${r.detail}` : ''} | ${Number.isInteger(r.value) ? r.value : r.value.toFixed(3)} ${r.unit} | ${r.goal ?? ''} | ${r.goal ? (r.met ? 'yes' : 'no') : ''} |`),
  ),
  '',
];
if (only.length === 0) await fs.writeFile(path.join(repoRoot, 'BENCHMARKS.md'), md.join('\n'));
else process.stdout.write(md.join('\n'));
