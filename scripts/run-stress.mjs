#!/usr/bin/env node
// The long reliability suite: runs dist/test/stress/**/*.stress.js one file at a time,
// then prints the figures they recorded (test/stress/figures.ts) and writes them to
// bench/results/stress.json. Arguments filter by substring of the path.
import { readdirSync, statSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.stress.js') ? [p] : [];
  });
}
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = walk('dist/test/stress').sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no stress files matched');
  process.exit(1);
}
const figuresDir = mkdtempSync(join(tmpdir(), 'stress-figures-'));
const started = Date.now();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  env: { ...process.env, STRESS_FIGURES_DIR: figuresDir },
});
const figures = readdirSync(figuresDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(figuresDir, f), 'utf8')));
rmSync(figuresDir, { recursive: true, force: true });
console.log('\nStress figures');
for (const f of figures) {
  const shown = f.of !== undefined ? `${f.value}/${f.of}` : `${f.value}${f.unit ? ' ' + f.unit : ''}`;
  console.log(`  ${f.id.padEnd(22)} ${shown.padStart(14)}  ${f.label}`);
}
console.log(`  (${((Date.now() - started) / 1000).toFixed(0)} s, exit ${r.status})`);
// A filtered run updates only the figures it measured; the others stay as last measured.
mkdirSync('bench/results', { recursive: true });
const resultsPath = 'bench/results/stress.json';
let previous = [];
try {
  previous = JSON.parse(readFileSync(resultsPath, 'utf8')).figures ?? [];
} catch {
  previous = [];
}
const merged = [...previous.filter((p) => !figures.some((f) => f.id === p.id)), ...figures].sort((a, b) => a.id.localeCompare(b.id));
writeFileSync(resultsPath, JSON.stringify({ at: new Date().toISOString(), lastRun: { files, seconds: (Date.now() - started) / 1000, exit: r.status }, figures: merged }, null, 2) + '\n');
process.exit(r.status ?? 1);
