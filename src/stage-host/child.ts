/**
 * Entry point of the child process that runs one built-in stage. It waits for
 * a `run` request over IPC, imports the stage registry, builds the
 * `StageContext` (directory item cache, IPC logger, abort signal), runs the
 * stage and sends back its result or error, then disconnects.
 *
 * It does not hash, cache or record anything: the engine ingests `outDir`
 * after a successful result. It never prints; everything goes over IPC.
 */
import path from 'node:path';
import type { ChildMessage, HostRequest, RunRequest } from './protocol.js';
import type { StageContext, StageLogger } from '../../stages/types.js';

/** Minimum interval between progress messages (the last one, done === total, always goes). */
const PROGRESS_INTERVAL_MS = 100;

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

async function run(req: RunRequest, signal: AbortSignal): Promise<void> {
  const [{ builtinStages }, { directoryItemCache }] = await Promise.all([
    import('../../stages/registry.js'),
    import('../cache/item-cache.js'),
  ]);
  const stage = builtinStages.get(req.stageName);
  if (!stage) {
    await send({ type: 'error', message: `unknown built-in stage "${req.stageName}"` });
    return;
  }
  let lastProgress = 0;
  const log: StageLogger = {
    info: (message) => void send({ type: 'log', level: 'info', message: String(message) }),
    warn: (message) => void send({ type: 'log', level: 'warn', message: String(message) }),
    progress(done, total, label) {
      const now = Date.now();
      if (done < total && now - lastProgress < PROGRESS_INTERVAL_MS) return;
      lastProgress = now;
      void send({ type: 'progress', done, total, ...(label !== undefined ? { label } : {}) });
    },
  };
  const ctx: StageContext<unknown> = {
    stageId: req.stageId,
    params: req.params,
    inputs: req.inputs,
    outDir: req.outDir,
    workspace: req.workspace,
    // Entries carry a sha256 trailer, so skipping fsync can only turn a crash-torn entry into a miss (bench/data.bench.ts
    // resize.img-per-s.fsync vs .nofsync compares both; on the last run they were within 1%).
    items: directoryItemCache(path.join(req.cacheDir, 'items', req.stageName), { fsync: false }),
    cacheDir: req.cacheDir,
    seed: req.seed,
    log,
    signal,
  };
  try {
    const result = await stage.run(ctx);
    await send({ type: 'result', result: result ?? {} });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    await send({ type: 'error', message, ...(e instanceof Error && e.stack ? { stack: e.stack } : {}) });
  }
}

const controller = new AbortController();
let started = false;
process.on('message', (m: HostRequest) => {
  if (m.type === 'cancel') {
    controller.abort();
    return;
  }
  if (m.type === 'run' && !started) {
    started = true;
    void run(m, controller.signal).finally(() => {
      process.disconnect?.();
    });
  }
});
process.on('disconnect', () => controller.abort());
