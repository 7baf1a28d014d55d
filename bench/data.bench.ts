/**
 * Data-stage benchmarks (issue 3): resize throughput against bare sharp on the
 * same JPEGs in the same run, the cost of adding 1% images to a 10k dataset
 * against a full run, and ingest throughput. Images are made here: real
 * Fashion-MNIST items upscaled to 500x375, tinted, with noise, JPEG quality 90
 * (falls back to synthetic gradients when the dataset is missing).
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import pLimit from 'p-limit';
import type { BenchResult, BenchSuite } from './types.js';
import type { StageContext, StageResult, BuiltinStage } from '../stages/types.js';
import { directoryItemCache } from '../src/cache/item-cache.js';
import { ingestParams, ingestStage } from '../stages/ingest.js';
import { RESIZE_CONCURRENCY, resizeParams, resizeStage } from '../stages/resize.js';
import { partitionParams, partitionStage } from '../stages/partition.js';
import { readIdxImageSet, FASHION_MNIST_CLASSES } from '../stages/lib/idx.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FMNIST = path.resolve(here, '..', '..', '..', 'shared', 'datasets', 'fashion-mnist');
const W = 500;
const H = 375;

/** Writes `count` distinct natural-ish JPEGs (ids from `start`) in class folders under `dir`. */
async function makeJpegs(dir: string, start: number, count: number): Promise<void> {
  const set = await readIdxImageSet(path.join(FMNIST, 'train-images-idx3-ubyte.gz'), path.join(FMNIST, 'train-labels-idx1-ubyte.gz'), 10);
  const limit = pLimit(4);
  await Promise.all(
    Array.from({ length: count }, (_, k) =>
      limit(async () => {
        const id = start + k;
        let s = (id * 2654435761) >>> 0 || 1;
        const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
        let cls = String(id % 10);
        let rgb: Buffer;
        if (set.ok) {
          const i = id % set.value.count;
          cls = FASHION_MNIST_CLASSES[set.value.labels[i]!]!;
          const up = await sharp(set.value.pixels.subarray(i * 784, (i + 1) * 784), { raw: { width: 28, height: 28, channels: 1 } })
            .resize(W, H, { fit: 'fill', kernel: 'cubic' })
            .toColourspace('srgb')
            .raw()
            .toBuffer();
          rgb = Buffer.from(up);
        } else {
          rgb = Buffer.alloc(W * H * 3);
          for (let p = 0; p < W * H; p++) rgb.fill(((p % W) + id) & 0xff, p * 3, p * 3 + 3);
        }
        const tint = [rnd(), rnd(), rnd()];
        for (let p = 0; p < rgb.length; p++) rgb[p] = Math.min(255, ((rgb[p]! * (128 + tint[p % 3]! / 2)) >> 8) + (rnd() >> 3));
        const file = path.join(dir, cls, `img-${String(id).padStart(6, '0')}.jpg`);
        await fs.mkdir(path.dirname(file), { recursive: true });
        await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
      }),
    ),
  );
}

function context<P>(root: string, name: string, params: P, inputs: Record<string, string>): StageContext<P> {
  const outDir = path.join(root, 'out', `${name}-${Math.random().toString(36).slice(2)}`);
  fss.mkdirSync(outDir, { recursive: true });
  return {
    stageId: name,
    params,
    inputs,
    outDir,
    workspace: root,
    items: directoryItemCache(path.join(root, 'cache', 'items', name)),
    cacheDir: path.join(root, 'cache'),
    seed: 0,
    log: { info() {}, warn() {}, progress() {} },
    signal: new AbortController().signal,
  };
}

async function timed<P>(stage: BuiltinStage<P>, ctx: StageContext<P>): Promise<{ s: number; result: StageResult }> {
  const t = performance.now();
  const result = await stage.run(ctx);
  return { s: (performance.now() - t) / 1000, result };
}

async function bareSharp(files: readonly string[], concurrency: number): Promise<number> {
  const limit = pLimit(concurrency);
  const t = performance.now();
  await Promise.all(files.map((f) => limit(() => sharp(f).autoOrient().resize(224, 224, { fit: 'cover' }).raw().toBuffer())));
  return files.length / ((performance.now() - t) / 1000);
}

async function listJpegs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const c of (await fs.readdir(dir)).sort()) for (const f of (await fs.readdir(path.join(dir, c))).sort()) out.push(path.join(dir, c, f));
  return out;
}

const suite: BenchSuite = {
  name: 'data',
  async run({ quick, log }) {
    const results: BenchResult[] = [];
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-data-'));
    try {
      // --- resize vs bare sharp on the same 2,000 JPEGs ---
      const n = quick ? 200 : 2000;
      const src = path.join(root, 'jpegs');
      let t = performance.now();
      await makeJpegs(src, 0, n);
      log(`made ${n} JPEGs ${W}x${H} q90 in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const files = await listJpegs(src);
      // Warm the page cache and sharp once.
      await bareSharp(files.slice(0, 50), 2);
      const bare: Record<number, number> = {};
      for (const c of [1, 2, 4, 8]) {
        bare[c] = await bareSharp(files, c);
        log(`bare sharp, ${c} in flight: ${bare[c]!.toFixed(0)} img/s`);
      }
      const bestBare = Math.max(...Object.values(bare));

      const ing = context(root, 'ingest', ingestParams({ source: 'jpegs' }), {});
      const ingestRun = await timed(ingestStage, ing);
      const ingestRate = n / ingestRun.s;
      results.push({ name: 'ingest.files-per-s', value: Math.round(ingestRate), unit: 'files/s', detail: `${n} JPEGs ${W}x${H}, fresh probe memo (read + sha256 + sharp header + shrink-on-load decode)` });
      const ing2 = context(root, 'ingest', ingestParams({ source: 'jpegs' }), {});
      const ingestWarm = await timed(ingestStage, ing2);
      results.push({ name: 'ingest.files-per-s.memoised', value: Math.round(n / ingestWarm.s), unit: 'files/s', detail: 'same files again (read + sha256, probes memoised)' });

      const rz = context(root, 'resize', resizeParams({}), { ingest: ing.outDir });
      const resizeRun = await timed(resizeStage, rz);
      const stageRate = n / resizeRun.s;
      log(`resize stage (${RESIZE_CONCURRENCY} in flight, fresh cache): ${stageRate.toFixed(0)} img/s`);
      results.push({ name: 'resize.img-per-s', value: Math.round(stageRate), unit: 'img/s', detail: `${n} JPEGs ${W}x${H} -> 224x224x3 cover lanczos3, fresh item cache, shards written` });
      results.push({ name: 'resize.bare-sharp.img-per-s', value: Math.round(bestBare), unit: 'img/s', detail: `best of 1/2/4/8 in flight: ${[1, 2, 4, 8].map((c) => `${c}: ${bare[c]!.toFixed(0)}`).join(', ')}` });
      results.push({ name: 'resize.vs-bare-sharp', value: +(stageRate / bestBare).toFixed(3), unit: 'ratio', goal: '>= 0.9', met: stageRate / bestBare >= 0.9 });

      // --- adding 1% to a 10k dataset ---
      const big = quick ? 1000 : 10000;
      const add = big / 100;
      const bigSrc = path.join(root, 'big');
      await fs.rm(path.join(root, 'cache'), { recursive: true, force: true });
      t = performance.now();
      await makeJpegs(bigSrc, 100000, big);
      log(`made ${big} JPEGs in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const chain = async () => {
        const i = await timed(ingestStage, context(root, 'ingest', ingestParams({ source: 'big' }), {}));
        const inputs = { ingest: path.join(root, 'out', fss.readdirSync(path.join(root, 'out')).find((d) => d.startsWith('ingest-') && fss.existsSync(path.join(root, 'out', d, 'manifest.jsonl')) && fss.statSync(path.join(root, 'out', d, 'manifest.jsonl')).mtimeMs >= Date.now() - i.s * 1000 - 1000)!) };
        const r = await timed(resizeStage, context(root, 'resize', resizeParams({}), inputs));
        const p = await timed(partitionStage, context(root, 'partition', partitionParams({}), inputs));
        return { ingest: i.s, resize: r.s, partition: p.s, total: i.s + r.s + p.s, resized: r.result.metrics?.['resized'] };
      };
      const full = await chain();
      log(`full run ${big}: ingest ${full.ingest.toFixed(2)} s, resize ${full.resize.toFixed(2)} s, partition ${full.partition.toFixed(2)} s`);
      await makeJpegs(bigSrc, 100000 + big, add);
      const inc = await chain();
      log(`+${add} images: ingest ${inc.ingest.toFixed(2)} s, resize ${inc.resize.toFixed(2)} s (${inc.resized} resized), partition ${inc.partition.toFixed(2)} s`);
      results.push({ name: 'incremental.add-1pct.resize', value: +(inc.resize / full.resize).toFixed(4), unit: 'ratio', goal: '<= 0.03', met: inc.resize / full.resize <= 0.03, detail: `resize stage: ${inc.resize.toFixed(2)} s vs ${full.resize.toFixed(2)} s full (${big} -> ${big + add} images, ${inc.resized} resized)` });
      results.push({ name: 'incremental.add-1pct.data-stages', value: +(inc.total / full.total).toFixed(4), unit: 'ratio', goal: '<= 0.03', met: inc.total / full.total <= 0.03, detail: `ingest+resize+partition: ${inc.total.toFixed(2)} s vs ${full.total.toFixed(2)} s full` });
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
    return results;
  },
};

export default suite;
