/**
 * `npm run bench [-- SUITE…] [--quick]`: runs every `bench/*.bench.js` suite
 * (or those named), stores each suite's figures in
 * `bench/results/<suite>.json`, then rebuilds `bench/results/latest.json` and
 * `BENCHMARKS.md` from every suite result present, so suites can be rerun one
 * at a time. A suite that throws is recorded as failed with its message; the
 * others still run.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, BenchSuite } from './types.js';
import type { StressFigure } from '../test/stress/figures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const resultsDir = path.join(repoRoot, 'bench', 'results');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));

interface SuiteResult {
  readonly suite: string;
  readonly date: string;
  readonly quick: boolean;
  readonly loadavg: readonly number[];
  readonly results: readonly BenchResult[];
  readonly error?: string;
}

const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` };
await fs.mkdir(resultsDir, { recursive: true });
const files = (await fs.readdir(here)).filter((f) => f.endsWith('.bench.js')).sort();
let failed = 0;
for (const f of files) {
  const suite = ((await import(pathToFileURL(path.join(here, f)).href)) as { default: BenchSuite }).default;
  if (only.length > 0 && !only.includes(suite.name)) continue;
  process.stdout.write(`# ${suite.name}\n`);
  const loadBefore = os.loadavg();
  let results: BenchResult[] = [];
  let error: string | undefined;
  try {
    results = await suite.run({ quick, log: (line) => process.stdout.write(`  ${line}\n`) });
  } catch (e) {
    error = e instanceof Error ? e.message.split('\n').slice(0, 3).join(' ') : String(e);
    failed++;
    process.stdout.write(`  suite failed: ${error}\n`);
  }
  for (const r of results) process.stdout.write(`  ${r.name}: ${r.value} ${r.unit}${r.goal ? ` (goal ${r.goal}: ${r.met ? 'met' : 'NOT met'})` : ''}\n`);
  const rec: SuiteResult = { suite: suite.name, date: new Date().toISOString(), quick, loadavg: loadBefore.map((x) => Number(x.toFixed(2))), results, ...(error !== undefined && { error }) };
  await fs.writeFile(path.join(resultsDir, `${suite.name}.json`), JSON.stringify(rec, null, 2));
}

const all: SuiteResult[] = [];
/** `bench/results/stress.json` from `npm run test:stress` (test/stress/figures.ts), shown in its own section. */
interface StressResults {
  readonly figures: readonly (StressFigure & { readonly at: string })[];
}
let stress: StressResults | undefined;
for (const f of (await fs.readdir(resultsDir)).filter((n) => n.endsWith('.json') && n !== 'latest.json').sort()) {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(path.join(resultsDir, f), 'utf8'));
  } catch {
    continue; // not JSON
  }
  const o = parsed as Partial<SuiteResult> & Partial<StressResults>;
  if (f === 'stress.json' && Array.isArray(o.figures)) stress = o as StressResults;
  else if (typeof o.suite === 'string' && Array.isArray(o.results) && Array.isArray(o.loadavg)) all.push(o as SuiteResult);
}
await fs.writeFile(path.join(resultsDir, 'latest.json'), JSON.stringify({ machine, suites: all }, null, 2));
const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3));
const md = [
  '# Benchmarks',
  '',
  `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}, ${machine.platform}. Each suite lists when it ran and the 1/5/15-minute load average when it started: figures taken on a loaded machine understate wall-clock speed (CPU-time figures are reported where a suite measures them). Regenerate with \`npm run bench\` (or \`npm run bench -- SUITE\`).`,
  '',
  ...all.flatMap((s) => [
    `## ${s.suite}`,
    '',
    `Run ${s.date}${s.quick ? ' (quick mode: reduced sizes)' : ''}, load average ${s.loadavg.join(' / ')}.${s.error ? ` **Suite failed:** ${s.error}` : ''}`,
    '',
    ...(s.results.length
      ? ['| figure | value | goal | met |', '|---|---|---|---|', ...s.results.map((r) => `| ${r.name}${r.detail ? ` — ${r.detail.replace(/\|/g, '\\|')}` : ''} | ${fmt(r.value)} ${r.unit} | ${r.goal ?? ''} | ${r.goal ? (r.met ? 'yes' : '**no**') : ''} |`)]
      : []),
    '',
  ]),
  ...(stress
    ? [
        '## stress (`npm run test:stress`)',
        '',
        'Reliability figures recorded by `test/stress/*.stress.ts` (issue 7); each test asserts its own goal, so a figure short of its total means that run failed.',
        '',
        '| figure | value | measured |',
        '|---|---|---|',
        ...stress.figures.map((f) => `| ${f.id} — ${f.label.replace(/\|/g, '\\|')} | ${f.of !== undefined ? `${f.value}/${f.of}` : `${fmt(f.value)}${f.unit ? ` ${f.unit}` : ''}`} | ${f.at.slice(0, 16).replace('T', ' ')} |`),
        '',
      ]
    : []),
];
await fs.writeFile(path.join(repoRoot, 'BENCHMARKS.md'), md.join('\n'));
process.stdout.write(`wrote BENCHMARKS.md (${all.length} suites)\n`);
process.exitCode = failed > 0 ? 1 : 0;
