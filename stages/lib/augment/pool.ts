/**
 * A small pool of worker threads that run `applyTransform` off the main
 * thread. Jobs go to the least-busy worker; the pool keeps no queue of its
 * own beyond the per-worker message queues. `close()` terminates the workers.
 *
 * This module does not draw random numbers, read caches or decide how many
 * workers to use (the stage does).
 */
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import type { TransformParams } from './random-transform.js';
import type { WarpOptions } from './apply.js';
import { applyTransform } from './apply.js';
import type { ImageShape } from './warp.js';

/** Message to a worker. `src` is transferred. */
export interface WorkRequest {
  readonly id: number;
  readonly src: ArrayBuffer;
  readonly shape: ImageShape;
  readonly params: TransformParams;
  readonly opts: WarpOptions;
}

/** Message from a worker: the variant's bytes (transferred) or the error text. */
export type WorkResponse = { readonly id: number; readonly out: ArrayBuffer } | { readonly id: number; readonly error: string };

/** Computes variants, in-process or on worker threads; same bytes either way. */
export interface TransformRunner {
  run(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions): Promise<Uint8Array>;
  close(): Promise<void>;
  /** Worker threads in use (0 = main thread). */
  readonly threads: number;
}

/** Runs every job synchronously on the calling thread. */
export function inlineRunner(): TransformRunner {
  let scratch = new Float32Array(0);
  return {
    threads: 0,
    run: async (src, shape, params, opts) => {
      if (scratch.length !== src.length) scratch = new Float32Array(src.length);
      return applyTransform(src, shape, params, opts, scratch);
    },
    close: async () => {},
  };
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>;
}

/** Starts `threads` worker threads. */
export function workerRunner(threads: number): TransformRunner {
  // Loaded here, not at module top level: the stage registry imports this module for metadata only.
  const { Worker } = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  const slots: Slot[] = [];
  let nextId = 0;
  for (let i = 0; i < threads; i++) {
    const worker = new Worker(new URL('./worker.js', import.meta.url));
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (res: WorkResponse) => {
      const p = slot.pending.get(res.id);
      if (p === undefined) return;
      slot.pending.delete(res.id);
      if ('error' in res) p.reject(new Error(`augment worker: ${res.error}`));
      else p.resolve(new Uint8Array(res.out));
    });
    const failAll = (e: Error): void => {
      for (const p of slot.pending.values()) p.reject(e);
      slot.pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`augment worker exited with code ${code}`)));
    slots.push(slot);
  }
  return {
    threads,
    run(src, shape, params, opts) {
      let slot = slots[0]!;
      for (const s of slots) if (s.pending.size < slot.pending.size) slot = s;
      const id = nextId++;
      // A fresh buffer of exactly this image (src may be a view into a shard Buffer; never transfer that).
      const copy = new Uint8Array(src.length);
      copy.set(src);
      return new Promise<Uint8Array>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        const req: WorkRequest = { id, src: copy.buffer as ArrayBuffer, shape, params, opts };
        slot.worker.postMessage(req, [req.src]);
      });
    },
    async close() {
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
