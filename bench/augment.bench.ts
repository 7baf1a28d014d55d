/**
 * Augment throughput: Keras seed-recipe variants of 224x224 RGB images per
 * second, (1) the pure transform on the main thread, (2) through the 2-worker
 * pool, (3) the whole stage end to end (shard read, item-cache writes, shard
 * write, preview) on a fresh cache, and (4) its rerun served from the cache.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { BenchResult, BenchSuite } from './types.js';
import { applyTransform } from '../stages/lib/augment/apply.js';
import { resolveAugmentParams, type AugmentParams } from '../stages/lib/augment/params.js';
import { getRandomTransform } from '../stages/lib/augment/random-transform.js';
import { variantRandom } from '../stages/lib/augment/rng.js';
import { workerRunner } from '../stages/lib/augment/pool.js';
import { ShardWriter } from '../stages/lib/shards.js';
import { PARTITION_FILE } from '../stages/lib/splits.js';
import { augmentStage } from '../stages/augment.js';
import { directoryItemCache } from '../src/cache/item-cache.js';

const RECIPE: AugmentParams = {
  rotation_range: 15,
  width_shift_range: 0.15,
  height_shift_range: 0.15,
  shear_range: 0.15,
  zoom_range: 0.15,
  channel_shift_range: 1,
  horizontal_flip: true,
};
const SHAPE = { height: 224, width: 224, channels: 3 } as const;
const GOAL = 200;

function image(i: number): Uint8Array {
  const px = new Uint8Array(SHAPE.height * SHAPE.width * 3);
  for (let p = 0; p < px.length; p++) px[p] = (p * 31 + i * 17 + ((p >> 9) & 63)) & 255;
  return px;
}

const suite: BenchSuite = {
  name: 'augment',
  async run({ quick, log }) {
    const n = quick ? 200 : 1000;
    const sources = Array.from({ length: 16 }, (_, i) => image(i));
    const config = resolveAugmentParams(RECIPE).config;
    const params = Array.from({ length: n }, (_, i) => getRandomTransform(config, 224, 224, variantRandom(1, `bench-${i}`, 0)));
    const results: BenchResult[] = [];

    const scratch = new Float32Array(224 * 224 * 3); // as the inline runner and each worker keep one
    for (let i = 0; i < 20; i++) applyTransform(sources[i % 16]!, SHAPE, params[i]!, config, scratch); // warm-up
    const load = `load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores at start`;
    let t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) applyTransform(sources[i % 16]!, SHAPE, params[i]!, config, scratch);
    const cpu = process.cpuUsage(cpu0);
    const single = n / ((performance.now() - t0) / 1000);
    const perCpu = n / ((cpu.user + cpu.system) / 1e6);
    log(`single thread: ${n} images in ${((n / single) * 1000).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU; ${load}`);
    results.push({ name: 'augment.224.single-thread', value: Math.round(single), unit: 'img/s', goal: `>= ${GOAL} img/s`, met: single >= GOAL, detail: `seed recipe params, pure applyTransform, wall clock; ${load}` });
    results.push({ name: 'augment.224.single-thread-cpu', value: Math.round(perCpu), unit: 'img/s', detail: 'same run, images per second of this thread\'s CPU time (insensitive to other load)' });

    const threads = Math.min(2, os.availableParallelism());
    const pool = workerRunner(threads);
    try {
      await Promise.all(Array.from({ length: 8 }, (_, i) => pool.run(sources[i]!, SHAPE, params[i]!, config)));
      t0 = performance.now();
      const cpuPool0 = process.cpuUsage();
      const inFlight: Promise<Uint8Array>[] = [];
      for (let i = 0; i < n; i++) {
        inFlight.push(pool.run(sources[i % 16]!, SHAPE, params[i]!, config));
        if (inFlight.length >= 16) await inFlight.shift();
      }
      await Promise.all(inFlight);
      const cpuPool = process.cpuUsage(cpuPool0);
      log(`workers: ${n} images, ${((cpuPool.user + cpuPool.system) / 1000 / n).toFixed(2)} ms CPU per image over all threads (includes copies and messages)`);
    } finally {
      await pool.close();
    }
    const pooled = n / ((performance.now() - t0) / 1000);
    results.push({ name: 'augment.224.workers', value: Math.round(pooled), unit: 'img/s', goal: `>= ${GOAL} img/s`, met: pooled >= GOAL, detail: `${threads} worker threads, 16 in flight; load average ${os.loadavg()[0]!.toFixed(1)} at end` });

    // Whole stage, fresh item cache then a rerun served from it.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'augment-bench-'));
    try {
      const count = quick ? 200 : 1000;
      const resize = path.join(dir, 'resize');
      const partition = path.join(dir, 'partition');
      const writer = new ShardWriter(resize, { ...SHAPE, classes: ['a', 'b'] });
      const assignments: Record<string, string> = {};
      for (let i = 0; i < count; i++) {
        const sha = createHash('sha256').update(`img-${i}`).digest('hex');
        writer.add(sha, sha, i % 2, sources[i % 16]!);
        assignments[sha] = 'train';
      }
      writer.close();
      await fs.mkdir(partition, { recursive: true });
      await fs.writeFile(path.join(partition, PARTITION_FILE), JSON.stringify({ format: 'pipeline.partition/v1', salt: '', ratios: [1, 0, 0], assignments, counts: { train: {}, validation: {}, test: {} } }));
      const runStage = async (name: string): Promise<number> => {
        const outDir = path.join(dir, name);
        await fs.mkdir(outDir);
        const start = performance.now();
        await augmentStage.run({
          stageId: 'augment',
          params: RECIPE,
          inputs: { resize, partition },
          outDir,
          workspace: dir,
          items: directoryItemCache(path.join(dir, 'items')),
          cacheDir: dir,
          seed: 1,
          log: { info: () => {}, warn: () => {}, progress: () => {} },
          signal: new AbortController().signal,
        });
        return count / ((performance.now() - start) / 1000);
      };
      const cold = await runStage('cold');
      const warm = await runStage('warm');
      results.push({ name: 'augment.224.stage-cold', value: Math.round(cold), unit: 'img/s', goal: `>= ${GOAL} img/s`, met: cold >= GOAL, detail: `${count} train images, copies 1, fresh item cache (includes cache writes, shard write, preview)` });
      results.push({ name: 'augment.224.stage-cached-rerun', value: Math.round(warm), unit: 'img/s', detail: `${count} train images, all variants from the item cache` });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    return results;
  },
};

export default suite;
