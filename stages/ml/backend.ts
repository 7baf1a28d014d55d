/**
 * Compute-backend selection for the model stages.
 *
 * `device: auto` tries, in order: `@tensorflow/tfjs-node-gpu` (installed, loads,
 * and sees a CUDA GPU), `@tensorflow/tfjs-node`, `@tensorflow/tfjs-backend-wasm`
 * (SIMD; threads via `wasm-threads.ts`), then the pure-JS `cpu` backend. Each
 * optional package is loaded with a dynamic import inside try/catch, so a
 * missing or broken native module becomes one line in `choice.notes`.
 *
 * The tfjs engine is process-global: once a backend is initialised (and for
 * wasm, once its thread count is fixed) a later call can switch the active
 * backend but cannot change the wasm thread count; that is reported in notes.
 *
 * tfjs, the wasm thread patch and the wasm training kernels are imported on the
 * first `initBackend` call that needs them, not at module top level (the stage
 * registry imports this module's callers just for metadata).
 *
 * This module does NOT print (callers log `choice`), does not pick devices per
 * stage, and does not install anything.
 */
import type * as Tfjs from '@tensorflow/tfjs';
import { cpus, loadavg } from 'node:os';
import { err, ok, unreachable, type Result } from '../../src/result.js';

/** Devices a user may ask for. */
export const DEVICES = ['auto', 'gpu', 'cpu'] as const;
/** `auto`: best available; `gpu`: CUDA via tfjs-node-gpu or fail; `cpu`: never try the GPU package. */
export type Device = (typeof DEVICES)[number];

/** tfjs backend names we can select. */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
/** `tensorflow` = libtensorflow through tfjs-node(-gpu); `wasm` = XNNPACK in WebAssembly; `cpu` = plain JS. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What was chosen, recorded in the run record and printed by the stage. */
export interface BackendChoice {
  /** The tfjs backend now active. */
  readonly name: BackendName;
  /** npm package that provides it (`@tensorflow/tfjs-backend-cpu` for the JS backend). */
  readonly package: string;
  /** Worker threads the backend computes with (wasm pool size; 1 for cpu; cores for tensorflow). */
  readonly threads: number;
  /** True when kernels run on a CUDA GPU. */
  readonly gpu: boolean;
  /** One line per candidate skipped or degraded, e.g. `tfjs-node-gpu: not installed`. */
  readonly notes: readonly string[];
}

/** A successful init: the tfjs namespace (same tfjs-core instance the backend registered into) and the choice. */
export interface BackendInit {
  readonly tf: typeof Tfjs;
  readonly choice: BackendChoice;
}

/** Why no backend satisfying the request could be initialised. */
export interface BackendFailure {
  /** `gpu-unavailable`: device gpu asked but no CUDA GPU usable; `backend-unavailable`: the explicit backend could not load. */
  readonly reason: 'gpu-unavailable' | 'backend-unavailable';
  /** One line for the user, naming what to install or change. */
  readonly message: string;
  /** The per-candidate explanations gathered on the way. */
  readonly notes: readonly string[];
}

/** Options of `initBackend`. */
export interface BackendOptions {
  readonly device: Device;
  /** Force one backend (skips auto order); the device still decides whether a GPU is required. */
  readonly backend?: BackendName;
  /** wasm pool threads; default `defaultWasmThreads(workload)`. Ignored by other backends. */
  readonly threads?: number;
  /** What the process will mostly run; only picks the default wasm thread count. Default `inference`. */
  readonly workload?: Workload;
}

/** `inference`: large frozen-backbone batches; `training`: many small ops per step (small CNNs, heads). */
export type Workload = 'inference' | 'training';

/**
 * Default wasm thread count, chosen by measurement (bench/features.bench.ts, 2-core machine):
 * - inference: all cores (at most 8, the pool the wasm build preallocates). Fused MobileNetV2
 *   at batch 32 ran 1.3x faster with 2 threads than with 1, even on a heavily loaded machine.
 * - training: all cores on an idle machine, but 1 thread when the load average already exceeds
 *   the core count. A training step is many small ops, and the main thread busy-waits for the
 *   pool after each one; when the pool threads are descheduled that wait dominates (small-CNN
 *   step at load 20: 82 img/s with 1 thread, 28 img/s with 2).
 */
export function defaultWasmThreads(workload: Workload = 'inference'): number {
  const cores = Math.max(1, Math.min(8, cpus().length));
  if (workload === 'training' && loadavg()[0]! > cpus().length) return 1;
  return cores;
}

/** The tfjs namespace (the same object a static `import * as tf` gives), loaded on first use. */
function loadTf(): Promise<typeof Tfjs> {
  return import('@tensorflow/tfjs');
}

function firstLine(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.split('\n')[0]!.slice(0, 200);
}

function isModuleNotFound(e: unknown, pkg: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && firstLine(e).includes(pkg);
}

/** Dynamic import with a runtime-computed specifier, so TypeScript does not need the optional package's types. */
async function importOptional(pkg: string): Promise<Result<unknown, string>> {
  try {
    return ok(await import(pkg));
  } catch (e) {
    return err(isModuleNotFound(e, pkg) ? 'not installed' : `failed to load (${firstLine(e)})`);
  }
}

async function activate(name: string): Promise<boolean> {
  const tf = await loadTf();
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

interface TensorflowBackendLike {
  isUsingGpuDevice?: boolean;
}

async function tryTensorflow(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node', needGpu: boolean, notes: string[], fallsBack = true): Promise<BackendChoice | undefined> {
  const tf = await loadTf();
  const CORE_VERSION = tf.version_core;
  const short = pkg.replace('@tensorflow/', '');
  const then = fallsBack ? ' -> falling back' : '';
  const mod = await importOptional(pkg);
  if (!mod.ok) {
    notes.push(`${short}: ${mod.error}${then}`);
    return undefined;
  }
  const version = (mod.value as { version?: Record<string, string> }).version?.['tfjs-core'];
  if (version !== undefined && version !== CORE_VERSION) {
    notes.push(`${short}: built against tfjs-core ${version}, but this project uses ${CORE_VERSION}${then}`);
    return undefined;
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    notes.push(`${short}: loaded, but registered into a different tfjs-core instance${then}`);
    return undefined;
  }
  if (!(await activate('tensorflow'))) {
    notes.push(`${short}: backend failed to initialise${then}`);
    return undefined;
  }
  const gpu = (tf.backend() as unknown as TensorflowBackendLike).isUsingGpuDevice === true;
  if (needGpu && !gpu) {
    notes.push(`${short}: loaded, but no CUDA GPU is visible${then}`);
    return undefined;
  }
  return { name: 'tensorflow', package: pkg, threads: cpus().length, gpu, notes };
}

/** Process-global: the wasm runtime can be initialised once, with one thread count. */
let wasmThreadsInUse: number | undefined;

async function tryWasm(threads: number, notes: string[]): Promise<BackendChoice | undefined> {
  const tf = await loadTf();
  const CORE_VERSION = tf.version_core;
  const mod = await importOptional('@tensorflow/tfjs-backend-wasm');
  if (!mod.ok) {
    notes.push(`tfjs-backend-wasm: ${mod.error} -> falling back`);
    return undefined;
  }
  const wasm = mod.value as typeof import('@tensorflow/tfjs-backend-wasm');
  // Loaded here (not at top level) with the wasm backend itself: only a wasm run needs them.
  const { patchForWasmThreads, wasmPackageFiles } = await import('./wasm-threads.js');
  const { registerWasmTrainingKernels } = await import('./wasm-kernels/index.js');
  if (wasm.version_wasm !== CORE_VERSION) {
    notes.push(`tfjs-backend-wasm: version ${wasm.version_wasm} differs from tfjs-core ${CORE_VERSION} -> falling back`);
    return undefined;
  }
  if (wasmThreadsInUse === undefined) {
    const files = wasmPackageFiles();
    wasm.setWasmPaths(files.distDir);
    const patch = threads > 1 ? patchForWasmThreads(threads, files) : undefined;
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
    wasm.setThreadsCount(threads);
    let okInit: boolean;
    try {
      okInit = await activate('wasm');
    } finally {
      patch?.restore();
    }
    if (!okInit && threads > 1) {
      // The threaded build depends on worker_threads + SharedArrayBuffer; the plain SIMD build does not.
      notes.push(`tfjs-backend-wasm: the ${threads}-thread build failed to initialise -> retrying single-threaded`);
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      wasm.setThreadsCount(1);
      okInit = await activate('wasm');
    }
    if (!okInit) {
      notes.push('tfjs-backend-wasm: failed to initialise the wasm module -> falling back');
      return undefined;
    }
    wasmThreadsInUse = wasm.getThreadsCount();
    if (wasmThreadsInUse !== threads) notes.push(`tfjs-backend-wasm: asked for ${threads} threads, the pool has ${wasmThreadsInUse}`);
  } else {
    if (!(await activate('wasm'))) {
      notes.push('tfjs-backend-wasm: failed to re-activate -> falling back');
      return undefined;
    }
    if (wasmThreadsInUse !== threads) notes.push(`tfjs-backend-wasm: already running with ${wasmThreadsInUse} threads in this process; ${threads} requested`);
  }
  registerWasmTrainingKernels(tf);
  return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', threads: wasmThreadsInUse, gpu: false, notes };
}

async function tryCpu(notes: string[]): Promise<BackendChoice | undefined> {
  if (!(await activate('cpu'))) {
    notes.push('cpu: failed to initialise');
    return undefined;
  }
  return { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', threads: 1, gpu: false, notes };
}

/**
 * Selects and activates a backend. Expected failures (GPU requested but none
 * usable, an explicit backend that cannot load) are returned as values.
 */
export async function initBackend(opts: BackendOptions): Promise<Result<BackendInit, BackendFailure>> {
  const tf = await loadTf();
  const notes: string[] = [];
  const threads = Math.max(1, Math.floor(opts.threads ?? defaultWasmThreads(opts.workload)));
  const done = (choice: BackendChoice | undefined): Result<BackendInit, BackendFailure> | undefined =>
    choice === undefined ? undefined : ok({ tf, choice });

  if (opts.device === 'gpu') {
    if (opts.backend !== undefined && opts.backend !== 'tensorflow') {
      return err({ reason: 'gpu-unavailable', message: `device gpu needs backend tensorflow (tfjs-node-gpu), not ${opts.backend}`, notes });
    }
    const r = done(await tryTensorflow('@tensorflow/tfjs-node-gpu', true, notes, false));
    return (
      r ??
      err({
        reason: 'gpu-unavailable',
        message: 'device gpu: no usable CUDA GPU (install @tensorflow/tfjs-node-gpu 4.22.0 with CUDA 11.2/cuDNN 8.1, or use device auto/cpu)',
        notes,
      })
    );
  }

  const order: BackendName[] = opts.backend !== undefined ? [opts.backend] : ['tensorflow', 'wasm', 'cpu'];
  for (const name of order) {
    let r: Result<BackendInit, BackendFailure> | undefined;
    switch (name) {
      case 'tensorflow':
        if (opts.device === 'auto') {
          r = done(await tryTensorflow('@tensorflow/tfjs-node-gpu', true, notes));
          if (r === undefined && tf.findBackendFactory('tensorflow') !== null && (await activate('tensorflow'))) {
            // tfjs-node-gpu loaded but has no GPU: its libtensorflow still runs on the CPU (loading
            // tfjs-node as well would register a second 'tensorflow' backend).
            notes.push('tfjs-node-gpu: using its libtensorflow CPU kernels');
            r = done({ name: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', threads: cpus().length, gpu: false, notes });
          }
        }
        r ??= done(await tryTensorflow('@tensorflow/tfjs-node', false, notes));
        break;
      case 'wasm':
        r = done(await tryWasm(threads, notes));
        break;
      case 'cpu':
        r = done(await tryCpu(notes));
        break;
      default:
        return unreachable(name);
    }
    if (r !== undefined) return r;
  }
  return err({ reason: 'backend-unavailable', message: `backend ${opts.backend ?? 'auto'} could not be initialised: ${notes.join('; ')}`, notes });
}

/** One line for logs, e.g. `wasm (@tensorflow/tfjs-backend-wasm, 2 threads)`. */
export function describeChoice(c: BackendChoice): string {
  return `${c.name} (${c.package}, ${c.threads} thread${c.threads === 1 ? '' : 's'}${c.gpu ? ', GPU' : ''})`;
}
