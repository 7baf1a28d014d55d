/**
 * The DAG scheduler: starts each node as soon as all of its upstream nodes
 * succeeded, runs the expensive part of each node under a job limit (p-limit,
 * `--jobs N`) and named resource pools (`resources: {gpu: 1}`), and applies the
 * failure policy (`--keep-going` or stop-starting-new-work, per failure group:
 * a sweep's variants fail independently) and cancellation.
 *
 * A node's task has two phases. The first (deciding: hashing, looking up
 * records) runs as soon as its upstream is done, without a job slot. Only when
 * the task calls `withSlot(fn)` does it wait for a job slot and its resources;
 * so fresh stages never queue behind running ones.
 *
 * It does not know what a stage is, never touches files or processes, and
 * never prints: the runner supplies the task function.
 */
import pLimit from 'p-limit';
import type { StageId } from './pipeline.js';

/** One node to schedule. */
export interface SchedulerNode {
  readonly id: StageId;
  /** Upstream node ids; ids not among the scheduled nodes are ignored (treated as satisfied). */
  readonly needs: readonly StageId[];
  /** Resource units held while the node's slot is held, e.g. `{gpu: 1}`. */
  readonly resources: Readonly<Record<string, number>>;
  /**
   * When false, an abort does not cancel the node once it holds its slot: its
   * task keeps a never-aborted signal and is allowed to finish and record.
   */
  readonly interrupt: boolean;
  /**
   * Failure domain (e.g. one sweep variant). Without `keepGoing`, a failed node
   * stops new starts only of nodes in its own group; a failed node without a
   * group stops everything. Default: no group (one run = one domain).
   */
  readonly group?: string;
}

/** What a task reports. */
export type TaskOutcome = 'ok' | 'failed' | 'cancelled';

/**
 * Final state of a scheduled node.
 * - `ok` / `failed` / `cancelled`: what its task returned (`cancelled` also when it never started
 *   because the run was aborted or stopped after a failure).
 * - `skipped-upstream-failed`: an upstream node failed, was cancelled or was itself skipped.
 */
export type NodeOutcome = TaskOutcome | 'skipped-upstream-failed';

/** What a task may use. */
export interface TaskContext {
  /**
   * Waits for the node's resources and a job slot, then runs `fn`. The slot and
   * resources are held until the task returns (a second call reuses them).
   * Resolves `undefined` without calling `fn` when the run was aborted or
   * stopped (after a failure without `--keep-going`) before the slot was granted.
   */
  withSlot<T>(fn: () => Promise<T>): Promise<T | undefined>;
  /**
   * Aborted on cancellation. For nodes with `interrupt: false`, it is aborted only
   * if the abort arrives before the slot is granted.
   */
  readonly signal: AbortSignal;
}

/** Scheduler inputs, bundled (lage `SimpleSchedulerOptions`). */
export interface SchedulerOptions {
  /** Nodes in topological order; ready nodes start in this order. */
  readonly nodes: readonly SchedulerNode[];
  /** Maximum concurrently held job slots (>= 1). */
  readonly jobs: number;
  /** Units per resource pool; pools not listed have 1 unit. A request above capacity takes the whole pool. */
  readonly capacities?: Readonly<Record<string, number>>;
  /** Keep starting independent nodes after a failure. */
  readonly keepGoing: boolean;
  /** Aborting stops new starts and cancels interruptible running tasks. */
  readonly signal?: AbortSignal;
  /** Runs one node. Must not throw (a throw is treated as `failed` and reported via `onTaskError`). */
  task(id: StageId, ctx: TaskContext): Promise<TaskOutcome>;
  /** Called when a node ends without its task running, or its task threw. */
  onNotRun?(id: StageId, outcome: NodeOutcome, because: string): void;
  onTaskError?(id: StageId, error: unknown): void;
}

/** A set of named counters with atomic all-or-nothing acquisition, FIFO with bypass. */
class ResourcePools {
  private readonly free = new Map<string, number>();
  private readonly waiting: { need: [string, number][]; grant: () => void }[] = [];

  constructor(private readonly capacities: Readonly<Record<string, number>>) {}

  private capacity(name: string): number {
    return Math.max(1, this.capacities[name] ?? 1);
  }

  private clamp(need: Readonly<Record<string, number>>): [string, number][] {
    return Object.entries(need)
      .filter(([, n]) => n > 0)
      .map(([name, n]) => [name, Math.min(n, this.capacity(name))]);
  }

  private fits(need: [string, number][]): boolean {
    return need.every(([name, n]) => (this.free.get(name) ?? this.capacity(name)) >= n);
  }

  private take(need: [string, number][]): void {
    for (const [name, n] of need) this.free.set(name, (this.free.get(name) ?? this.capacity(name)) - n);
  }

  acquire(request: Readonly<Record<string, number>>): Promise<() => void> {
    const need = this.clamp(request);
    const release = (): void => {
      for (const [name, n] of need) this.free.set(name, (this.free.get(name) ?? 0) + n);
      this.drain();
    };
    if (this.waiting.length === 0 && this.fits(need)) {
      this.take(need);
      return Promise.resolve(release);
    }
    return new Promise((resolve) => {
      this.waiting.push({ need, grant: () => resolve(release) });
      this.drain();
    });
  }

  private drain(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i];
      if (this.fits(w.need)) {
        this.take(w.need);
        this.waiting.splice(i, 1);
        w.grant();
      } else i++;
    }
  }
}

/** Runs the nodes; resolves with every node's outcome once nothing is running. */
export async function schedule(opts: SchedulerOptions): Promise<Map<StageId, NodeOutcome>> {
  const ids = new Set(opts.nodes.map((n) => n.id));
  const outcomes = new Map<StageId, NodeOutcome>();
  const limit = pLimit(Math.max(1, Math.floor(opts.jobs)));
  const pools = new ResourcePools(opts.capacities ?? {});
  const runSignal = opts.signal ?? new AbortController().signal;
  let stoppedAll: string | undefined; // why no new work starts (failure without --keep-going)
  const stoppedGroups = new Map<string, string>(); // the same, per failure group
  const stoppedFor = (node: SchedulerNode): string | undefined => stoppedAll ?? (node.group !== undefined ? stoppedGroups.get(node.group) : undefined);

  const upstream = new Map<StageId, StageId[]>();
  const downstream = new Map<StageId, StageId[]>();
  for (const n of opts.nodes) {
    const ups = [...new Set(n.needs)].filter((u) => ids.has(u) && u !== n.id);
    upstream.set(n.id, ups);
    for (const u of ups) (downstream.get(u) ?? downstream.set(u, []).get(u)!).push(n.id);
  }
  const byId = new Map(opts.nodes.map((n) => [n.id, n]));
  const started = new Set<StageId>();
  const running = new Set<Promise<void>>();

  const finishWithoutRunning = (id: StageId, outcome: NodeOutcome, because: string): void => {
    if (outcomes.has(id)) return;
    outcomes.set(id, outcome);
    opts.onNotRun?.(id, outcome, because);
  };

  const start = (id: StageId): void => {
    started.add(id);
    const node = byId.get(id)!;
    if (runSignal.aborted) return finishWithoutRunning(id, 'cancelled', 'run cancelled');
    const stopped = stoppedFor(node);
    if (stopped !== undefined) return finishWithoutRunning(id, 'cancelled', stopped);
    let slotGranted = false;
    const taskSignal = node.interrupt
      ? runSignal
      : (() => {
          // Aborted only if the abort comes before the slot.
          const c = new AbortController();
          const onAbort = (): void => {
            if (!slotGranted) c.abort(runSignal.reason);
          };
          runSignal.addEventListener('abort', onAbort, { once: true });
          return c.signal;
        })();
    let releaseSlot: (() => void) | undefined;
    const ctx: TaskContext = {
      signal: taskSignal,
      async withSlot<T>(fn: () => Promise<T>): Promise<T | undefined> {
        const cancelledNow = (): boolean => runSignal.aborted || stoppedFor(node) !== undefined;
        if (releaseSlot === undefined) {
          if (cancelledNow()) return undefined;
          const releaseResources = await pools.acquire(node.resources);
          // The job slot is held until the task returns, so a failure is known
          // (and stops new starts) before the slot passes to a queued node.
          const releaseJob = await new Promise<() => void>((grant) => {
            void limit(() => new Promise<void>((done) => grant(done)));
          });
          releaseSlot = () => {
            releaseJob();
            releaseResources();
          };
          if (cancelledNow()) return undefined;
          slotGranted = true;
        }
        return fn();
      },
    };
    const p = (async () => {
      let outcome: TaskOutcome;
      try {
        outcome = await opts.task(id, ctx);
      } catch (e) {
        opts.onTaskError?.(id, e);
        outcome = 'failed';
      }
      outcomes.set(id, outcome);
      if (outcome === 'failed' && !opts.keepGoing) {
        const why = `not started: stage ${id} failed`;
        if (node.group === undefined) stoppedAll ??= why;
        else if (!stoppedGroups.has(node.group)) stoppedGroups.set(node.group, why);
      }
      releaseSlot?.();
      settle(id);
    })();
    running.add(p);
    void p.finally(() => running.delete(p));
  };

  /** After `id` has an outcome, start or skip its dependents. */
  const settle = (id: StageId): void => {
    for (const d of downstream.get(id) ?? []) {
      if (started.has(d) || outcomes.has(d)) continue;
      const ups = upstream.get(d)!;
      const bad = ups.find((u) => {
        const o = outcomes.get(u);
        return o !== undefined && o !== 'ok';
      });
      if (bad !== undefined) {
        const o = outcomes.get(bad)!;
        if (o === 'cancelled') finishWithoutRunning(d, 'cancelled', runSignal.aborted ? 'run cancelled' : (stoppedFor(byId.get(d)!) ?? `upstream stage ${bad} cancelled`));
        else finishWithoutRunning(d, 'skipped-upstream-failed', `upstream stage ${bad} ${o === 'skipped-upstream-failed' ? 'was skipped' : o}`);
        started.add(d);
        settle(d);
        continue;
      }
      if (ups.every((u) => outcomes.get(u) === 'ok')) start(d);
    }
  };

  for (const n of opts.nodes) if (upstream.get(n.id)!.length === 0) start(n.id);
  while (running.size > 0) await Promise.race(running);
  // Anything never reached (cannot happen with a DAG, but keep every id accounted for).
  for (const n of opts.nodes) if (!outcomes.has(n.id)) finishWithoutRunning(n.id, 'cancelled', 'not reached');
  return outcomes;
}
