/**
 * Worker-thread entry for the augment pool: receives one source image and
 * its already-drawn transform, returns the uint8 variant. Holds no state
 * between messages and draws no random numbers (the draws happen on the
 * main thread, so results never depend on which worker ran).
 */
import { parentPort } from 'node:worker_threads';
import { applyTransform } from './apply.js';
import type { WorkRequest, WorkResponse } from './pool.js';

const port = parentPort;
if (port === null) throw new Error('augment worker must run in a worker thread');
port.on('message', (req: WorkRequest) => {
  let res: WorkResponse;
  try {
    const out = applyTransform(new Uint8Array(req.src), req.shape, req.params, req.opts);
    res = { id: req.id, out: out.buffer as ArrayBuffer };
    port.postMessage(res, [res.out]);
  } catch (e) {
    res = { id: req.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
    port.postMessage(res);
  }
});
