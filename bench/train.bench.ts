/**
 * Training benchmarks (issue 4 figures):
 *
 * 1. Head training on cached features vs the seed's way. One epoch over 10k
 *    samples at batch 64 of the seed's head (BN → Dropout → Dense 128 → BN →
 *    Dropout → softmax) on 1280-d MobileNetV2 features, against the same head
 *    stacked on the frozen bundled MobileNetV2 at 224x224 (the backbone runs in
 *    the training graph for every batch, as in the seed). The seed's way is
 *    measured over a few steps and extrapolated to the epoch (stated in the
 *    detail). Goal: >= 20x faster.
 * 2. Training throughput of the Fashion-MNIST model (pipelines/fashion-mnist.yaml's
 *    defaults: simple_cnn filters [32, 64], one conv per block, dense 128 head) on
 *    28x28x1 batches of 128 through the fast training executor: samples/s (wall)
 *    and samples per CPU-second (process CPU time, all threads; the figure that
 *    survives a loaded machine), with the fused JS kernels and, in the same run,
 *    without them (the tf-op paths, as before the fused kernels).
 * 3. Full Fashion-MNIST through pipelines/fashion-mnist.yaml in a fresh temp
 *    workspace and cache (cold run): wall time and test accuracy. Opt-in
 *    (`--full-fmnist` or BENCH_FULL_FMNIST=1): it takes tens of minutes.
 *
 * Nothing here is asserted; figures go to BENCHMARKS.md.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type * as tfjs from '@tensorflow/tfjs';
import type { BenchResult, BenchSuite } from './types.js';
import { initBackend } from '../stages/ml/backend.js';
import { loadBackbone, type Tf } from '../stages/ml/backbones/registry.js';
import { buildHead, SEED_HEAD } from '../stages/ml/head.js';
import { runPhase, type LoopOptions } from '../stages/ml/trainer.js';
import { compileFastGraph } from '../stages/ml/fast-graph.js';
import { buildSmallCnn } from '../stages/ml/small-cnn.js';
import { stackModel } from '../stages/ml/head.js';
import { mulberry32, type SampleSet } from '../stages/ml/dataset.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function randomSet(n: number, len: number, classes: number, seed: number, scale: number): SampleSet {
  const rnd = mulberry32(seed);
  const data = new Float32Array(n * len);
  for (let i = 0; i < data.length; i++) data[i] = rnd() * scale;
  const labels = Int32Array.from({ length: n }, () => Math.floor(rnd() * classes));
  return {
    size: n,
    labels,
    sampleLength: len,
    gather(idx) {
      const out = new Float32Array(idx.length * len);
      for (let k = 0; k < idx.length; k++) out.set(data.subarray(idx[k]! * len, (idx[k]! + 1) * len), k * len);
      return out;
    },
  };
}

const LOOP: Omit<LoopOptions, 'batchSize'> = {
  lrSchedule: { type: 'none', gamma: 0.1, step_size: 10, min_lr: 0 },
  earlyStopping: { monitor: 'loss', patience: 0, restore_best: false, min_delta: 0 },
  labelSmoothing: 0,
  numClasses: 10,
  seed: 0,
};

const quietHooks = { signal: new AbortController().signal, progress: () => undefined, info: () => undefined, onEpoch: async () => undefined };

async function headVsSeed(tf: Tf, quick: boolean, log: (l: string) => void): Promise<BenchResult[]> {
  const n = quick ? 2000 : 10000;
  const batch = 64;
  const steps = Math.ceil(n / batch);
  // Cached features: the head alone.
  const head = buildHead(tf, 1280, 10, SEED_HEAD, 0);
  const feats = randomSet(n, 1280, 10, 1, 6);
  const t0 = performance.now();
  await runPhase(
    tf,
    { kind: 'head', index: 0, model: head, train: feats, toInput: (b, k) => tf.tensor2d(b, [k, 1280]), epochs: 1, lr: 1e-3, optimizer: tf.train.adam(1e-3) },
    { ...LOOP, batchSize: batch },
    { phase: 0, nextEpoch: 0, history: [], sinceBest: 0, stopped: false },
    quietHooks,
  );
  const cachedEpoch = (performance.now() - t0) / 1000;
  log(`head on cached features: ${n} samples, batch ${batch}: ${cachedEpoch.toFixed(2)} s/epoch`);

  // The seed's way: frozen backbone in the training graph.
  const bb = await loadBackbone(tf, 'mobilenet_v2', { weights: 'bundled', cacheDir: path.join(os.tmpdir(), 'bench-train-cache') });
  if (!bb.ok) throw new Error(bb.error.message);
  bb.value.model.trainable = false;
  const head2 = buildHead(tf, 1280, 10, SEED_HEAD, 0);
  const pooled = tf.model({ inputs: bb.value.model.inputs, outputs: tf.layers.globalAveragePooling2d({}).apply(bb.value.model.outputs[0]!) as tfjs.SymbolicTensor });
  const measureSteps = quick ? 2 : 4;
  const pixels = randomSet(batch * (measureSteps + 1), 224 * 224 * 3, 10, 2, 255);
  // As Keras runs it: the frozen backbone's plain layers forward on every batch (no gradient through it), then the head step.
  const toPixels = (b: Float32Array, k: number): tfjs.Tensor => tf.tidy(() => pooled.predict(tf.div(tf.tensor4d(b, [k, 224, 224, 3]), 255)) as tfjs.Tensor);
  // One warm-up step, then the measured ones.
  const phase = { kind: 'full' as const, index: 0, model: head2, train: pixels, toInput: toPixels, epochs: 1, lr: 1e-3, optimizer: tf.train.adam(1e-3) };
  await runPhase(tf, phase, { ...LOOP, batchSize: batch, stepsPerEpoch: 1 }, { phase: 0, nextEpoch: 0, history: [], sinceBest: 0, stopped: false }, quietHooks);
  const t1 = performance.now();
  await runPhase(tf, phase, { ...LOOP, batchSize: batch, stepsPerEpoch: measureSteps }, { phase: 0, nextEpoch: 0, history: [], sinceBest: 0, stopped: false }, quietHooks);
  const perStep = (performance.now() - t1) / 1000 / measureSteps;
  const seedEpoch = perStep * steps;
  log(`seed's way (frozen MobileNetV2 224 in the graph): ${perStep.toFixed(2)} s/step x ${steps} steps = ${seedEpoch.toFixed(0)} s/epoch (extrapolated from ${measureSteps} steps)`);
  pooled.dispose();
  head.dispose();
  const ratio = seedEpoch / cachedEpoch;
  return [
    { name: 'head-train.cached-features.epoch', value: cachedEpoch, unit: 's', detail: `${n} samples, 1280-d, batch ${batch}, seed head` },
    { name: 'head-train.seed-way.epoch', value: seedEpoch, unit: 's', detail: `frozen bundled MobileNetV2 224 in the graph; ${perStep.toFixed(2)} s/step measured over ${measureSteps} steps, x ${steps} steps` },
    { name: 'head-train.speedup', value: ratio, unit: 'ratio', goal: '>= 20x', met: ratio >= 20 },
  ];
}

/** Steps/s of the Fashion-MNIST model with and without the fused kernels (see module doc, figure 2). */
async function fashionMnistThroughput(tf: Tf, quick: boolean, log: (l: string) => void): Promise<BenchResult[]> {
  const batch = 128;
  const steps = quick ? 4 : 12;
  const bb = buildSmallCnn(tf, { filters: [32, 64], convs_per_block: 1, dropout: 0.1 }, [28, 28, 1], 0);
  const head = buildHead(tf, 7 * 7 * 64, 10, [{ type: 'dense', units: 128, activation: 'relu' }, { type: 'dropout', rate: 0.3 }], 0);
  const model = stackModel(tf, bb, head, undefined);
  const vars = model.trainableWeights.map((w) => w.read() as tfjs.Variable);
  const pixels = randomSet(batch, 28 * 28, 10, 3, 255);
  const x = tf.tidy(() => tf.div(tf.tensor4d(pixels.gather(Array.from({ length: batch }, (_, i) => i)), [batch, 28, 28, 1]), 255));
  const y = tf.oneHot(tf.tensor1d(pixels.labels, 'int32'), 10);
  const results: BenchResult[] = [];
  const perCpu: Record<string, number> = {};
  for (const fused of [true, false]) {
    const graph = compileFastGraph(tf, model, { fusedKernels: fused });
    const opt = tf.train.adam(1e-3);
    const step = async (s: number): Promise<void> => {
      const loss = tf.tidy(() => opt.minimize(() => tf.losses.softmaxCrossEntropy(y, graph.forward(x, { training: true, logits: true, seed: s })) as tfjs.Scalar, true, vars)!);
      await loss.data();
      loss.dispose();
    };
    for (let s = 0; s < 2; s++) await step(s); // warm-up (JIT, XNNPACK packing)
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await step(s);
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    opt.dispose();
    const name = fused ? 'fused' : 'tf-ops';
    perCpu[name] = (steps * batch) / cpu;
    log(`fashion-mnist model, ${name}: ${((steps * batch) / wall).toFixed(0)} samples/s wall, ${perCpu[name]!.toFixed(0)} samples per CPU-s (${steps} steps of ${batch})`);
    results.push(
      { name: `fashion-mnist.train.${name}.samples-per-s`, value: (steps * batch) / wall, unit: 'samples/s', detail: `simple_cnn [32,64] x1 + dense 128, batch ${batch}, ${steps} steps, wall` },
      { name: `fashion-mnist.train.${name}.samples-per-cpu-s`, value: perCpu[name]!, unit: 'samples/cpu-s', detail: 'process CPU time (all threads)' },
    );
  }
  results.push({ name: 'fashion-mnist.train.fused-speedup-cpu', value: perCpu['fused']! / perCpu['tf-ops']!, unit: 'ratio', detail: 'samples per CPU-s, fused kernels / tf-op paths' });
  x.dispose();
  y.dispose();
  model.dispose();
  return results;
}

/** CPU seconds of waited-for child processes (Linux /proc/self/stat cutime + cstime at 100 ticks/s), or undefined elsewhere. */
async function childrenCpuSeconds(): Promise<number | undefined> {
  try {
    const stat = await fs.readFile('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return undefined;
  }
}

async function fullFashionMnist(log: (l: string) => void): Promise<BenchResult[]> {
  const ws = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-fmnist-'));
  try {
    await fs.mkdir(path.join(ws, 'pipelines'));
    await fs.symlink(path.join(repoRoot, 'scripts'), path.join(ws, 'scripts'));
    await fs.copyFile(path.join(repoRoot, 'pipelines', 'fashion-mnist.yaml'), path.join(ws, 'pipelines', 'fashion-mnist.yaml'));
    const source = path.resolve(repoRoot, '..', 'shared', 'datasets', 'fashion-mnist');
    const t0 = performance.now();
    const cpu0 = await childrenCpuSeconds();
    const load0 = os.loadavg()[0]!;
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'pipeline.js'), 'run', 'fashion-mnist.yaml', '-S', `source=${source}`], { cwd: path.join(ws, 'pipelines'), stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (b: Buffer) => b.toString().split('\n').filter((l) => /^(✓|✗)|epoch \d+\/\d+:/.test(l)).forEach(log));
      child.on('exit', resolve);
    });
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = await childrenCpuSeconds();
    const load = `load average ${load0.toFixed(1)} at start, ${os.loadavg().map((l) => l.toFixed(1)).join('/')} (1/5/15 min) at the end`;
    if (code !== 0) throw new Error(`fashion-mnist pipeline exited with ${code}`);
    const m = JSON.parse(await fs.readFile(path.join(ws, 'pipelines', 'out', 'evaluate', 'metrics.json'), 'utf8')) as { accuracy: number };
    return [
      { name: 'fashion-mnist.full.wall', value: wall / 60, unit: 'min', goal: '<= 30 min', met: wall <= 1800, detail: `cold run: convert 70k PNGs, ingest, resize, partition, train, evaluate; ${load}` },
      ...(cpu0 !== undefined && cpu1 !== undefined ? [{ name: 'fashion-mnist.full.cpu', value: (cpu1 - cpu0) / 60, unit: 'min', detail: 'CPU time of the pipeline process tree (user + system, all threads)' }] : []),
      { name: 'fashion-mnist.full.test-accuracy', value: m.accuracy, unit: 'ratio', goal: '>= 0.92', met: m.accuracy >= 0.92, detail: 'official 10k test set' },
    ];
  } finally {
    await fs.rm(ws, { recursive: true, force: true });
  }
}

const suite: BenchSuite = {
  name: 'train',
  async run({ quick, log }) {
    const r = await initBackend({ device: 'auto' });
    if (!r.ok) throw new Error(r.error.message);
    const tf = r.value.tf as unknown as Tf;
    log(`backend ${r.value.choice.name}, ${r.value.choice.threads} thread(s)`);
    // --fmnist-only: just figure 2 (and 3 when asked), e.g. to re-measure training throughput.
    const results = process.argv.includes('--fmnist-only') ? [] : await headVsSeed(tf, quick, log);
    results.push(...(await fashionMnistThroughput(tf, quick, log)));
    if (process.argv.includes('--full-fmnist') || process.env['BENCH_FULL_FMNIST'] === '1') results.push(...(await fullFashionMnist(log)));
    else log('full Fashion-MNIST skipped (pass --full-fmnist or set BENCH_FULL_FMNIST=1)');
    return results;
  },
};

export default suite;
