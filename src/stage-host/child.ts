/**
 * Entry point of a stage host: a child process that runs built-in stages one
 * at a time. For each `run` request it imports that stage's module only
 * (`stages/registry-lazy.ts`: a partition host never loads the model stages'
 * modules, nor the other data stages'), builds the `StageContext` (directory
 * item cache, IPC logger, an abort signal of its own), runs the stage and
 * sends back its result or error. Started with `--prepare=<stage>,...` it
 * loads those stages (and what their `prepare` names, e.g. sharp) while idle,
 * before any request (see `preparedStages`).
 * With the result it says whether it may take another stage
 * (`policy.ts`); the engine then keeps it warm or retires it. It exits when
 * the engine disconnects (or dies).
 *
 * It does not hash, cache or record anything: the engine ingests `outDir`
 * (and the item entries the stage `refer`red to) after a successful result.
 * It never prints; everything goes over IPC.
 */
import type { ChildMessage, ErrnoFields, HostRequest, ItemRef, RunRequest } from './protocol.js';
import type { StageContext, StageLogger } from '../../stages/types.js';
import { ownChildPids, retireReason } from './policy.js';
import { stageItemCache } from './item-cache-for.js';
import { readDepListings } from './dep-files.js';
import { loadBuiltinStage } from '../../stages/registry-lazy.js';

/** `wrote` messages carry up to this many entries, and leave at most this long after the first of them. */
const WROTE_BATCH = 16;
const WROTE_DELAY_MS = 20;

/** Minimum interval between progress messages (the last one, done === total, always goes). */
const PROGRESS_INTERVAL_MS = 100;

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });
}

/** Runs one stage request to its answer (the caller sends it). */
async function run(req: RunRequest, signal: AbortSignal): Promise<ChildMessage> {
  const stage = await loadBuiltinStage(req.stageName);
  if (!stage) return { type: 'error', message: `unknown built-in stage "${req.stageName}"` };
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
  const refs: ItemRef[] = [];
  // Entries written, reported in small batches: the engine flushes them to disk while the stage goes on.
  // Not after the run is over (`over`): a write a stage left behind would otherwise be reported during the
  // host's next stage, or after a failure whose entries are never adopted.
  let wrote: string[] = [];
  let wroteTimer: NodeJS.Timeout | undefined;
  let over = false;
  const flushWrote = (): void => {
    clearTimeout(wroteTimer);
    wroteTimer = undefined;
    if (wrote.length > 0) void send({ type: 'wrote', files: wrote });
    wrote = [];
  };
  const onWrote = (file: string): void => {
    if (over) return;
    wrote.push(file);
    if (wrote.length >= WROTE_BATCH) flushWrote();
    else wroteTimer ??= setTimeout(flushWrote, WROTE_DELAY_MS);
  };
  const ctx: StageContext<unknown> = {
    stageId: req.stageId,
    params: req.params,
    inputs: req.inputs,
    outDir: req.outDir,
    workspace: req.workspace,
    items: req.offerRefs === true ? stageItemCache(req.cacheDir, req.stageName, refs, onWrote) : stageItemCache(req.cacheDir, req.stageName),
    cacheDir: req.cacheDir,
    seed: req.seed,
    log,
    signal,
    ...(req.depListingsFile !== undefined ? { depListings: readDepListings(req.depListingsFile) } : {}),
  };
  try {
    const result = await stage.run(ctx);
    flushWrote();
    over = true;
    // Let callbacks the stage left queued run before judging what it left behind.
    await new Promise((r) => setImmediate(r));
    const why = retireReason(req.stageName, { resources: process.getActiveResourcesInfo(), rss: process.memoryUsage.rss(), childPids: ownChildPids() });
    // In path order (plain string order is the canonical order for same-shaped paths, and close to it otherwise):
    // the engine sorts its manifest, and sorted input costs it one pass instead of a full sort.
    if (req.offerRefs === true) refs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { type: 'result', result: result ?? {}, ...(req.offerRefs === true ? { refs } : {}), reusable: why === undefined };
  } catch (e) {
    // The stage failed: its entries are not adopted, so not reported either.
    over = true;
    clearTimeout(wroteTimer);
    const message = e instanceof Error ? e.message : String(e);
    const errno = errnoFields(e);
    return { type: 'error', message, ...(e instanceof Error && e.stack ? { stack: e.stack } : {}), ...(errno ? { errno } : {}) };
  }
}

/** The `ErrnoFields` of what a stage threw, when it is a system error with a string `code`. */
export function errnoFields(e: unknown): ErrnoFields | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const { code, path, dest } = e as { code?: unknown; path?: unknown; dest?: unknown };
  if (typeof code !== 'string') return undefined;
  return { code, ...(typeof path === 'string' ? { path } : {}), ...(typeof dest === 'string' ? { dest } : {}) };
}

/**
 * `--prepare=<stage>[,<stage>...]` (argv): stages this host was started for
 * ahead of time. While idle it imports their modules and calls their
 * `prepare` (e.g. loading sharp), so the work is done before the engine sends
 * the stage rather than on the stage's clock. A request arriving meanwhile
 * simply waits for the import in progress (the module cache shares it).
 * Preparing is best effort: a failure here is left for the stage's own run to meet.
 */
function preparedStages(argv: readonly string[]): string[] {
  const arg = argv.find((a) => a.startsWith('--prepare='));
  return arg === undefined ? [] : arg.slice('--prepare='.length).split(',').filter((n) => n !== '');
}

async function prepare(names: readonly string[]): Promise<void> {
  for (const name of names) {
    if (current !== undefined) return; // a stage already runs: its own loading takes over
    try {
      const stage = await loadBuiltinStage(name);
      if (current === undefined) await stage?.prepare?.();
    } catch {
      // best effort (see preparedStages)
    }
  }
}

let current: AbortController | undefined;
process.on('message', (m: HostRequest) => {
  if (m.type === 'cancel') {
    current?.abort();
    return;
  }
  if (m.type !== 'run') return;
  if (current !== undefined) {
    // The engine sends a stage only to an idle host: a second one is a bug there; refuse it visibly.
    void send({ type: 'error', message: `stage host busy: refused stage ${m.stageId}` });
    return;
  }
  const controller = new AbortController();
  current = controller;
  void run(m, controller.signal)
    .catch((e: unknown): ChildMessage => ({ type: 'error', message: `stage host: ${e instanceof Error ? e.message : String(e)}` }))
    .then((answer) => {
      // Idle again before the answer leaves: the engine may send the next stage as soon as it has it.
      current = undefined;
      return send(answer);
    });
});
// The engine is gone or retired this host: abort whatever runs; with nothing left to do the process exits.
process.on('disconnect', () => current?.abort());
const toPrepare = preparedStages(process.argv.slice(2));
if (toPrepare.length > 0) setImmediate(() => void prepare(toPrepare));
