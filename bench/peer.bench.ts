/**
 * Side-by-side with a peer engine (issue 6): Snakemake (Debian package
 * `snakemake`), when installed, on an equivalent DAG: one step that reads a
 * directory of N files and writes a count. Measures, for both engines in the
 * same run, the no-op rerun and the rerun after 1% of the files change (real
 * processes, process start included, median of 3). Ratios are the headline.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchResult, BenchSuite } from './types.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repoRoot, 'bin', 'pipeline.js');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timed(cmd: string, args: string[], cwd: string): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return (performance.now() - t) / 1000;
}

async function makeTree(dir: string, n: number): Promise<void> {
  const data = path.join(dir, 'data');
  for (let d = 0; d < Math.ceil(n / 1000); d++) {
    await fs.mkdir(path.join(data, `d${d}`), { recursive: true });
    await Promise.all(Array.from({ length: Math.min(1000, n - d * 1000) }, (_, i) => fs.writeFile(path.join(data, `d${d}`, `f${i}.txt`), `file ${d}-${i}\n`)));
  }
}

async function touchOnePercent(dir: string, n: number, round: number): Promise<void> {
  const k = Math.max(1, Math.floor(n / 100));
  for (let j = 0; j < k; j++) {
    const i = (j * 97 + round) % n;
    await fs.writeFile(path.join(dir, 'data', `d${Math.floor(i / 1000)}`, `f${i % 1000}.txt`), `changed ${round} ${i}\n`);
  }
}

async function engineFigures(n: number, kind: 'pipeline' | 'snakemake'): Promise<{ noop: number; incremental: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `bench-peer-${kind}-`));
  try {
    await makeTree(dir, n);
    let run: () => number;
    if (kind === 'pipeline') {
      await fs.writeFile(path.join(dir, 'pipeline.yaml'), JSON.stringify({ name: 'peer', stages: { count: { cmd: ['sh', '-c', 'find data -type f | wc -l > count.txt'], deps: ['data'], outs: ['count.txt'] } } }));
      run = () => timed(process.execPath, [cli, 'run'], dir);
    } else {
      await fs.writeFile(
        path.join(dir, 'Snakefile'),
        [
          'FILES, = glob_wildcards("data/{f}.txt")',
          'rule count:',
          '    input: expand("data/{f}.txt", f=FILES)',
          '    output: "count.txt"',
          '    shell: "find data -type f | wc -l > {output}"',
          '',
        ].join('\n'),
      );
      run = () => timed('snakemake', ['-c1', 'count.txt', '--quiet', 'all'], dir);
    }
    run(); // first run builds
    const noop = median([run(), run(), run()]);
    const inc: number[] = [];
    for (let r = 0; r < 3; r++) {
      await touchOnePercent(dir, n, r);
      inc.push(run());
    }
    return { noop, incremental: median(inc) };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const suite: BenchSuite = {
  name: 'peer',
  async run({ quick, log }) {
    const has = spawnSync('snakemake', ['--version'], { encoding: 'utf8' }).status === 0;
    const out: BenchResult[] = [];
    for (const n of quick ? [1000] : [1000, 10_000]) {
      const ours = await engineFigures(n, 'pipeline');
      log(`pipeline ${n} files: no-op ${ours.noop.toFixed(3)} s, +1% ${ours.incremental.toFixed(3)} s`);
      out.push({ name: `peer.${n}-files.pipeline.noop`, value: ours.noop, unit: 's' });
      out.push({ name: `peer.${n}-files.pipeline.plus-1pct`, value: ours.incremental, unit: 's' });
      if (!has) continue;
      const snake = await engineFigures(n, 'snakemake');
      log(`snakemake ${n} files: no-op ${snake.noop.toFixed(3)} s, +1% ${snake.incremental.toFixed(3)} s`);
      out.push({ name: `peer.${n}-files.snakemake.noop`, value: snake.noop, unit: 's' });
      out.push({ name: `peer.${n}-files.snakemake.plus-1pct`, value: snake.incremental, unit: 's' });
      out.push({ name: `peer.${n}-files.noop-speedup-vs-snakemake`, value: snake.noop / ours.noop, unit: 'ratio', detail: 'snakemake time / our time; > 1 means we are faster' });
      out.push({ name: `peer.${n}-files.plus-1pct-speedup-vs-snakemake`, value: snake.incremental / ours.incremental, unit: 'ratio', detail: 'snakemake time / our time' });
    }
    if (!has) out.push({ name: 'peer.snakemake', value: 0, unit: 'n/a', detail: 'snakemake not installed (apt-get install snakemake); peer figures skipped' });
    return out;
  },
};
export default suite;
