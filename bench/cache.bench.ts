/**
 * Cache store throughput: ingesting a staged output directory (rename into
 * objects with fsync), ingesting workspace outs (copy), materialising them
 * (re-hash + copy), and `verify`. Sizes are small files, the worst case per
 * byte (fsync and metadata dominate).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CacheStore } from '../src/cache/store.js';
import type { BenchResult, BenchSuite } from './types.js';

function write(dir: string, n: number, tag: string): void {
  for (let i = 0; i < n; i++) {
    const d = path.join(dir, `d${i % 20}`);
    if (i < 20) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, `f${i}.bin`), `${tag} ${i} `.repeat(100));
  }
}

const suite: BenchSuite = {
  name: 'cache',
  async run({ quick, log }) {
    const n = quick ? 300 : 3000;
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-bench-'));
    try {
      const store = await CacheStore.open(path.join(root, 'cache'));
      const staging = await store.makeStagingDir();
      write(staging, n, 'staged');
      let t = performance.now();
      const m = await store.ingestDir(staging);
      const ingestDirS = (performance.now() - t) / 1000;
      const ws = path.join(root, 'ws');
      write(path.join(ws, 'outs'), n, 'user');
      t = performance.now();
      const r = await store.ingestPaths(ws, ['outs']);
      const ingestPathsS = (performance.now() - t) / 1000;
      if (!r.ok) throw new Error('ingestPaths failed');
      t = performance.now();
      const again = await store.ingestPaths(ws, ['outs']);
      const reingestS = (performance.now() - t) / 1000;
      if (!again.ok) throw new Error('ingestPaths failed');
      t = performance.now();
      const mat = await store.materialize(m, ws, 'out');
      const materializeS = (performance.now() - t) / 1000;
      if (!mat.ok) throw new Error('materialize failed');
      t = performance.now();
      const v = await store.verify();
      const verifyS = (performance.now() - t) / 1000;
      log(`${n} files: ingestDir ${ingestDirS.toFixed(2)} s, ingestPaths ${ingestPathsS.toFixed(2)} s (again ${reingestS.toFixed(2)} s), materialize ${materializeS.toFixed(2)} s (${mat.value.mode}), verify ${v.objects} objects ${verifyS.toFixed(2)} s; load ${os.loadavg()[0]!.toFixed(1)}`);
      const per = (s: number): number => Math.round((n / s) * 10) / 10;
      const res: BenchResult[] = [
        { name: 'cache.ingest-dir.files-per-s', value: per(ingestDirS), unit: 'files/s', detail: `${n} small staged files: hash, fsync, rename` },
        { name: 'cache.ingest-paths.files-per-s', value: per(ingestPathsS), unit: 'files/s', detail: `${n} small workspace files copied in` },
        { name: 'cache.ingest-paths-unchanged.files-per-s', value: per(reingestS), unit: 'files/s', detail: 'same files again: read + hash only' },
        { name: 'cache.materialize.files-per-s', value: per(materializeS), unit: 'files/s', detail: `re-hash + ${mat.value.mode}` },
        { name: 'cache.verify.objects-per-s', value: per(verifyS), unit: 'objects/s' },
      ];
      return res;
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  },
};

export default suite;
