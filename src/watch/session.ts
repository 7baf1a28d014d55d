/**
 * The watch loop (`pipeline watch`): a small state machine over file events.
 *
 *   idle ──change──▶ debouncing ──timer──▶ (re)load ──valid──▶ running ──done──▶ idle
 *                                              │ invalid: print diagnostics,
 *                                              ▼ keep the last valid pipeline
 *   running ──change──▶ debouncing ──timer──▶ cancel run (stages with
 *   `interrupt: false` finish first) ──settled──▶ (re)load ──▶ running
 *
 * Rules: changes are debounced (200 ms default); the pipeline's own outputs
 * and the cache never trigger a run (see `targets.ts`); a stage that failed
 * with some key is not retried until its key changes (no retry loops); the
 * watch set follows the pipeline (new deps are watched, dropped ones are not).
 * Ctrl-C cancels the current run (no partial records) and resolves.
 *
 * This module does not print run output itself: it feeds run events to the
 * sink it is given and emits its own `watch-*` events.
 */
import path from 'node:path';
import type { PipelineGraph, JsonValue } from '../pipeline.js';
import type { Diagnostic } from '../diagnostic.js';
import type { Result } from '../result.js';
import type { RunEvent } from '../events.js';
import type { RunSummary } from '../runner.js';
import { watchTargets, type WatchTargets } from './targets.js';

/** Events of the watch loop itself (besides the run events it forwards). */
export type WatchEvent =
  | { readonly type: 'watch-ready'; readonly time: number; readonly roots: readonly string[] }
  | { readonly type: 'watch-change'; readonly time: number; readonly paths: readonly string[] }
  | { readonly type: 'watch-invalid'; readonly time: number; readonly diagnostics: readonly Diagnostic[] }
  | { readonly type: 'watch-run'; readonly time: number; readonly reason: 'initial' | 'change' }
  | { readonly type: 'watch-idle'; readonly time: number; readonly summary: { readonly ok: boolean; readonly cancelled: boolean; readonly ran: readonly string[]; readonly metrics: Readonly<Record<string, number>>; readonly previousMetrics: Readonly<Record<string, number>>; readonly lastStageWithMetrics?: string } };

/** What the loop needs from the engine, injected so the loop stays testable and I/O stays at the edges. */
export interface WatchDeps {
  load(file: string, overrides: readonly { path: string; value: JsonValue }[]): Promise<Result<PipelineGraph, Diagnostic[]>>;
  run(graph: PipelineGraph, opts: { signal: AbortSignal; skipKeys: ReadonlySet<string>; onEvent: (e: RunEvent) => void }): Promise<RunSummary>;
  cacheDirOf(graph: PipelineGraph): string;
}

/** Options of one watch session. */
export interface WatchOptions {
  readonly file: string;
  readonly overrides?: readonly { path: string; value: JsonValue }[];
  /** Debounce window in ms (default 200). */
  readonly debounceMs?: number;
  readonly signal: AbortSignal;
  readonly onEvent: (e: RunEvent | WatchEvent) => void;
}

/** Runs until `signal` aborts. Resolves with whether the last run succeeded. */
export async function watchPipeline(deps: WatchDeps, opts: WatchOptions): Promise<{ lastOk: boolean }> {
  const { watch } = await import('chokidar');
  const debounceMs = opts.debounceMs ?? 200;
  const overrides = opts.overrides ?? [];
  const file = path.resolve(opts.file);
  let graph: PipelineGraph | undefined;
  let targets: WatchTargets | undefined;
  let current: { controller: AbortController; done: Promise<RunSummary> } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let pending = new Set<string>();
  let lastOk = false;
  let previousMetrics: Record<string, number> = {};
  const failedKeys = new Set<string>();
  let chain: Promise<void> = Promise.resolve();

  const watcher = watch([file], { ignoreInitial: true, persistent: true });
  const watched = new Set<string>([file]);
  const setRoots = (roots: readonly string[]): void => {
    const next = new Set([file, ...roots]);
    const add = [...next].filter((r) => !watched.has(r));
    const drop = [...watched].filter((r) => !next.has(r));
    if (add.length) watcher.add(add);
    if (drop.length) watcher.unwatch(drop);
    watched.clear();
    for (const r of next) watched.add(r);
  };

  const reload = async (): Promise<boolean> => {
    const r = await deps.load(file, overrides);
    if (!r.ok) {
      opts.onEvent({ type: 'watch-invalid', time: Date.now(), diagnostics: r.error });
      // Keep watching the config files so the next save is seen.
      return false;
    }
    graph = r.value;
    targets = watchTargets(graph, deps.cacheDirOf(graph));
    setRoots(targets.roots);
    return true;
  };

  const startRun = (reason: 'initial' | 'change'): void => {
    const g = graph!;
    const controller = new AbortController();
    opts.onEvent({ type: 'watch-run', time: Date.now(), reason });
    const done = deps.run(g, { signal: controller.signal, skipKeys: failedKeys, onEvent: opts.onEvent });
    current = { controller, done };
    void done.then((summary) => {
      if (current?.done === done) current = undefined;
      const ran: string[] = [];
      const metrics: Record<string, number> = {};
      let lastStageWithMetrics: string | undefined;
      for (const id of summary.order) {
        const s = summary.stages.get(id);
        if (!s) continue;
        if (Object.keys(s.metrics).length > 0) lastStageWithMetrics = s.stage;
        if (s.status === 'ran' || s.status === 'restored') ran.push(s.stage);
        if (s.status === 'failed' && s.key) failedKeys.add(s.key);
        for (const [k, v] of Object.entries(s.metrics)) metrics[`${s.stage}.${k}`] = v;
      }
      if (!summary.cancelled) {
        lastOk = summary.ok;
        opts.onEvent({ type: 'watch-idle', time: Date.now(), summary: { ok: summary.ok, cancelled: false, ran, metrics, previousMetrics, ...(lastStageWithMetrics !== undefined && { lastStageWithMetrics }) } });
        if (Object.keys(metrics).length > 0) previousMetrics = metrics;
      }
    });
  };

  const onTimer = (): void => {
    timer = undefined;
    const paths = [...pending];
    pending = new Set();
    chain = chain.then(async () => {
      if (opts.signal.aborted) return;
      opts.onEvent({ type: 'watch-change', time: Date.now(), paths });
      const valid = await reload();
      if (!valid) return; // the last valid pipeline's run (if any) keeps going
      if (current) {
        current.controller.abort();
        await current.done;
      }
      if (!opts.signal.aborted) startRun('change');
    });
  };

  watcher.on('all', (_event, p) => {
    const abs = path.resolve(p);
    const kind = abs === file ? 'config' : (targets?.classify(abs) ?? 'ignored');
    if (kind === 'ignored') return;
    pending.add(abs);
    if (timer) clearTimeout(timer);
    timer = setTimeout(onTimer, debounceMs);
  });

  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  if (await reload()) startRun('initial');
  opts.onEvent({ type: 'watch-ready', time: Date.now(), roots: [...watched] });

  await new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    else opts.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  if (timer) clearTimeout(timer);
  await chain;
  if (current) {
    current.controller.abort();
    await current.done;
  }
  await watcher.close();
  return { lastOk };
}
