/**
 * Dependency hashing figures (issue #2 "Figures"): a directory of 10,000 and
 * 100,000 small files; cold hash (no memo), and the no-op re-hash through the
 * memo, each in a fresh `node` process so wall time includes process start and
 * module loading, and RSS is the child's peak. The full `pipeline run` no-op
 * (config load, planning) is measured by the runner's engine-noop bench; this
 * isolates the storage layer's share.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchResult, BenchSuite } from './types.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hash-child.js');

interface ChildOut {
  hash: string;
  files: number;
  openMs: number;
  hashMs: number;
  saveMs: number;
  totalMs: number;
  sinceProcessStartMs: number;
  stats: { statted: number; hashed: number; hashedBytes: number; memoHits: number };
  maxRssMiB: number;
  cpuMs: number;
}

function runChild(ws: string, memo: string): { wallS: number; out: ChildOut } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [child, ws, 'data', memo], { encoding: 'utf8' });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`hash child failed: ${r.stderr}`);
  return { wallS, out: JSON.parse(r.stdout) as ChildOut };
}

function buildTree(root: string, n: number): void {
  const perDir = 500;
  for (let i = 0; i < n; i++) {
    const d = path.join(root, 'data', `d${Math.floor(i / perDir)}`, `e${Math.floor(i / 50) % 10}`);
    if (i % 50 === 0) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, `f${i}.txt`), `file ${i} `.repeat(20 + (i % 50)));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const suite: BenchSuite = {
  name: 'hash',
  async run({ quick, log }) {
    const results: BenchResult[] = [];
    const sizes = quick ? [{ n: 2000, label: '2k', goal: 0.3 }] : [
      { n: 10_000, label: '10k', goal: 0.3 },
      { n: 100_000, label: '100k', goal: 2 },
    ];
    for (const { n, label, goal } of sizes) {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), `hash-bench-${label}-`));
      try {
        const tb = Date.now();
        buildTree(root, n);
        log(`${label}: built ${n} files in ${((Date.now() - tb) / 1000).toFixed(1)} s`);
        // Files written in the last second are racy by design; wait them out like a real edit-then-run would.
        await new Promise((r) => setTimeout(r, 1100));
        const memo = path.join(root, 'cache', 'hash-memo.bin');
        const cold = runChild(root, memo);
        log(`${label} cold: wall ${cold.wallS.toFixed(3)} s, hashed ${cold.out.stats.hashed}, in-process ${cold.out.totalMs.toFixed(0)} ms, rss ${cold.out.maxRssMiB.toFixed(0)} MiB`);
        const warm = [0, 1, 2, 3, 4].map(() => runChild(root, memo));
        for (const w of warm) if (w.out.stats.hashed !== 0 || w.out.hash !== cold.out.hash) throw new Error('warm run re-hashed or changed hash');
        const wallS = median(warm.map((w) => w.wallS));
        const mid = warm.find((w) => w.wallS === wallS)!;
        log(`${label} warm: wall ${wallS.toFixed(3)} s (open ${mid.out.openMs.toFixed(0)} ms, stat+hash ${mid.out.hashMs.toFixed(0)} ms, save ${mid.out.saveMs.toFixed(0)} ms, node start→end ${mid.out.sinceProcessStartMs.toFixed(0)} ms), memo ${(fs.statSync(memo).size / 2 ** 20).toFixed(1)} MiB`);
        // One edited file (same size, as a typo fix would be): rehash 1 file, rewrite the memo.
        const edited = path.join(root, 'data', 'd0', 'e0', 'f0.txt');
        const body = fs.readFileSync(edited);
        body[0] = body[0] === 0x41 ? 0x42 : 0x41;
        fs.writeFileSync(edited, body);
        await new Promise((r) => setTimeout(r, 1100)); // past the racy window
        const edit = runChild(root, memo);
        if (edit.out.stats.hashed !== 1 || edit.out.hash === cold.out.hash) throw new Error(`edit run hashed ${edit.out.stats.hashed} files`);
        log(`${label} one edit: wall ${edit.wallS.toFixed(3)} s (save ${edit.out.saveMs.toFixed(0)} ms)`);
        const nodeOnly = median([0, 1, 2].map(() => {
          const t0 = process.hrtime.bigint();
          spawnSync(process.execPath, ['-e', '0']);
          return Number(process.hrtime.bigint() - t0) / 1e9;
        }));
        results.push(
          { name: `hash.${label}-files.cold.wall`, value: round(cold.wallS), unit: 's', detail: `${n} files, ${(cold.out.stats.hashedBytes / 2 ** 20).toFixed(0)} MiB, fresh process, no memo` },
          { name: `hash.${label}-files.cold.peak-rss`, value: round(cold.out.maxRssMiB, 1), unit: 'MiB' },
          { name: `hash.${label}-files.noop.wall`, value: round(wallS), unit: 's', goal: `<= ${goal} s (whole no-op run)`, met: wallS <= goal, detail: `median of 5 fresh processes incl. node start (bare node: ${nodeOnly.toFixed(3)} s); storage layer only` },
          { name: `hash.${label}-files.noop.in-process`, value: round(mid.out.totalMs / 1000), unit: 's', detail: 'memo load + stat walk + dir hash' },
          { name: `hash.${label}-files.noop.cpu`, value: round(mid.out.cpuMs / 1000), unit: 's', detail: `user+sys of the child incl. node start; load-independent (1-min load avg ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores)` },
          { name: `hash.${label}-files.noop.peak-rss`, value: round(mid.out.maxRssMiB, 1), unit: 'MiB' },
          { name: `hash.${label}-files.one-edit.wall`, value: round(edit.wallS), unit: 's', detail: '1 file re-hashed, memo rewritten (fsync)' },
        );
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    }
    return results;
  },
};

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export default suite;
