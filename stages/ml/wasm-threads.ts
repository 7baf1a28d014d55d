/**
 * Makes the multi-threaded tfjs-backend-wasm binary usable under Node.
 *
 * tfjs-backend-wasm 4.22 hard-codes `WASM_HAS_MULTITHREAD_SUPPORT = false`
 * when `IS_NODE` (tfjs issue #3830), so `setThreadsCount` is silently ignored.
 * Three things stand in the way of the threaded-SIMD binary under Node, and
 * this module fixes each one:
 *
 * 1. The pthread worker script is handed to emscripten as a `blob:` URL,
 *    which `worker_threads.Worker` cannot load. We write the package's own
 *    worker script (`wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`) to a
 *    temp file and install a `Worker` shim (emscripten looks `Worker` up on the
 *    global object) that swaps the blob URL for that file, and swaps the
 *    main-script `Blob` in the worker's `load` message for the path of the
 *    package's `wasm-out/tfjs-backend-wasm-threaded-simd.js`.
 * 2. The C++ side caps the pool at `emscripten_num_logical_cores() / 2`
 *    (it assumes hyper-threading), which is 1 on a 2-core machine. That value
 *    is read once, from `os.cpus().length`, while the module instantiates; we
 *    make `os.cpus()` report `2 × threads` entries for exactly that window.
 * 3. emscripten `ref()`s a worker while it runs a pthread; XNNPACK's pool
 *    threads never return, so the process would never exit. The shim keeps
 *    workers unref'd (the main thread blocks on them synchronously anyway).
 *
 * All overrides are undone right after init (`ThreadPatch.restore`).
 *
 * This module does NOT choose a thread count (the caller does, see
 * `backend.ts`) and does not load the backend itself. The wasm runtime is
 * process-global, so this can take effect only before the first wasm init.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { TransferListItem, WorkerOptions } from 'node:worker_threads';

const require = createRequire(import.meta.url);

/** Files of the installed tfjs-backend-wasm package that the threaded build needs. */
export interface WasmPackageFiles {
  /** `.../tfjs-backend-wasm/dist/` with a trailing slash; holds the three `.wasm` binaries. */
  readonly distDir: string;
  /** Emscripten glue of the threaded-SIMD build, evaluated inside each pthread worker. */
  readonly threadedMainScript: string;
  /** Module whose `wasmWorkerContents` export is the pthread worker script. */
  readonly workerContentsModule: string;
}

/** Locates the package files from node_modules (works offline; no network). */
export function wasmPackageFiles(): WasmPackageFiles {
  const main = require.resolve('@tensorflow/tfjs-backend-wasm');
  const distDir = path.dirname(main) + path.sep;
  const root = path.resolve(distDir, '..');
  return {
    distDir,
    threadedMainScript: path.join(root, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js'),
    workerContentsModule: path.join(root, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js'),
  };
}

/** Undo handle for the temporary overrides. */
export interface ThreadPatch {
  /**
   * Restores `os.cpus` and the global `Worker`; call right after the wasm backend has
   * initialised (the pool's workers are all created during init: 8 are preallocated and
   * at most 8 threads are used, so emscripten never creates another one later).
   */
  restore(): void;
}

/**
 * Installs the worker shim and the temporary core-count override so the next
 * wasm backend init uses the threaded binary with `threads` pool threads.
 * The caller must also set `WASM_HAS_MULTITHREAD_SUPPORT` to true and call
 * `setThreadsCount(threads)` before `tf.setBackend('wasm')`.
 */
export function patchForWasmThreads(threads: number, files: WasmPackageFiles = wasmPackageFiles()): ThreadPatch {
  const contents = (require(files.workerContentsModule) as { wasmWorkerContents: string }).wasmWorkerContents;
  // The string holds literal newlines inside JS string literals (tfjs escapes them the same way before making its Blob).
  const script = contents.replace(/\n/g, '\\n');
  // Content-addressed, so every process reuses one file instead of leaving a temp dir each.
  const digest = createHash('sha256').update(script).digest('hex').slice(0, 16);
  const workerFile = path.join(os.tmpdir(), `tfjs-wasm-pthread-worker-${digest}.cjs`);
  if (!fs.existsSync(workerFile)) {
    const tmp = `${workerFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, script);
    fs.renameSync(tmp, workerFile);
  }
  const mainScript = files.threadedMainScript;

  // Loaded here, not at module top level: the stage registry imports this module's importers for metadata only.
  const { Worker: NodeWorker } = require('node:worker_threads') as typeof import('node:worker_threads');
  class PthreadWorker extends NodeWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(typeof url === 'string' && url.startsWith('blob:') ? workerFile : url, options);
      this.unref();
    }
    override postMessage(message: unknown, transferList?: readonly TransferListItem[]): void {
      const m = message as { cmd?: unknown; urlOrBlob?: unknown } | null;
      if (m !== null && typeof m === 'object' && m.cmd === 'load' && typeof m.urlOrBlob !== 'string') {
        message = { ...m, urlOrBlob: mainScript };
      }
      super.postMessage(message, transferList);
    }
    override ref(): void {
      // Pool threads never finish; keeping them referenced would keep the process alive forever.
    }
  }
  // emscripten assigns `global.Worker = worker_threads.Worker` when the module instantiates;
  // the accessor keeps our shim in place until `restore`.
  const previousWorker = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  Object.defineProperty(globalThis, 'Worker', { configurable: true, get: () => PthreadWorker, set: () => {} });

  const originalCpus = os.cpus;
  const real = originalCpus.call(os);
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]!);
  return {
    restore() {
      os.cpus = originalCpus;
      if (previousWorker !== undefined) Object.defineProperty(globalThis, 'Worker', previousWorker);
      else delete (globalThis as { Worker?: unknown }).Worker;
    },
  };
}
