/**
 * Running a sweep (`pipeline run -S a=1,2 -S b=x,y`): every variant's stages
 * under ONE scheduler, one `--jobs` limit and one set of resource pools.
 *
 * - Shared stages (present in every variant with an identical definition,
 *   and only shared upstream) are one scheduler node each: they run (or are
 *   fresh / restored) once, in the real workspace, exactly as in a plain run.
 * - Every other stage is one node per variant, executed in the variant's
 *   scratch workspace (`scratch.ts`): its outputs are private to the variant
 *   and stored in the cache like any run's. Variants' nodes run in parallel.
 * - Equal keys run once: a variant whose stage has the same key as another
 *   variant's (e.g. `train` does not read the swept `epochs`) waits for that
 *   run, holding no job slot, and restores its record (`KeyClaims`).
 * - Failure domains are variants: without `--keep-going` a failing stage
 *   stops its own variant only (a shared stage failing stops all); with it,
 *   independent stages of the variant continue too.
 * - Each variant is summarised as the `RunSummary` a sequential run of it
 *   would produce (shared stages are `ran`/`restored` in the first variant and
 *   `fresh` in the others) and handed to `recordVariant` as soon as its last
 *   stage ends. A variant cut short by an abort is not recorded.
 * - Afterwards the last variant that succeeded is applied: its outputs are
 *   materialised from the cache into the workspace (user content in the way is
 *   backed up first, by `materialize`), like `exp checkout`. `cache: false`
 *   outputs cannot be applied and are reported.
 *
 * It does not load config, take the workspace lock, record experiments or
 * print (events go to `onEvent`, each stage event labelled with its variant).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { JsonValue, PipelineGraph, StageId, StageNode } from '../pipeline.js';
import { eventEmitter, type EventSink, type RunEventInit, type StageStatus, type SweepVariant } from '../events.js';
import { schedule, type SchedulerNode } from '../scheduler.js';
import { closure, keyClaims, openEngine, restoreRecord, runStageTask, stageEndEvent, stateSaver, type EngineHandles, type RunSummary, type StageSummary, type StageTaskEnv } from '../runner.js';
import type { StageState } from '../cache/workspace-state.js';
import { outputPaths } from '../plan.js';
import { ChildRegistry } from '../run/children.js';
import { stageErrorMessage } from '../run/stage-exec.js';
import { buildScratch, removeScratch } from './scratch.js';

/** One variant to run. */
export interface SweepVariantInput {
  /** The variant's analysed graph (real workspace; params with its overrides). */
  readonly graph: PipelineGraph;
  readonly label: string;
  readonly overrides: Readonly<Record<string, JsonValue>>;
  /** `--stage` selection for this graph (ids, expanded); empty: all stages. */
  readonly only?: readonly StageId[];
  /** `--force` ids for this graph. */
  readonly force?: readonly StageId[];
}

/** Options for `runSweepPipeline`. */
export interface SweepRunOptions {
  readonly cacheDir: string;
  /** The sweep's id (every experiment records it). */
  readonly sweepId: string;
  /** Maximum stages executing at once over all variants. Default: `os.availableParallelism()`. */
  readonly jobs?: number;
  readonly keepGoing?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: EventSink;
  readonly resources?: Readonly<Record<string, number>>;
  /**
   * Records a finished variant (not called for variants cut short by an abort);
   * returns the experiment id, shown in its `variant-end` event.
   */
  readonly recordVariant?: (index: number, summary: RunSummary) => Promise<string | undefined>;
  /** Whether the caller holds the workspace lock (see `RunOptions.lockHeld`). Default true. */
  readonly lockHeld?: boolean;
}

/** One variant's outcome. */
export interface VariantOutcome {
  readonly label: string;
  readonly status: 'succeeded' | 'failed' | 'cancelled';
  /** As a sequential run of the variant would summarise it. */
  readonly summary: RunSummary;
  readonly experiment?: string;
}

/** The outcome of a sweep. */
export interface SweepSummary {
  readonly ok: boolean;
  readonly cancelled: boolean;
  readonly durationMs: number;
  readonly variants: readonly VariantOutcome[];
  /** Stages shared by every variant (run once, in the workspace). */
  readonly shared: readonly StageId[];
  /** 0-based index of the variant whose outputs the workspace holds, if one was applied. */
  readonly applied?: number;
}

/**
 * Stages shared by every variant: selected in all of them with the same
 * definition (params, command, deps, outs...) and only shared upstream. In
 * the first variant's topological order.
 */
export function sharedStages(variants: readonly { graph: PipelineGraph; order: readonly StageId[] }[]): StageId[] {
  if (variants.length === 0) return [];
  const shared = new Set<StageId>();
  const selected = variants.map((v) => new Set(v.order));
  for (const id of variants[0].order) {
    const def = JSON.stringify(variants[0].graph.stages.get(id));
    const same = variants.every((v, i) => selected[i].has(id) && JSON.stringify(v.graph.stages.get(id)) === def);
    if (same && variants[0].graph.stages.get(id)!.needs.every((u) => shared.has(u))) shared.add(id);
  }
  return variants[0].order.filter((id) => shared.has(id));
}

/**
 * Directories a variant stage should see as real (not links) in its scratch
 * dir: its working directory and the directories holding the files it reads
 * (path deps, and argv elements naming existing workspace files), so that a
 * script resolving its own real path stays inside the scratch dir.
 */
function readDirsOf(workspace: string, node: StageNode): string[] {
  const dirs: string[] = [];
  const addParentOf = (rel: string): void => {
    const d = path.posix.dirname(rel.split(path.sep).join('/'));
    if (d !== '.' && d !== '' && !d.startsWith('..')) dirs.push(d);
  };
  for (const d of node.deps) {
    if (d.kind !== 'path') continue;
    // A glob counts as a directory dep on its base (the segments before the first pattern): its parent.
    const segs = d.path.replace(/\/+$/, '').split('/');
    const firstGlob = segs.findIndex((x) => /[*?[{]/.test(x));
    addParentOf(firstGlob >= 0 ? segs.slice(0, firstGlob).join('/') : segs.join('/'));
  }
  if (node.kind === 'cmd') {
    dirs.push(node.cwd);
    for (const a of node.argv) {
      if (a.startsWith('-') || a.includes('\0')) continue;
      const abs = path.resolve(workspace, node.cwd, a);
      const rel = path.relative(workspace, abs);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) continue;
      try {
        if (fs.statSync(abs).isFile()) addParentOf(rel);
      } catch {
        /* not a file path */
      }
    }
  }
  return dirs;
}

/** Where variant scratch dirs live for a workspace: `<cache>/sweeps/<hash of workspace>/`. */
export function scratchRoot(cacheDir: string, workspace: string): string {
  return path.join(cacheDir, 'sweeps', crypto.createHash('sha256').update(path.resolve(workspace)).digest('hex').slice(0, 16));
}

/** Runs the sweep; see module doc. Never throws for stage failures. */
export async function runSweepPipeline(inputs: readonly SweepVariantInput[], opts: SweepRunOptions): Promise<SweepSummary> {
  const t0 = performance.now();
  const wallStart = Date.now();
  const signal = opts.signal ?? new AbortController().signal;
  const jobs = Math.max(1, opts.jobs ?? os.availableParallelism());
  const emit = eventEmitter([opts.onEvent]);
  const real = inputs[0].graph;
  const ws = real.workspace;
  const orders = inputs.map((v) => closure(v.graph, v.only));
  const shared = sharedStages(inputs.map((v, i) => ({ graph: v.graph, order: orders[i] })));
  const sharedSet = new Set(shared);
  const labels = inputs.map((v) => v.label);
  const variantsInfo: SweepVariant[] = inputs.map((v, i) => ({ index: i + 1, label: v.label, overrides: v.overrides }));

  const allIds = [...new Set(orders.flat())];
  emit({ type: 'run-start', pipeline: real.name, file: real.file, stages: allIds, jobs, dry: false });
  emit({ type: 'sweep-start', sweep: opts.sweepId, variants: variantsInfo, shared });

  const children = opts.lockHeld === false ? undefined : new ChildRegistry(ws);
  children?.reapOrphans();
  const claims = keyClaims();

  // The real workspace: shared stages.
  const realEng = await openEngine(real, opts.cacheDir);
  const root = scratchRoot(opts.cacheDir, ws);
  const exclude = [opts.cacheDir, path.join(ws, '.pipeline')];
  const sharedOutputs = [...shared].flatMap((id) => outputPaths(real.stages.get(id)!).map((o) => o.path));

  // Leftovers of a sweep that was killed (we hold the workspace lock: no other sweep uses them).
  for (const n of await fsp.readdir(root).catch(() => [] as string[])) await removeScratch(root, path.join(root, n));
  // One scratch workspace per variant: the private outputs of its other stages.
  const scratch: { dir: string; graph: PipelineGraph; eng: EngineHandles }[] = [];
  for (const [i, v] of inputs.entries()) {
    const dir = path.join(root, `v${i + 1}`);
    const own = [...v.graph.stages.values()].filter((n) => !sharedSet.has(n.id));
    await buildScratch({
      workspace: ws,
      dir,
      root,
      privatePaths: own.flatMap((n) => outputPaths(n).map((o) => o.path)),
      realDirs: own.flatMap((n) => readDirsOf(ws, n)),
      links: sharedOutputs,
      exclude,
    });
    const graph: PipelineGraph = { ...v.graph, workspace: dir };
    const opened = await openEngine(graph, opts.cacheDir);
    // Reasons compare against the stage's last run in the real workspace; nothing in a fresh
    // scratch dir is ever "fresh" (its private outputs start absent).
    const eng: EngineHandles = { ...opened, deps: { ...opened.deps, last: { lastKey: (id) => realEng.state.get(id)?.key, intact: () => false } } };
    scratch.push({ dir, graph, eng });
  }

  // Outputs known per variant; a shared stage's output is known to all.
  const variantOutputs = inputs.map(() => new Map<StageId, string>());
  const sharedOutputMap = new Map<StageId, string>();
  const fanOut = Object.assign(sharedOutputMap, {
    set(id: StageId, h: string) {
      Map.prototype.set.call(sharedOutputMap, id, h);
      for (const m of variantOutputs) m.set(id, h);
      return sharedOutputMap;
    },
  });

  const saveReal = stateSaver(realEng);

  const sharedSummaries = new Map<StageId, StageSummary>();
  const variantSummaries = inputs.map(() => new Map<StageId, StageSummary>());
  const remaining = orders.map((o) => o.length);
  const outcomes: (VariantOutcome | undefined)[] = inputs.map(() => undefined);
  const finals: Promise<void>[] = [];

  const okStatus = (st: StageStatus): boolean => st === 'ran' || st === 'restored' || st === 'fresh';

  /** Builds variant i's summary and records it (once all its stages ended). */
  const finalize = async (i: number): Promise<void> => {
    const stages = new Map<StageId, StageSummary>();
    for (const id of orders[i]) {
      let s = sharedSet.has(id) ? sharedSummaries.get(id) : variantSummaries[i].get(id);
      if (!s) continue;
      // As a sequential sweep: the first variant did the shared work, the later ones found it fresh.
      if (sharedSet.has(id) && i > 0 && (s.status === 'ran' || s.status === 'restored')) {
        const { reason: _r, summary: _s, ...rest } = s;
        s = { ...rest, status: 'fresh', durationMs: 0 };
      }
      stages.set(id, s);
    }
    const ok = [...stages.values()].every((s) => okStatus(s.status)) && stages.size === orders[i].length;
    const cancelled = !ok && signal.aborted;
    const durationMs = Math.round(performance.now() - t0);
    const summary: RunSummary = {
      pipeline: inputs[i].graph.name,
      file: inputs[i].graph.file,
      workspace: ws,
      cacheDir: opts.cacheDir,
      // Offset by the index so records list in sweep order.
      startedAt: new Date(wallStart + i).toISOString(),
      durationMs,
      ok,
      cancelled,
      dry: false,
      order: orders[i],
      stages,
    };
    const status = cancelled ? 'cancelled' : ok ? 'succeeded' : 'failed';
    let experiment: string | undefined;
    if (!cancelled && opts.recordVariant) experiment = await opts.recordVariant(i, summary);
    outcomes[i] = { label: labels[i], status, summary, ...(experiment !== undefined ? { experiment } : {}) };
    const metrics: Record<string, number> = {};
    for (const [id, s] of stages) for (const [k, v] of Object.entries(s.metrics)) metrics[`${id}.${k}`] = v;
    emit({ type: 'variant-end', variant: labels[i], index: i + 1, status, durationMs, metrics, ...(experiment !== undefined ? { experiment } : {}) });
  };
  const stageDone = (variants: readonly number[]): void => {
    for (const i of variants) {
      remaining[i]--;
      if (remaining[i] === 0) finals.push(finalize(i));
    }
  };
  const all = inputs.map((_, i) => i);
  const forcedOf = (i: number): Set<StageId> => new Set(inputs[i].force ?? []);

  // Scheduler nodes: shared stages once, the rest once per variant.
  const envs = new Map<string, { env: StageTaskEnv; stage: StageId; variant?: number }>();
  const nodes: SchedulerNode[] = [];
  const nodeId = (stage: StageId, variant: number | undefined): StageId => (variant === undefined || sharedSet.has(stage) ? `=${stage}` : `${variant}:${stage}`) as StageId;
  const sharedEnv: StageTaskEnv = {
    graph: real,
    eng: realEng,
    cacheDir: opts.cacheDir,
    emit,
    forced: forcedOf(0),
    outputs: fanOut,
    ...(children ? { children } : {}),
    runSignal: signal,
    saveState: saveReal,
    end(s) {
      sharedSummaries.set(s.stage, s);
      emit(stageEndEvent(s));
      stageDone(all);
    },
    claims,
    taskLabel: 'the shared stages',
  };
  for (const id of shared) {
    const n = real.stages.get(id)!;
    nodes.push({ id: nodeId(id, undefined), needs: n.needs.filter((u) => sharedSet.has(u)).map((u) => nodeId(u, undefined)), resources: n.resources, interrupt: n.interrupt });
    envs.set(nodeId(id, undefined), { env: sharedEnv, stage: id });
  }
  for (const [i, v] of inputs.entries()) {
    const sc = scratch[i];
    const vemit = (e: RunEventInit): void => emit({ ...e, variant: labels[i] } as RunEventInit);
    const env: StageTaskEnv = {
      graph: sc.graph,
      eng: sc.eng,
      cacheDir: opts.cacheDir,
      emit: vemit,
      forced: forcedOf(i),
      outputs: variantOutputs[i],
      ...(children ? { children } : {}),
      runSignal: signal,
      saveState: stateSaver(sc.eng),
      end(s) {
        variantSummaries[i].set(s.stage, s);
        vemit(stageEndEvent(s));
        stageDone([i]);
      },
      claims,
      taskLabel: `experiment ${i + 1} [${labels[i]}]`,
      scratch: true,
    };
    for (const id of orders[i]) {
      if (sharedSet.has(id)) continue;
      const n = v.graph.stages.get(id)!;
      nodes.push({ id: nodeId(id, i), needs: n.needs.map((u) => nodeId(u, i)), resources: n.resources, interrupt: n.interrupt, group: `v${i}` });
      envs.set(nodeId(id, i), { env, stage: id, variant: i });
    }
  }

  try {
    await schedule({
      nodes,
      jobs,
      keepGoing: opts.keepGoing === true,
      signal,
      ...(opts.resources ? { capacities: opts.resources } : {}),
      onNotRun(nid, outcome, because) {
        const { env, stage } = envs.get(nid)!;
        env.end({ stage, status: outcome === 'skipped-upstream-failed' ? 'skipped-upstream-failed' : 'cancelled', durationMs: 0, metrics: {}, error: because.replace(/stage (=|\d+:)/, 'stage ') });
      },
      onTaskError(nid, e) {
        const { env, stage } = envs.get(nid)!;
        env.end({ stage, status: 'failed', durationMs: 0, metrics: {}, error: stageErrorMessage(stage, e) });
      },
      task: (nid, ctx) => {
        const { env, stage } = envs.get(nid)!;
        return runStageTask(stage, ctx, env);
      },
    });
    await Promise.all(finals);
    // A variant with no stages selected never reached finalize.
    for (const i of all) if (outcomes[i] === undefined) await finalize(i);

    // The workspace ends holding the last variant that succeeded.
    let applied: number | undefined;
    if (!signal.aborted) {
      for (let i = inputs.length - 1; i >= 0; i--) {
        if (outcomes[i]?.status !== 'succeeded') continue;
        applied = i;
        const own = orders[i].filter((id) => !sharedSet.has(id));
        const problems = await applyVariant(inputs[i].graph, own, outcomes[i]!.summary, realEng, saveReal);
        emit({ type: 'sweep-apply', variant: labels[i], index: i + 1, stages: own, problems });
        break;
      }
    }
    await Promise.all([realEng, ...scratch.map((s) => s.eng)].map((e) => e.hasher.save().catch(() => {})));
    const durationMs = Math.round(performance.now() - t0);
    const counts: Partial<Record<StageStatus, number>> = {};
    for (const s of [...sharedSummaries.values(), ...variantSummaries.flatMap((m) => [...m.values()])]) counts[s.status] = (counts[s.status] ?? 0) + 1;
    const ok = outcomes.every((o) => o?.status === 'succeeded') && !signal.aborted;
    emit({ type: 'run-end', ok, cancelled: signal.aborted, durationMs, counts });
    return { ok, cancelled: signal.aborted, durationMs, variants: outcomes.map((o) => o!), shared, ...(applied !== undefined ? { applied } : {}) };
  } finally {
    for (const s of scratch) {
      // The scratch dir goes; so does its state (gc must not keep keys for it). Its hash memo stays for the next sweep.
      for (const id of s.eng.state.stageIds()) s.eng.state.delete(id);
      await s.eng.state.save().catch(() => {});
      await removeScratch(root, s.dir).catch(() => {});
    }
  }
}

/**
 * Materialises the recorded outputs of `stages` (of a succeeded variant) into
 * the real workspace, skipping those already there; returns one line per
 * output that could not be placed.
 */
async function applyVariant(
  graph: PipelineGraph,
  stages: readonly StageId[],
  summary: RunSummary,
  realEng: EngineHandles,
  saveState: (id: StageId, st: StageState) => Promise<void>,
): Promise<string[]> {
  const eng: EngineHandles = { ...realEng, deps: { ...realEng.deps, graph } };
  const problems: string[] = [];
  for (const id of stages) {
    const node: StageNode = graph.stages.get(id)!;
    const key = summary.stages.get(id)?.key;
    if (key === undefined) continue;
    for (const o of outputPaths(node)) if (!o.cache) problems.push(`${id}: output ${o.path} is not cached (cache: false), so it stays as it was in the workspace`);
    if (eng.state.get(id)?.key === key && eng.state.check(id)?.length === 0) continue;
    const rec = await eng.store.readRecord(key);
    if (!rec) {
      problems.push(`${id}: the record for key ${key.slice(0, 12)} is unreadable; its outputs were not placed`);
      continue;
    }
    const r = await restoreRecord(node, rec, eng);
    if (!r.ok) problems.push(`${id}: ${r.why}; its outputs were not placed`);
    else await saveState(id, r.state);
  }
  return problems;
}
