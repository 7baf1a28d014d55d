/**
 * No-op `pipeline run` latency (issue #2 figures): one `cmd` stage depending
 * on a directory of N files, already up to date. Each sample is a real
 * `node bin/pipeline.js run` child process (process start included), timed
 * hyperfine-style: warm-up runs, then the median of repeated runs. Peak RSS
 * comes from `/usr/bin/time -f %M` when available.
 *
 * It does not measure the first (hashing) run except as context.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchResult, BenchSuite } from './types.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repoRoot, 'bin', 'pipeline.js');
const timeBin = '/usr/bin/time';

async function makeWorkspace(files: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `bench-noop-${files}-`));
  const perDir = 1000;
  for (let d = 0; d * perDir < files; d++) {
    const sub = path.join(dir, 'data', `d${String(d).padStart(3, '0')}`);
    await fs.mkdir(sub, { recursive: true });
    const n = Math.min(perDir, files - d * perDir);
    await Promise.all(Array.from({ length: n }, (_, i) => fs.writeFile(path.join(sub, `f${i}.txt`), `file ${d}/${i}\n`)));
  }
  const pipeline = {
    name: `noop-${files}`,
    stages: { count: { cmd: [process.execPath, '-e', "require('fs').writeFileSync('count.txt', 'x')"], deps: ['data'], outs: ['count.txt'] } },
  };
  await fs.writeFile(path.join(dir, 'pipeline.yaml'), JSON.stringify(pipeline, null, 2));
  return dir;
}

interface Sample {
  readonly wallS: number;
  readonly rssMiB?: number;
  /** user + system CPU seconds of the CLI process (robust to other load on the machine). */
  readonly cpuS?: number;
  readonly stdout: string;
  readonly code: number | null;
}

function runOnce(cwd: string, hasTime: boolean): Sample {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.PIPELINE_CACHE;
  const t0 = process.hrtime.bigint();
  const r = hasTime
    ? spawnSync(timeBin, ['-f', '%M %U %S', process.execPath, cli, 'run'], { cwd, env, encoding: 'utf8' })
    : spawnSync(process.execPath, [cli, 'run'], { cwd, env, encoding: 'utf8' });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  let rssMiB: number | undefined;
  let cpuS: number | undefined;
  if (hasTime) {
    const last = r.stderr.trim().split('\n').at(-1) ?? '';
    const m = /^(\d+) ([\d.]+) ([\d.]+)$/.exec(last);
    if (m) {
      rssMiB = Number(m[1]) / 1024;
      cpuS = Number(m[2]) + Number(m[3]);
    }
  }
  return { wallS, ...(rssMiB !== undefined ? { rssMiB } : {}), ...(cpuS !== undefined ? { cpuS } : {}), stdout: r.stdout, code: r.status };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const suite: BenchSuite = {
  name: 'engine-noop',
  async run({ quick, log }) {
    const hasTime = await fs.access(timeBin).then(
      () => true,
      () => false,
    );
    const sizes: { files: number; label: string; goal?: number; runs: number }[] = quick
      ? [{ files: 1000, label: '1k', runs: 5 }, { files: 10_000, label: '10k', goal: 0.3, runs: 5 }]
      : [
          { files: 1000, label: '1k', runs: 15 },
          { files: 10_000, label: '10k', goal: 0.3, runs: 15 },
          { files: 100_000, label: '100k', goal: 2, runs: 7 },
        ];
    const results: BenchResult[] = [];
    // Process start alone, for context.
    const bare: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0']);
      bare.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    results.push({ name: 'node-start.wall', value: Number(median(bare).toFixed(4)), unit: 's', detail: '`node -e 0`, median of 7 (context: machine load inflates every wall figure)' });
    log(`load average: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.availableParallelism()} cores`);
    for (const size of sizes) {
      const dir = await makeWorkspace(size.files);
      try {
        const first = runOnce(dir, hasTime);
        if (first.code !== 0) throw new Error(`first run failed (${first.code}): ${first.stdout}`);
        log(`${size.label}: first run (hash everything, run the stage) ${first.wallS.toFixed(3)} s`);
        // Warm-up: the second run may still re-read files written within the racy window.
        await new Promise((r) => setTimeout(r, 1100));
        for (let i = 0; i < 2; i++) runOnce(dir, hasTime);
        const samples: Sample[] = [];
        for (let i = 0; i < size.runs; i++) {
          const s = runOnce(dir, hasTime);
          if (s.code !== 0 || !/nothing to do/.test(s.stdout)) throw new Error(`no-op run did work or failed: ${s.stdout}`);
          samples.push(s);
        }
        const wall = median(samples.map((s) => s.wallS));
        log(`${size.label}: no-op median ${wall.toFixed(3)} s (min ${Math.min(...samples.map((s) => s.wallS)).toFixed(3)}, max ${Math.max(...samples.map((s) => s.wallS)).toFixed(3)}, n=${samples.length})`);
        results.push({
          name: `noop-run.${size.label}-files.wall`,
          value: Number(wall.toFixed(4)),
          unit: 's',
          ...(size.goal !== undefined ? { goal: `<= ${size.goal} s`, met: wall <= size.goal } : {}),
          detail: `median of ${samples.length} runs of \`pipeline run\` (process start included), one cmd stage depending on ${size.files} files`,
        });
        const cpu = samples.map((s) => s.cpuS).filter((x): x is number => x !== undefined);
        if (cpu.length > 0) {
          results.push({ name: `noop-run.${size.label}-files.cpu`, value: Number(median(cpu).toFixed(3)), unit: 's', detail: 'median user+sys CPU of the CLI process: what the wall time approaches on an idle machine' });
          log(`${size.label}: no-op median CPU ${median(cpu).toFixed(3)} s`);
        }
        const rss = samples.map((s) => s.rssMiB).filter((x): x is number => x !== undefined);
        if (rss.length > 0) results.push({ name: `noop-run.${size.label}-files.peak-rss`, value: Number(Math.max(...rss).toFixed(1)), unit: 'MiB', detail: 'max over the timed runs (/usr/bin/time %M)' });
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    }
    return results;
  },
};

export default suite;
