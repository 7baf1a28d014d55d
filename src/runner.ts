/**
 * The runner: the programmatic API behind `pipeline run` (and `watch`, sweeps,
 * experiments). For each selected stage, in dependency order and in parallel
 * where the DAG allows, it computes the stage's key once its upstream outputs
 * are known, then does the least work that makes the workspace right:
 *
 * - `fresh`: a record exists for the key and the workspace outputs are what
 *   the engine put there (stat-only check): nothing to do;
 * - `restored`: a record exists but the workspace differs: outputs are
 *   materialised from the cache (a corrupt object falls back to running);
 * - `ran`: no record (or `--force`): the stage executes, its outputs are
 *   ingested and its record written last.
 *
 * Cancellation (`signal`): interruptible running stages are killed (process
 * group) and record nothing; `interrupt: false` stages finish and record;
 * nothing new starts; unfinished stages end `cancelled`.
 *
 * One stage's scheduler task is `runStageTask`; sweeps (`sweep/run-sweep.ts`)
 * run it for every variant under one scheduler, each variant in its own
 * scratch workspace, coalescing equal keys across variants (`KeyClaims`).
 *
 * It does not take the workspace lock (call `lockWorkspace` first; one run per
 * workspace at a time), does not parse config and never prints: progress
 * goes out as `RunEvent`s to `onEvent`.
 */
import os from 'node:os';
import path from 'node:path';
import { CacheStore, type RunRecord } from './cache/store.js';
import { WorkspaceState, workspaceLockPath, type StageState } from './cache/workspace-state.js';
import { acquireLock, type Lock, type LockBusy } from './cache/lock.js';
import { materialize } from './cache/materialize.js';
import { subManifest } from './cache/manifest.js';
import { FileHasher } from './hash/file-hasher.js';
import type { PipelineGraph, StageId, StageNode } from './pipeline.js';
import { eventEmitter, type EventSink, type RunEventInit, type StageStatus } from './events.js';
import { decideStage, outputPaths, planStages, type PlanDeps, type PlanEntry } from './plan.js';
import { schedule, type SchedulerNode, type TaskContext, type TaskOutcome } from './scheduler.js';
import { executeStage, stageErrorMessage } from './run/stage-exec.js';
import { ChildRegistry } from './run/children.js';
import type { Result } from './result.js';
import { canShareHost } from './stage-host/policy.js';

/** Options for `runPipeline`. */
export interface RunOptions {
  /** Absolute cache directory (see `resolveCacheDir`). */
  readonly cacheDir: string;
  /** Maximum stages executing at once. Default: `os.availableParallelism()`. */
  readonly jobs?: number;
  /** Stages that run even if fresh or restorable. */
  readonly force?: readonly StageId[];
  /** Run only these stages plus their upstream (validated ids; see `selectStages`). Default: all. */
  readonly only?: readonly StageId[];
  /** Plan only: emit `stage-plan` events, run nothing. */
  readonly dry?: boolean;
  /** Keep starting independent stages after a failure. */
  readonly keepGoing?: boolean;
  /** Aborting cancels the run (see module doc). */
  readonly signal?: AbortSignal;
  readonly onEvent?: EventSink;
  /** Units per resource pool (`{gpu: 2}`); pools not listed have 1. */
  readonly resources?: Readonly<Record<string, number>>;
  /** Called with the summary once the run is over (e.g. to record an experiment); not called for dry runs. */
  readonly afterRun?: (summary: RunSummary) => Promise<void>;
  /**
   * Keys that already failed (watch mode): a stage whose key is in this set is
   * reported failed again without executing, so a broken stage is not retried
   * until its key changes. Forced stages still run.
   */
  readonly skipKeys?: ReadonlySet<string>;
  /**
   * Whether the caller holds the workspace lock (`lockWorkspace`), as it must for
   * real runs. Then stage process groups are remembered in
   * `<workspace>/.pipeline/children`, and orphans left by an earlier run that was
   * killed with SIGKILL are killed before anything starts. Default true.
   */
  readonly lockHeld?: boolean;
  /**
   * Already opened store/state/hasher for this graph's workspace and `cacheDir`
   * (from `openEngine`), e.g. kept by watch mode across runs so the hash memo is
   * loaded once. Its `deps.graph` is replaced by `graph`.
   */
  readonly engine?: EngineHandles;
}

/** What happened to one stage. */
export interface StageSummary {
  readonly stage: StageId;
  readonly status: StageStatus;
  /** The stage key, when it became known. */
  readonly key?: string;
  /** Hash of the output manifest (what downstream keys hold), when known. */
  readonly outputsHash?: string;
  readonly durationMs: number;
  /** Metrics from the stage's record (also for fresh/restored stages). */
  readonly metrics: Readonly<Record<string, number>>;
  readonly backend?: { readonly name: string; readonly threads?: number };
  /** For failed/cancelled/skipped: one line naming the stage. */
  readonly error?: string;
  /** Why it ran or was restored. */
  readonly reason?: string;
  readonly summary?: string;
}

/** The outcome of `runPipeline`. */
export interface RunSummary {
  readonly pipeline: string;
  readonly file: string;
  readonly workspace: string;
  readonly cacheDir: string;
  /** ISO start time. */
  readonly startedAt: string;
  readonly durationMs: number;
  /** Every selected stage is ran / restored / fresh. */
  readonly ok: boolean;
  readonly cancelled: boolean;
  readonly dry: boolean;
  /** Selected stages in topological order. */
  readonly order: readonly StageId[];
  readonly stages: ReadonlyMap<StageId, StageSummary>;
  /** For dry runs: the plan. */
  readonly plan?: readonly PlanEntry[];
}

/**
 * The cache directory: the `--cache` flag, else `PIPELINE_CACHE`, else the
 * pipeline file's `cache:`, else `<workspace>/cache`. Relative flag/env values
 * resolve against `cwd`.
 */
export function resolveCacheDir(graph: Pick<PipelineGraph, 'workspace' | 'cacheDir'>, flag: string | undefined, env: Readonly<Record<string, string | undefined>>, cwd: string): string {
  if (flag) return path.resolve(cwd, flag);
  if (env.PIPELINE_CACHE) return path.resolve(cwd, env.PIPELINE_CACHE);
  if (graph.cacheDir) return path.resolve(graph.workspace, graph.cacheDir);
  return path.join(graph.workspace, 'cache');
}

/** Takes the workspace's run lock (fails at once, or waits up to `waitMs`, if a live process holds it). */
export function lockWorkspace(workspace: string, opts: { waitMs?: number } = {}): Promise<Result<Lock, LockBusy>> {
  return acquireLock(workspaceLockPath(workspace), { purpose: 'pipeline run', ...(opts.waitMs !== undefined ? { waitMs: opts.waitMs } : {}) });
}

/** Everything opened for one workspace + cache (reused by status/explain). */
export interface EngineHandles {
  readonly store: CacheStore;
  readonly state: WorkspaceState;
  readonly hasher: FileHasher;
  readonly deps: PlanDeps;
}

/** Opens the store, workspace state and hash memo for `graph` under `cacheDir`. */
export async function openEngine(graph: PipelineGraph, cacheDir: string): Promise<EngineHandles> {
  const [store, state] = await Promise.all([CacheStore.open(cacheDir), WorkspaceState.open(cacheDir, graph.workspace)]);
  const hasher = await FileHasher.open(state.memoFile, { exclude: [cacheDir, path.join(graph.workspace, '.pipeline')], tmpDir: path.join(cacheDir, 'tmp') });
  const deps: PlanDeps = {
    graph,
    hasher,
    store,
    last: { lastKey: (id) => state.get(id)?.key, intact: (id) => state.check(id)?.length === 0 },
    builtinVersion: builtinVersionLoader(),
  };
  return { store, state, hasher, deps };
}

/**
 * Starts one stage host before planning when the run's first stages include
 * a built-in that may share a host (e.g. ingest), loading those stages while
 * the engine hashes their inputs: if one must run, its process and modules
 * are ready (a fork, Node's start-up and sharp's cost about 0.2 s of wall time
 * otherwise). A run that turns out to have nothing to do leaves the host
 * unused: it exits with the engine (or after the pool's idle time, for an
 * engine that stays up), one process start-up of CPU on another core.
 */
async function prewarmFirstHost(graph: PipelineGraph, order: readonly StageId[]): Promise<void> {
  const selected = new Set(order);
  const first = new Set<string>();
  for (const id of order) {
    const n = graph.stages.get(id)!;
    if (n.kind === 'builtin' && canShareHost(n.uses) && !n.needs.some((u) => selected.has(u))) first.add(n.uses);
  }
  if (first.size > 0) (await import('./stage-host/host.js')).stageHosts.prewarm(1, [...first]);
}

/** Loads a built-in's module on first use only, and only the stages a pipeline uses (stage code may be heavy). */
function builtinVersionLoader(): (name: string) => Promise<string> {
  return async (name) => {
    const s = await (await import('../stages/registry-lazy.js')).loadBuiltinStage(name);
    if (!s) throw new Error(`built-in stage "${name}" is not in the registry`);
    return s.version;
  };
}

/** The `stage-end` event for a stage's summary (plain runs and sweeps alike). */
export function stageEndEvent(s: StageSummary): RunEventInit {
  return {
    type: 'stage-end',
    stage: s.stage,
    status: s.status,
    durationMs: s.durationMs,
    ...(s.key ? { key: s.key } : {}),
    ...(s.error ? { error: s.error } : {}),
    ...(Object.keys(s.metrics).length > 0 ? { metrics: s.metrics } : {}),
    ...(s.summary ? { summary: s.summary } : {}),
  };
}

/** Runs the pipeline; see module doc. Never throws for stage failures (they are in the summary). */
export async function runPipeline(graph: PipelineGraph, opts: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const emit = eventEmitter([opts.onEvent]);
  const signal = opts.signal ?? new AbortController().signal;
  const jobs = Math.max(1, opts.jobs ?? os.availableParallelism());
  const order = closure(graph, opts.only);
  const forced = new Set(opts.force ?? []);
  if (opts.dry !== true) await prewarmFirstHost(graph, order);
  const eng = opts.engine ? { ...opts.engine, deps: { ...opts.engine.deps, graph } } : await openEngine(graph, opts.cacheDir);
  // A reused engine's store (watch mode): objects it stored in earlier runs have been at rest since.
  eng.store.forgetHashedObjects();
  const summaries = new Map<StageId, StageSummary>();
  emit({ type: 'run-start', pipeline: graph.name, file: graph.file, stages: order, jobs, dry: opts.dry === true });

  const finish = async (plan?: PlanEntry[]): Promise<RunSummary> => {
    await eng.hasher.save().catch(() => {});
    const counts: Partial<Record<StageStatus, number>> = {};
    for (const s of summaries.values()) counts[s.status] = (counts[s.status] ?? 0) + 1;
    const okAll = [...summaries.values()].every((s) => s.status === 'ran' || s.status === 'restored' || s.status === 'fresh');
    const durationMs = Math.round(performance.now() - t0);
    const cancelled = signal.aborted;
    const summary: RunSummary = {
      pipeline: graph.name,
      file: graph.file,
      workspace: graph.workspace,
      cacheDir: opts.cacheDir,
      startedAt,
      durationMs,
      ok: okAll && !cancelled,
      cancelled,
      dry: opts.dry === true,
      order,
      stages: summaries,
      ...(plan ? { plan } : {}),
    };
    emit({ type: 'run-end', ok: summary.ok, cancelled, durationMs, counts });
    if (!summary.dry && opts.afterRun) await opts.afterRun(summary);
    return summary;
  };

  if (opts.dry) {
    const plan = await planStages(eng.deps, order, forced);
    for (const p of plan) emit({ type: 'stage-plan', stage: p.stage, action: p.action, ...(p.key ? { key: p.key } : {}), ...(p.reason ? { reason: p.reason } : {}) });
    return finish(plan);
  }

  const children = opts.lockHeld === false ? undefined : new ChildRegistry(graph.workspace);
  children?.reapOrphans();

  /** Output hash of every stage whose outputs are settled in this run. */
  const outputs = new Map<StageId, string>();
  const saveState = stateSaver(eng);
  const end = (s: StageSummary): void => {
    summaries.set(s.stage, s);
    emit(stageEndEvent(s));
  };

  // Stages not yet started: once none of them can take a warm host, idle hosts are retired as soon as a
  // built-in's process answers, so their exit overlaps the engine storing that stage's outputs.
  const notStarted = new Set(order);
  const sharesHost = (id: StageId): boolean => {
    const n = graph.stages.get(id);
    return n?.kind === 'builtin' && canShareHost(n.uses);
  };
  const stageEnv: StageTaskEnv = {
    graph,
    eng,
    cacheDir: opts.cacheDir,
    emit,
    forced,
    outputs,
    ...(opts.skipKeys ? { skipKeys: opts.skipKeys } : {}),
    ...(children ? { children } : {}),
    runSignal: signal,
    saveState,
    end,
    hostDone: () => {
      if (![...notStarted].some(sharesHost)) void import('./stage-host/host.js').then((m) => m.stageHosts.retireIdle());
    },
  };
  const nodes: SchedulerNode[] = order.map((id) => {
    const n = graph.stages.get(id)!;
    return { id, needs: n.needs, resources: n.resources, interrupt: n.interrupt };
  });

  await schedule({
    nodes,
    jobs,
    keepGoing: opts.keepGoing === true,
    signal,
    ...(opts.resources ? { capacities: opts.resources } : {}),
    onNotRun(id, outcome, because) {
      end({ stage: id, status: outcome === 'skipped-upstream-failed' ? 'skipped-upstream-failed' : 'cancelled', durationMs: 0, metrics: {}, error: because });
    },
    onTaskError(id, e) {
      end({ stage: id, status: 'failed', durationMs: 0, metrics: {}, error: stageErrorMessage(id, e) });
    },
    task: (id, ctx) => {
      notStarted.delete(id);
      return runStageTask(id, ctx, stageEnv);
    },
  });
  // Warm stage hosts serve one run: retire them and wait until they have exited (src/stage-host/host.ts), so
  // no process outlives the run and its CPU time is the run's.
  const ranBuiltin = order.some((id) => graph.stages.get(id)?.kind === 'builtin' && !['fresh', 'restored', 'skipped-upstream-failed'].includes(summaries.get(id)?.status ?? 'fresh'));
  if (ranBuiltin) await (await import('./stage-host/host.js')).stageHosts.close();
  // Every saveState was awaited by its task, and schedule() returns once no task runs: all writes have settled.
  return finish();
}

/**
 * Sets a stage's workspace state and saves the state file, one write at a
 * time (each save includes every earlier set). For `StageTaskEnv.saveState`.
 */
export function stateSaver(eng: EngineHandles): (id: StageId, st: StageState) => Promise<void> {
  let writes: Promise<void> = Promise.resolve();
  return (id, st) => {
    eng.state.set(id, st);
    writes = writes.then(() => eng.state.save());
    return writes;
  };
}

/**
 * How one key's execution ended, for runs that share keys between several
 * stage tasks (sweeps): `ok` means a record for the key now exists.
 */
export type KeyOutcome = 'ok' | 'failed' | 'cancelled';

/**
 * Coalescing of equal keys across stage tasks: the first task to run a key
 * owns it; later tasks wait for the owner and then restore its record instead
 * of running the same work again.
 */
export interface KeyClaims {
  /**
   * Claims `key` for the calling task. `owner`: run it, then call `done`.
   * `wait`: another task runs it; await `until`, then decide again.
   */
  claim(key: string, by: string): { readonly kind: 'owner'; done(o: KeyOutcome): void } | { readonly kind: 'wait'; readonly owner: string; readonly until: Promise<KeyOutcome> };
}

/** A `KeyClaims` over an in-memory map (one run). */
export function keyClaims(): KeyClaims {
  const inFlight = new Map<string, { owner: string; until: Promise<KeyOutcome> }>();
  return {
    claim(key, by) {
      const cur = inFlight.get(key);
      if (cur) return { kind: 'wait', owner: cur.owner, until: cur.until };
      let resolve!: (o: KeyOutcome) => void;
      const until = new Promise<KeyOutcome>((r) => (resolve = r));
      inFlight.set(key, { owner: by, until });
      return {
        kind: 'owner',
        done(o) {
          // A failed or cancelled key may be tried again by a later task; a recorded one is final.
          if (o !== 'ok') inFlight.delete(key);
          resolve(o);
        },
      };
    },
  };
}

/** What one stage task needs: the workspace it works in and where its results go. */
export interface StageTaskEnv {
  /** The graph whose `workspace` the stage executes in (a sweep variant's scratch workspace, or the real one). */
  readonly graph: PipelineGraph;
  /** Engine handles for that workspace. */
  readonly eng: EngineHandles;
  readonly cacheDir: string;
  readonly emit: (e: RunEventInit) => void;
  readonly forced: ReadonlySet<StageId>;
  /** Output hash of each upstream stage settled so far (read for keys); the task adds its own via `setOutput`. */
  readonly outputs: ReadonlyMap<StageId, string> & { set(id: StageId, hash: string): unknown };
  readonly skipKeys?: ReadonlySet<string>;
  readonly children?: ChildRegistry;
  /** The whole run's signal (for telling an abort from a stop after failure). */
  readonly runSignal: AbortSignal;
  saveState(id: StageId, st: StageState): Promise<void>;
  /** Receives the stage's summary (exactly once per task). */
  end(s: StageSummary): void;
  /** Key coalescing (sweeps); without it every task runs its own key. */
  readonly claims?: KeyClaims;
  /** Name of this task for `claims` messages (e.g. the variant label). */
  readonly taskLabel?: string;
  /**
   * The stage works in a scratch copy of the workspace (sweeps): a restore of
   * the key the real workspace already holds is then not "outputs missing".
   */
  readonly scratch?: boolean;
  /** Called when a built-in's stage process has answered (ExecContext.hostDone). */
  readonly hostDone?: () => void;
}

/**
 * One stage's scheduler task: decides (fresh / restore / run) once its
 * upstream outputs are known, then does that in `env.graph.workspace`. Shared
 * by `runPipeline` and sweeps.
 */
export async function runStageTask(id: StageId, ctx: TaskContext, env: StageTaskEnv): Promise<TaskOutcome> {
  const { graph, eng, emit, forced } = env;
  const node = graph.stages.get(id)!;
  let waited: string | undefined; // the task whose run of this key we waited for
  for (;;) {
    const decision = await decideStage(node, eng.deps, env.outputs, forced.has(id) && waited === undefined);
    const key = decision.key!;
    emit({ type: 'stage-plan', stage: id, action: decision.action, key, ...(decision.reason ? { reason: decision.reason } : {}) });

    if (decision.action === 'fresh') {
      const rec = decision.record!;
      env.outputs.set(id, rec.outputs.hash);
      env.end({ stage: id, status: 'fresh', key, outputsHash: rec.outputs.hash, durationMs: 0, metrics: rec.metrics, ...(rec.backend ? { backend: rec.backend } : {}) });
      return 'ok';
    }
    if (decision.action === 'restore') {
      if (ctx.signal.aborted) {
        env.end({ stage: id, status: 'cancelled', key, durationMs: 0, metrics: {}, error: 'run cancelled' });
        return 'cancelled';
      }
      const t = performance.now();
      const reason =
        waited !== undefined
          ? `same key as ${waited}, which just ran it`
          : env.scratch && decision.lastKey === key
            ? 'same key as the workspace holds'
            : decision.reason;
      emit({ type: 'stage-start', stage: id, action: 'restore', key, ...(reason ? { reason } : {}) });
      const restored = await restoreRecord(node, decision.record!, eng);
      if (restored.ok) {
        await env.saveState(id, restored.state);
        const rec = decision.record!;
        env.outputs.set(id, rec.outputs.hash);
        env.end({ stage: id, status: 'restored', key, outputsHash: rec.outputs.hash, durationMs: Math.round(performance.now() - t), metrics: rec.metrics, ...(rec.backend ? { backend: rec.backend } : {}), ...(reason ? { reason } : {}) });
        return 'ok';
      }
      // A corrupt or missing object: recompute instead.
      emit({ type: 'stage-output', stage: id, stream: 'warn', line: `cannot restore from cache (${restored.why}); running instead` });
    }

    if (decision.action === 'run' && !forced.has(id) && env.skipKeys?.has(key)) {
      env.end({ stage: id, status: 'failed', key, durationMs: 0, metrics: {}, error: `stage ${id} already failed with this key; not retried until its inputs, params or code change` });
      return 'failed';
    }
    // After waiting once, run it ourselves if there is still no record (e.g. it was gc'd meanwhile).
    const claim = waited === undefined ? env.claims?.claim(key, env.taskLabel ?? id) : undefined;
    if (claim?.kind === 'wait') {
      // Someone else runs this very key: wait (holding no job slot), then restore its record.
      const o = await claim.until;
      if (o === 'ok') {
        waited = claim.owner;
        continue;
      }
      // The owner was stopped (its own variant failed) but we were not: claim again and run it.
      if (o === 'cancelled' && !env.runSignal.aborted && !ctx.signal.aborted) continue;
      const failed = o === 'failed';
      env.end({ stage: id, status: failed ? 'failed' : 'cancelled', key, durationMs: 0, metrics: {}, error: failed ? `stage ${id} failed: the same key failed in ${claim.owner}` : 'run cancelled' });
      return failed ? 'failed' : 'cancelled';
    }
    let keyOutcome: KeyOutcome = 'cancelled';
    try {
      keyOutcome = await executeDecided(id, node, key, decision, ctx, env);
    } finally {
      claim?.done(keyOutcome);
    }
    return keyOutcome;
  }
}

/** Executes a stage whose decision is run (or an unusable restore) under a job slot. */
async function executeDecided(id: StageId, node: StageNode, key: string, decision: Awaited<ReturnType<typeof decideStage>>, ctx: TaskContext, env: StageTaskEnv): Promise<TaskOutcome> {
  const { graph, eng, emit } = env;
  const reason = decision.action === 'restore' ? 'cache entry unusable' : decision.reason;
  const children = env.children;
  const result = await ctx.withSlot(async () => {
    const t = performance.now();
    emit({ type: 'stage-start', stage: id, action: 'run', key, ...(reason ? { reason } : {}) });
    const r = await executeStage(node, decision.key!, decision.fingerprint!, { graph, store: eng.store, state: eng.state, cacheDir: env.cacheDir, emit, signal: ctx.signal, hasher: eng.hasher, ...(children ? { trackChild: (pid: number) => children.track(pid) } : {}), ...(env.hostDone ? { hostDone: env.hostDone } : {}) });
    return { r, durationMs: Math.round(performance.now() - t) };
  });
  if (result === undefined) {
    env.end({ stage: id, status: 'cancelled', key, durationMs: 0, metrics: {}, error: env.runSignal.aborted ? 'run cancelled' : 'not started after a failure' });
    return 'cancelled';
  }
  const { r, durationMs } = result;
  switch (r.kind) {
    case 'ok':
      await env.saveState(id, r.state);
      env.outputs.set(id, r.record.outputs.hash);
      env.end({
        stage: id,
        status: 'ran',
        key,
        outputsHash: r.record.outputs.hash,
        durationMs,
        metrics: r.record.metrics,
        ...(r.record.backend ? { backend: r.record.backend } : {}),
        ...(reason ? { reason } : {}),
        ...(r.record.summary ? { summary: r.record.summary } : {}),
      });
      return 'ok';
    case 'failed':
      env.end({ stage: id, status: 'failed', key, durationMs, metrics: {}, error: r.message });
      return 'failed';
    case 'cancelled':
      env.end({ stage: id, status: 'cancelled', key, durationMs, metrics: {}, error: 'killed: run cancelled' });
      return 'cancelled';
  }
}

/** Every stage in `only` plus its upstream, in graph order; all stages when `only` is undefined or empty. */
export function closure(graph: PipelineGraph, only: readonly StageId[] | undefined): StageId[] {
  if (!only || only.length === 0) return [...graph.stages.keys()];
  const want = new Set<StageId>();
  const visit = (id: StageId): void => {
    if (want.has(id) || !graph.stages.has(id)) return;
    want.add(id);
    for (const u of graph.stages.get(id)!.needs) visit(u);
  };
  for (const id of only) visit(id);
  return [...graph.stages.keys()].filter((id) => want.has(id));
}

/**
 * Materialises a recorded run's outputs into the workspace at the stage's
 * output paths (user content in the way is backed up by `materialize`).
 * Returns the workspace state to save; does not save it. `why` names a
 * corrupt or missing object (the stage must then be recomputed).
 */
export async function restoreRecord(node: StageNode, rec: RunRecord, eng: EngineHandles): Promise<{ ok: true; state: StageState } | { ok: false; why: string }> {
  const ws = eng.deps.graph.workspace;
  const prev = eng.state.get(node.id);
  const outs = outputPaths(node).filter((o) => o.cache);
  const placed = [];
  for (const o of outs) {
    const m = node.kind === 'builtin' ? rec.outputs : subManifest(rec.outputs, o.path);
    const expected = prev?.outputs.find((x) => x.dest === o.path);
    const r = await materialize(eng.store, m, ws, o.path, { stageId: node.id, ...(expected ? { expected } : {}), ...(node.kind === 'builtin' ? { kind: 'dir' as const } : {}) });
    if (!r.ok) return { ok: false, why: `${r.error.reason} for ${r.error.path}` };
    placed.push(r.value.output);
  }
  return { ok: true, state: { key: rec.key, outputsHash: rec.outputs.hash, outputs: placed, at: new Date().toISOString() } };
}
