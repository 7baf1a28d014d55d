/**
 * Config front-end cost (issue #2: a no-op `pipeline run` must take <= 0.3 s
 * including process start, so `loadPipeline` should cost well under 50 ms
 * including its imports). Each figure is measured in fresh `node` processes
 * (median of several runs), timing from before the first import of
 * `src/config/load.js` to the loaded graph:
 * - graph cache hit (the no-op case), a small and a 100-stage pipeline;
 * - cache miss with compiled validators cached on disk (after an edit);
 * - cold (validators compiled with ajv: first run after install/schema edit);
 * - importing `stages/registry.js` (every built-in module), which a cache
 *   miss on a pipeline with `uses:` stages pays.
 * Also in-process analysis time for a 1,000-stage matrix pipeline.
 * Does not measure planning or hashing (engine-noop.bench.ts does).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, BenchSuite } from './types.js';

const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const loadUrl = pathToFileURL(path.join(distRoot, 'src', 'config', 'load.js')).href;
const registryUrl = pathToFileURL(path.join(distRoot, 'stages', 'registry.js')).href;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Runs `script` (ESM) in a fresh node; it prints one number (ms). */
function fresh(script: string): number {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').at(-1));
}

function loadScript(file: string, opts: string): string {
  return `const t0 = performance.now();
    const { loadPipeline } = await import(${JSON.stringify(loadUrl)});
    const r = await loadPipeline(${JSON.stringify(file)}, ${opts});
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    console.log(performance.now() - t0);`;
}

function smallPipeline(): string {
  return [
    'name: bench',
    'params: {train: {lr: 0.01, epochs: 3}}',
    'stages:',
    '  prepare: {cmd: [python3, prep.py], deps: [data], outs: [prepared]}',
    '  train:',
    '    cmd: "python3 train.py --lr ${params.train.lr} --epochs ${params.train.epochs}"',
    '    deps: [prepared, train.py]',
    '    outs: [model]',
    '    metrics: [metrics.json]',
    '  report: {cmd: [python3, report.py, "${stages.train.out}"], outs: [report.txt]}',
    '',
  ].join('\n');
}

function matrixPipeline(a: number, b: number): string {
  const as = Array.from({ length: a }, (_, i) => i);
  const bs = Array.from({ length: b }, (_, i) => i);
  return [
    'name: matrix',
    'params: {base: 1}',
    'stages:',
    '  prepare: {cmd: [prep], outs: [prepared]}',
    '  sweep:',
    `    matrix: {a: [${as.join(', ')}], b: [${bs.join(', ')}]}`,
    '    cmd: [train, --a, "${item.a}", --b, "${item.b}", --base, "${params.base}"]',
    '    deps: [prepared/part.csv]',
    '    outs: ["models/${item.a}-${item.b}"]',
    '  collect: {cmd: [collect], needs: [sweep]}',
    '',
  ].join('\n');
}

const suite: BenchSuite = {
  name: 'config',
  async run({ quick, log }) {
    const runs = quick ? 3 : 9;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-config-'));
    const results: BenchResult[] = [];
    try {
      const small = path.join(dir, 'small.yaml');
      fs.writeFileSync(small, smallPipeline());
      const big = path.join(dir, 'big.yaml');
      fs.writeFileSync(big, matrixPipeline(10, 10));
      const graphs = JSON.stringify(path.join(dir, 'graphs'));
      const validators = JSON.stringify(path.join(dir, 'validators'));

      fresh(loadScript(small, `{ graphCacheDir: ${graphs}, validatorCacheDir: ${validators} }`)); // warm both caches
      fresh(loadScript(big, `{ graphCacheDir: ${graphs}, validatorCacheDir: ${validators} }`));
      const hitSmall = median(Array.from({ length: runs }, () => fresh(loadScript(small, `{ graphCacheDir: ${graphs}, validatorCacheDir: ${validators} }`))));
      const hitBig = median(Array.from({ length: runs }, () => fresh(loadScript(big, `{ graphCacheDir: ${graphs}, validatorCacheDir: ${validators} }`))));
      const miss = median(Array.from({ length: runs }, () => fresh(loadScript(small, `{ graphCacheDir: false, validatorCacheDir: ${validators} }`))));
      const missBig = median(Array.from({ length: runs }, () => fresh(loadScript(big, `{ graphCacheDir: false, validatorCacheDir: ${validators} }`))));
      const cold = median(Array.from({ length: Math.min(runs, 5) }, () => fresh(loadScript(small, `{ graphCacheDir: false, validatorCacheDir: false }`))));
      const registry = median(
        Array.from({ length: Math.min(runs, 5) }, () => fresh(`const t0 = performance.now(); await import(${JSON.stringify(registryUrl)}); console.log(performance.now() - t0);`)),
      );
      log(`fresh-process figures are medians of ${runs} runs, from the first import to the graph`);
      const ms = (name: string, value: number, goal: string | undefined, limit: number | undefined, detail: string): void => {
        results.push({ name, value: Math.round(value * 10) / 10, unit: 'ms', ...(goal ? { goal, met: value <= limit! } : {}), detail });
      };
      ms('load.cache-hit.small', hitSmall, '<= 50 ms', 50, '3 cmd stages, graph cache hit (no-op run case), imports included');
      ms('load.cache-hit.100-stages', hitBig, '<= 50 ms', 50, '10x10 matrix + 2 stages, graph cache hit');
      ms('load.cache-miss.small', miss, '<= 50 ms', 50, 'after an edit: YAML parse + cached validators + analysis, imports included');
      ms('load.cache-miss.100-stages', missBig, undefined, undefined, '10x10 matrix, full analysis');
      ms('load.cold.small', cold, undefined, undefined, 'validators compiled with ajv (first run after install or a schema edit)');
      ms('import.stages-registry', registry, undefined, undefined, 'import of stages/registry.js (every built-in module); paid on a cache miss when the pipeline has uses: stages');

      // In-process analysis scale: 1,000 expanded stages.
      const huge = path.join(dir, 'huge.yaml');
      fs.writeFileSync(huge, matrixPipeline(40, 25));
      const { loadPipeline } = (await import(loadUrl)) as typeof import('../src/config/load.js');
      await loadPipeline(huge, { graphCacheDir: false, validatorCacheDir: JSON.parse(validators) as string });
      const times: number[] = [];
      for (let i = 0; i < (quick ? 2 : 5); i++) {
        const t0 = performance.now();
        const r = await loadPipeline(huge, { graphCacheDir: false, validatorCacheDir: JSON.parse(validators) as string });
        times.push(performance.now() - t0);
        if (!r.ok || r.value.stages.size !== 1002) throw new Error('huge pipeline did not load');
      }
      ms('analyze.1000-stages.in-process', median(times), undefined, undefined, '40x25 matrix with path-inferred deps, warm process');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return results;
  },
};

export default suite;
