/**
 * Feature-extraction and training-kernel benchmarks for the compute layer.
 *
 * Side by side in one run (MobileNetV2 at 224, batch 32, the bundled nsfwjs
 * weights cut at `out_relu`):
 *   (a) fused inference (`stages/ml/fuse.ts`) on wasm with 1 and 2 threads,
 *   (b) raw tfjs-wasm `model.predict` on the same LayersModel, same threads,
 *   (c) PyTorch CPU (torchvision mobilenet_v2 `.features`, random weights,
 *       tcmalloc preloaded, 2 threads, inference_mode) when `python3` or
 *       `/usr/bin/python3` can import torch and torchvision; skipped otherwise.
 * Plus one training step of a small CNN (conv+BN+ReLU+pool ×2, dropout,
 * dense) on wasm and on the pure-JS cpu backend.
 *
 * The wasm thread count is fixed per process, so each configuration runs in
 * a child process (this same file, run with `--child <json>`). Within a child
 * the (a) and (b) rounds alternate, so background load hits both alike; the
 * machine's load average is reported with each figure.
 *
 * This module does NOT assert anything (speed goals are reported, never
 * tested) and does not download weights.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { BenchResult, BenchSuite } from './types.js';

const run = promisify(execFile);
const selfPath = fileURLToPath(import.meta.url);

/** What a child process is asked to measure. */
type ChildJob =
  | { readonly mode: 'extract'; readonly threads: number; readonly batch: number; readonly rounds: number }
  | { readonly mode: 'train'; readonly backend: 'wasm' | 'cpu'; readonly threads: number; readonly batch: number; readonly steps: number };

/** What a child prints (one JSON line). Rates are img/s of wall time; `*Cpu` are img per CPU-second (all threads). */
interface ChildResult {
  readonly fused?: number;
  readonly raw?: number;
  readonly train?: number;
  readonly fusedCpu?: number;
  readonly rawCpu?: number;
  readonly trainCpu?: number;
  readonly threads: number;
  readonly load: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function child(job: ChildJob): Promise<ChildResult> {
  const { initBackend } = await import('../stages/ml/backend.js');
  const r = await initBackend({ device: 'cpu', backend: job.mode === 'train' ? job.backend : 'wasm', threads: job.threads });
  if (!r.ok) throw new Error(r.error.message);
  const { tf, choice } = r.value;
  if (job.mode === 'extract') {
    const { loadBundledBackbone } = await import('../stages/ml/bundled.js');
    const { compileInference } = await import('../stages/ml/fuse.js');
    const bb = await loadBundledBackbone(tf, 'mobilenet_v2');
    const fused = compileInference(bb.model);
    const x = tf.randomUniform([job.batch, 224, 224, 3], 0, 1, 'float32', 1) as import('@tensorflow/tfjs').Tensor4D;
    const time = (f: () => import('@tensorflow/tfjs').Tensor): [number, number] => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const y = f();
      y.dataSync();
      y.dispose();
      const c = process.cpuUsage(c0);
      return [(job.batch * 1000) / (performance.now() - t0), (job.batch * 1e6) / (c.user + c.system)];
    };
    const fusedRun = () => fused.predict(x);
    const rawRun = () => bb.model.predict(x) as import('@tensorflow/tfjs').Tensor;
    time(fusedRun);
    time(rawRun);
    const a: [number, number][] = [];
    const b: [number, number][] = [];
    for (let i = 0; i < job.rounds; i++) {
      a.push(time(fusedRun));
      b.push(time(rawRun));
    }
    return {
      fused: median(a.map((r) => r[0])),
      raw: median(b.map((r) => r[0])),
      fusedCpu: median(a.map((r) => r[1])),
      rawCpu: median(b.map((r) => r[1])),
      threads: choice.threads,
      load: os.loadavg()[0]!,
    };
  }
  const L = tf.layers;
  const model = tf.sequential({
    layers: [
      L.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, padding: 'same' }),
      L.batchNormalization(),
      L.activation({ activation: 'relu' }),
      L.maxPooling2d({ poolSize: 2 }),
      L.conv2d({ filters: 64, kernelSize: 3, padding: 'same' }),
      L.batchNormalization(),
      L.activation({ activation: 'relu' }),
      L.maxPooling2d({ poolSize: 2 }),
      L.dropout({ rate: 0.25 }),
      L.flatten(),
      L.dense({ units: 128, activation: 'relu' }),
      L.dropout({ rate: 0.5 }),
      L.dense({ units: 10, activation: 'softmax' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const x = tf.randomUniform([job.batch, 28, 28, 1], 0, 1, 'float32', 2);
  const y = tf.oneHot(tf.randomUniform([job.batch], 0, 10, 'int32', 3), 10);
  await model.trainOnBatch(x, y);
  const rates: number[] = [];
  const cpuRates: number[] = [];
  for (let i = 0; i < job.steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await model.trainOnBatch(x, y);
    const c = process.cpuUsage(c0);
    rates.push((job.batch * 1000) / (performance.now() - t0));
    cpuRates.push((job.batch * 1e6) / (c.user + c.system));
  }
  return { train: median(rates), trainCpu: median(cpuRates), threads: choice.threads, load: os.loadavg()[0]! };
}

async function spawnChild(job: ChildJob): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, [selfPath, '--child', JSON.stringify(job)], { maxBuffer: 1 << 20, timeout: 20 * 60_000 });
  const line = stdout.trim().split('\n').at(-1)!;
  return JSON.parse(line) as ChildResult;
}

const TORCH_SCRIPT = `
import sys, time, json, os, torch, torchvision
torch.set_num_threads(2)
batch, rounds = int(sys.argv[1]), int(sys.argv[2])
m = torchvision.models.mobilenet_v2().features.eval()
x = torch.rand(batch, 3, 224, 224)
with torch.inference_mode():
    m(x)
    r, c = [], []
    for _ in range(rounds):
        t, p = time.perf_counter(), time.process_time(); m(x)
        r.append(batch / (time.perf_counter() - t)); c.append(batch / (time.process_time() - p))
r.sort(); c.sort()
print(json.dumps({"torch": r[len(r)//2], "torchCpu": c[len(c)//2], "version": torch.__version__, "load": os.getloadavg()[0]}))
`;

async function torchImgPerSec(batch: number, rounds: number, log: (l: string) => void): Promise<{ rate: number; cpuRate: number; detail: string } | undefined> {
  // A pyenv/venv `python3` on PATH may hide Debian's python3-torch; try the system interpreter too.
  let python: string | undefined;
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      await run(candidate, ['-c', 'import torch, torchvision'], { timeout: 120_000 });
      python = candidate;
      break;
    } catch {
      // try the next interpreter
    }
  }
  if (python === undefined) {
    log('torch: no python3 with torch+torchvision, skipping (apt-get install python3-torch python3-torchvision libtcmalloc-minimal4)');
    return undefined;
  }
  const tcmalloc = ['/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4', '/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4'].find((p) => existsSync(p));
  const env = { ...process.env, ...(tcmalloc ? { LD_PRELOAD: tcmalloc } : {}) };
  const { stdout } = await run(python, ['-c', TORCH_SCRIPT, String(batch), String(rounds)], { env, timeout: 20 * 60_000 });
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { torch: number; torchCpu: number; version: string; load: number };
  return { rate: r.torch, cpuRate: r.torchCpu, detail: `torch ${r.version}, 2 threads, ${tcmalloc ? 'tcmalloc' : 'NO tcmalloc (libtcmalloc-minimal4 missing)'}, load ${r.load.toFixed(1)}` };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;
const round3 = (v: number): number => Math.round(v * 1000) / 1000;

const suite: BenchSuite = {
  name: 'features',
  async run({ quick, log }) {
    const batch = 32;
    const rounds = quick ? 2 : 5;
    const results: BenchResult[] = [];
    const extract: Record<number, ChildResult> = {};
    for (const threads of [1, 2]) {
      const r = await spawnChild({ mode: 'extract', threads, batch, rounds });
      extract[threads] = r;
      log(
        `mobilenet_v2 b${batch} wasm ${r.threads}t: fused ${r.fused!.toFixed(1)} img/s (${r.fusedCpu!.toFixed(1)} img/cpu-s), raw model.predict ${r.raw!.toFixed(1)} img/s (${r.rawCpu!.toFixed(1)} img/cpu-s) (load ${r.load.toFixed(1)})`,
      );
      results.push({ name: `mobilenet_v2.224.b${batch}.fused.wasm-${threads}t.per-cpu-second`, value: round1(r.fusedCpu!), unit: 'img/cpu-s', detail: 'images per CPU-second of all threads: robust to background load' });
      results.push({ name: `mobilenet_v2.224.b${batch}.raw-predict.wasm-${threads}t.per-cpu-second`, value: round1(r.rawCpu!), unit: 'img/cpu-s' });
      results.push({ name: `mobilenet_v2.224.b${batch}.fused.wasm-${threads}t`, value: round1(r.fused!), unit: 'img/s', detail: `pool ${r.threads} threads, load ${r.load.toFixed(1)}` });
      results.push({ name: `mobilenet_v2.224.b${batch}.raw-predict.wasm-${threads}t`, value: round1(r.raw!), unit: 'img/s', detail: `pool ${r.threads} threads, load ${r.load.toFixed(1)}` });
      results.push({
        name: `mobilenet_v2.fused-vs-raw.wasm-${threads}t`,
        value: round3(r.fused! / r.raw!),
        unit: 'ratio',
        goal: '>= 0.9',
        met: r.fused! / r.raw! >= 0.9,
      });
    }
    const speedup = extract[2]!.fused! / extract[1]!.fused!;
    results.push({ name: 'mobilenet_v2.fused.threads-2-vs-1', value: round3(speedup), unit: 'ratio', detail: 'picks the default wasm thread count (defaultWasmThreads)' });
    const best = Math.max(extract[1]!.fused!, extract[2]!.fused!);
    const torch = await torchImgPerSec(batch, rounds, log);
    if (torch !== undefined) {
      log(`torch mobilenet_v2.features b${batch}: ${torch.rate.toFixed(1)} img/s (${torch.detail})`);
      results.push({ name: `mobilenet_v2.224.b${batch}.torch-cpu`, value: round1(torch.rate), unit: 'img/s', detail: torch.detail });
      results.push({ name: 'mobilenet_v2.fused-wasm-vs-torch', value: round3(best / torch.rate), unit: 'ratio', goal: '>= 0.6', met: best / torch.rate >= 0.6 });
      results.push({ name: `mobilenet_v2.224.b${batch}.torch-cpu.per-cpu-second`, value: round1(torch.cpuRate), unit: 'img/cpu-s' });
      const bestCpu = Math.max(extract[1]!.fusedCpu!, extract[2]!.fusedCpu!);
      results.push({ name: 'mobilenet_v2.fused-wasm-vs-torch.per-cpu-second', value: round3(bestCpu / torch.cpuRate), unit: 'ratio', detail: 'CPU-time efficiency, robust to background load' });
    }
    for (const [backend, threads, steps, trainBatch] of [
      ['wasm', 1, quick ? 2 : 5, 64],
      ['wasm', 2, quick ? 2 : 5, 64],
      // The pure-JS backend needs minutes per batch of 64; a smaller batch measures the same img/s sooner.
      ['cpu', 1, 1, 16],
    ] as const) {
      const r = await spawnChild({ mode: 'train', backend, threads, batch: trainBatch, steps });
      log(`small CNN train step b${trainBatch} on ${backend} ${r.threads}t: ${r.train!.toFixed(1)} img/s, ${r.trainCpu!.toFixed(1)} img/cpu-s (load ${r.load.toFixed(1)})`);
      results.push({
        name: `small-cnn.28x28.train-step.b${trainBatch}.${backend}-${r.threads}t`,
        value: round1(r.train!),
        unit: 'img/s',
        detail: `conv32+BN+relu+pool, conv64+BN+relu+pool, dense128, Adam; load ${r.load.toFixed(1)}`,
      });
      results.push({ name: `small-cnn.28x28.train-step.b${trainBatch}.${backend}-${r.threads}t.per-cpu-second`, value: round1(r.trainCpu!), unit: 'img/cpu-s' });
    }
    return results;
  },
};

export default suite;

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url && process.argv[2] === '--child') {
  const out = await child(JSON.parse(process.argv[3]!) as ChildJob);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
