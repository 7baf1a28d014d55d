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
 * - pipelines/quickstart.yaml (built-in stages), cache hit and miss.
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

/** One fresh-process sample: wall and CPU (user+system) ms of the measured section. */
interface Sample {
  readonly wall: number;
  readonly cpu: number;
}

/** Runs `body` (ESM) in a fresh node, timing it with wall clock and CPU time. */
function fresh(body: string): Sample {
  const script = `const t0 = performance.now(); const c0 = process.cpuUsage();
    ${body}
    const c = process.cpuUsage(c0);
    console.log(JSON.stringify({ wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Sample;
}

function loadScript(file: string, opts: string): string {
  return `const { loadPipeline } = await import(${JSON.stringify(loadUrl)});
    const r = await loadPipeline(${JSON.stringify(file)}, ${opts});
    if (!r.ok) throw new Error(JSON.stringify(r.error));`;
}

/** Medians of `n` fresh samples. */
function sampled(n: number, body: string): Sample {
  const xs = Array.from({ length: n }, () => fresh(body));
  return { wall: median(xs.map((x) => x.wall)), cpu: median(xs.map((x) => x.cpu)) };
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

      const warm = `{ graphCacheDir: ${graphs}, validatorCacheDir: ${validators} }`;
      fresh(loadScript(small, warm)); // fill both caches
      fresh(loadScript(big, warm));
      const hitSmall = sampled(runs, loadScript(small, warm));
      const hitBig = sampled(runs, loadScript(big, warm));
      const miss = sampled(runs, loadScript(small, `{ graphCacheDir: false, validatorCacheDir: ${validators} }`));
      const missBig = sampled(runs, loadScript(big, `{ graphCacheDir: false, validatorCacheDir: ${validators} }`));
      const cold = sampled(Math.min(runs, 5), loadScript(small, '{ graphCacheDir: false, validatorCacheDir: false }'));
      // Stage modules belong to other areas and may be mid-change: a failure to import them skips those figures.
      const tryFigure = (f: () => Sample): Sample | undefined => {
        try {
          return f();
        } catch (e) {
          log(`skipped: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
          return undefined;
        }
      };
      const registry = tryFigure(() => sampled(Math.min(runs, 5), `await import(${JSON.stringify(registryUrl)});`));
      log(`fresh-process figures: medians of ${runs} runs from the first import to the graph; CPU = user+system time (robust on a busy machine), wall in the detail`);
      const ms = (name: string, x: Sample, goal: number | undefined, detail: string): void => {
        const cpu = Math.round(x.cpu * 10) / 10;
        results.push({ name, value: cpu, unit: 'ms cpu', ...(goal !== undefined ? { goal: `<= ${goal} ms`, met: x.cpu <= goal } : {}), detail: `${detail}; wall ${x.wall.toFixed(1)} ms` });
      };
      ms('load.cache-hit.small', hitSmall, 50, '3 cmd stages, graph cache hit (the no-op run case), imports included');
      ms('load.cache-hit.100-stages', hitBig, 50, '10x10 matrix + 2 stages, graph cache hit');
      ms('load.cache-miss.small', miss, 50, 'after an edit: YAML parse + cached validators + analysis, imports included');
      ms('load.cache-miss.100-stages', missBig, undefined, '10x10 matrix, full analysis');
      ms('load.cold.small', cold, undefined, 'validators compiled with ajv (first run after install or a schema edit)');
      if (registry) ms('import.stages-registry', registry, undefined, 'import of stages/registry.js (every built-in module); paid on a cache miss when the pipeline has uses: stages');

      // The real quickstart (built-in stages): a miss imports every stage module.
      const quickstart = path.join(distRoot, '..', 'pipelines', 'quickstart.yaml');
      if (fs.existsSync(quickstart)) {
        const qsOpts = `{ graphCacheDir: ${graphs}, validatorCacheDir: ${validators} }`;
        const primed = tryFigure(() => fresh(loadScript(quickstart, qsOpts)));
        const hit = primed && tryFigure(() => sampled(runs, loadScript(quickstart, qsOpts)));
        const miss = primed && tryFigure(() => sampled(Math.min(runs, 5), loadScript(quickstart, `{ graphCacheDir: false, validatorCacheDir: ${validators} }`)));
        if (hit) ms('load.quickstart.cache-hit', hit, 50, 'pipelines/quickstart.yaml (built-in stages), graph cache hit: no stage module imported');
        if (miss) ms('load.quickstart.cache-miss', miss, undefined, 'same, no graph cache: YAML + analysis + importing stages/registry.js');
      }

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
      results.push({ name: 'analyze.1000-stages.in-process', value: Math.round(median(times)), unit: 'ms', detail: '40x25 matrix with path-inferred deps, warm process, wall' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return results;
  },
};

export default suite;
