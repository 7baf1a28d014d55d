/**
 * Worker-thread entry for the augment pool: receives one source image and
 * its already-drawn transform, returns the uint8 variant. Keeps only a
 * scratch buffer between messages and draws no random numbers (the draws
 * happen on the main thread, so results never depend on which worker ran).
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { applyTransform } from './apply.js';
import type { WorkRequest, WorkResponse } from './pool.js';

/** Answers requests on `port`, reusing one float32 scratch image between them. */
function serve(port: MessagePort): void {
  let scratch = new Float32Array(0);
  port.on('message', (req: WorkRequest) => {
    let res: WorkResponse;
    try {
      const src = new Uint8Array(req.src);
      if (scratch.length !== src.length) scratch = new Float32Array(src.length);
      const out = applyTransform(src, req.shape, req.params, req.opts, scratch);
      res = { id: req.id, out: out.buffer as ArrayBuffer };
      port.postMessage(res, [res.out]);
    } catch (e) {
      res = { id: req.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
      port.postMessage(res);
    }
  });
}

if (parentPort === null) throw new Error('augment worker must run in a worker thread');
serve(parentPort);
