/**
 * Runs built-in stages in child processes (`child.ts`), so a stage that
 * crashes, leaks memory or blocks its event loop cannot take the engine with
 * it, and cancellation is a process-group kill. Messages from the child (log
 * lines, progress, the result) come back through callbacks.
 *
 * Warm hosts: a stage host that ran one of the light data stages
 * (`policy.ts` `SHARED_HOST_STAGES`: ingest, resize, partition) and left
 * nothing behind (no timers, handles or child processes, resident memory
 * under a limit) goes back to a `HostPool` and runs the next such stage,
 * instead of a new Node process starting and importing the stage code again.
 * Each stage still has one process to itself while it runs (never two at
 * once), its own abort signal, and the same guarantees: cancel (Ctrl-C,
 * `--timeout`) kills the host's process group, a crash is reported for the
 * stage that was running and the dead host is dropped (the next stage gets a
 * new one), a failed or cancelled stage's host is never reused. Every other
 * stage gets a fresh process that exits afterwards. `prewarm` starts hosts
 * before they are needed (the engine does it while an upstream stage runs).
 * Idle hosts do not keep the engine alive and exit when it exits or after
 * `idleMs`.
 *
 * It does not ingest, record or print: the runner does that with the outcome.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StageResult } from '../../stages/types.js';
import type { ChildMessage, ErrnoFields, ItemRef, RunRequest } from './protocol.js';
import { killGroup } from '../exec/cmd.js';
import { canShareHost, warmthOf } from './policy.js';

export { canShareHost, SHARED_HOST_STAGES, warmthOf } from './policy.js';
export type { ItemRef } from './protocol.js';

/** Absolute path of the compiled child entry point. */
export const childEntry: string = fileURLToPath(new URL('./child.js', import.meta.url));

/** One built-in stage run. */
export interface BuiltinRunSpec extends Omit<RunRequest, 'type'> {
  /** Aborting sends `cancel`, then kills the child's process group after `killGraceMs`. */
  readonly signal?: AbortSignal;
  readonly onLog?: (level: 'info' | 'warn', message: string) => void;
  readonly onProgress?: (done: number, total: number, label?: string) => void;
  /** Default 1000 ms. */
  readonly killGraceMs?: number;
  /**
   * Called with the host's pid (= process group id) when the stage starts in
   * it; the returned function is called when the stage is over (the host is
   * gone, or idle again in the pool).
   */
  readonly onSpawn?: (pid: number) => () => void;
  /** Item-cache entries the stage reports it has written (`wrote` messages), as they come. */
  readonly onWrote?: (files: readonly string[]) => void;
}

/**
 * How the run ended.
 * - `ok`: the stage returned `result`; its outputs are in `outDir`, plus the
 *   item-cache entries in `refs` when the request set `offerRefs`.
 * - `failed`: the stage threw (or was unknown); `message` is the error, `stack` for debugging, `errno` a system error's code and paths.
 * - `crashed`: the child died without answering (exit code or signal in `message`).
 * - `cancelled`: the signal was aborted.
 */
export type BuiltinOutcome =
  | { readonly kind: 'ok'; readonly result: StageResult; readonly refs?: readonly ItemRef[] }
  | { readonly kind: 'failed'; readonly message: string; readonly stack?: string; readonly errno?: ErrnoFields }
  | { readonly kind: 'crashed'; readonly message: string }
  | { readonly kind: 'cancelled' };

/** Options of a `HostPool`. */
export interface HostPoolOptions {
  /** An idle host exits after this long without a stage. Default 10 s. */
  readonly idleMs?: number;
  /** Keep hosts warm at all. Default true; false gives every stage a fresh process that exits after it. */
  readonly reuse?: boolean;
}

/** What a host forwards to the stage it is running. */
interface Job {
  readonly onLog?: (level: 'info' | 'warn', message: string) => void;
  message(m: ChildMessage): void;
  gone(code: number | null, sig: NodeJS.Signals | null, spawnError?: Error): void;
}

/** One stage host process. */
class Host {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** The stage running in it, if any. */
  job: Job | undefined;
  /** Retired (disconnected or killed): never handed out again. */
  retired = false;
  closed = false;
  idleTimer: NodeJS.Timeout | undefined;
  /** Resolves once the process has exited and its output pipes are closed. */
  readonly exited: Promise<void>;
  private markExited!: () => void;

  /** Stages it was started to prepare (`--prepare`). */
  readonly prepared: ReadonlySet<string>;
  /** The warmth (policy.ts `warmthOf`) of the stages it prepared or ran. */
  readonly warm = new Set<string>();

  /** `prepare`: built-in stages the host may be given next; it loads them while idle (child.ts `--prepare`). */
  constructor(onIdleGone: (h: Host) => void, prepare: readonly string[] = []) {
    this.prepared = new Set(prepare);
    for (const p of prepare) this.ran(p);
    this.exited = new Promise((r) => (this.markExited = r));
    this.child = fork(childEntry, prepare.length > 0 ? [`--prepare=${prepare.join(',')}`] : [], {
      detached: true,
      // A larger young generation: a data stage over 10k images allocates many short-lived objects per image
      // (resize over 12.9k cached images: ~10% less CPU with 32 MiB, bench-style A/B in-process).
      execArgv: ['--max-semi-space-size=32'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.pid = this.child.pid;
    // A stage must not print, but if a library does, keep it as log lines rather than corrupt the terminal.
    for (const [stream, level] of [
      [this.child.stdout, 'info'],
      [this.child.stderr, 'warn'],
    ] as const) {
      let pending = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          this.job?.onLog?.(level, pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      });
      stream?.on('end', () => {
        if (pending) this.job?.onLog?.(level, pending);
        pending = '';
      });
    }
    this.child.on('message', (m: ChildMessage) => this.job?.message(m));
    const gone = (code: number | null, sig: NodeJS.Signals | null, e?: Error): void => {
      if (this.closed) return;
      this.closed = true;
      this.retired = true;
      clearTimeout(this.idleTimer);
      if (this.pid !== undefined) killGroup(this.pid, 'SIGKILL', false); // stray grandchildren
      const job = this.job;
      this.job = undefined;
      if (job) job.gone(code, sig, e);
      else onIdleGone(this);
      this.markExited();
    };
    this.child.on('error', (e) => gone(null, null, e));
    // Gone once it has exited AND its output pipes are closed, so every IPC message and output line has been
    // delivered first. ('close' means the same, but Node never emits it after the parent called disconnect().)
    let exited: [number | null, NodeJS.Signals | null] | undefined;
    let openPipes = [this.child.stdout, this.child.stderr].filter((x) => x !== null).length;
    const maybeGone = (): void => {
      if (exited !== undefined && openPipes === 0) gone(...exited);
    };
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.on('close', () => {
        openPipes--;
        maybeGone();
      });
    }
    this.child.on('exit', (code, sig) => {
      exited = [code, sig];
      maybeGone();
    });
    this.child.on('close', (code, sig) => gone(code, sig));
  }

  /** Notes that `stageName` ran (or was prepared) here: its warmth stays in the process. */
  ran(stageName: string): void {
    const w = warmthOf(stageName);
    if (w !== undefined) this.warm.add(w);
  }

  /** Whether it can take a stage now. */
  get usable(): boolean {
    return !this.retired && !this.closed && this.child.connected && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Lets the engine exit while this host idles (or keeps it alive while a stage runs). */
  setRef(on: boolean): void {
    const handles = [this.child, this.child.channel, this.child.stdout, this.child.stderr] as ({ ref?(): void; unref?(): void } | null | undefined)[];
    for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
  }

  /** Kills its whole process group now. */
  kill(): void {
    this.retired = true;
    if (this.pid !== undefined && !this.closed && this.child.exitCode === null && this.child.signalCode === null) killGroup(this.pid, 'SIGKILL');
  }

  /** No more stages: disconnect (the child exits once idle); killed if still there after `graceMs`. */
  retire(graceMs = 1000): void {
    if (this.retired) return;
    this.retired = true;
    clearTimeout(this.idleTimer);
    if (this.child.connected) this.child.disconnect();
    const t = setTimeout(() => this.kill(), graceMs);
    t.unref();
    this.child.once('exit', () => clearTimeout(t));
  }
}

/** A set of stage hosts kept warm between stages (module doc). */
export class HostPool {
  private readonly idle: Host[] = [];
  /** Exits of hosts retired by `retireIdle`, for `close` to wait for. */
  private readonly exiting: Promise<void>[] = [];
  private readonly idleMs: number;
  private readonly reuse: boolean;
  /** Hosts forked so far (for tests and benchmarks). */
  spawned = 0;

  constructor(opts: HostPoolOptions = {}) {
    this.idleMs = opts.idleMs ?? 10_000;
    this.reuse = opts.reuse ?? true;
  }

  /** Idle hosts right now. */
  get idleCount(): number {
    return this.idle.filter((h) => h.usable).length;
  }

  /**
   * Starts hosts until `count` are idle (no-op when reuse is off), so stages
   * about to start skip the process start-up; returns how many it started.
   * Each new host loads the modules of the `prepare` stages (those that may
   * share a host) while it waits. An unused one exits after `idleMs`.
   */
  prewarm(count: number, prepare: readonly string[] = []): number {
    if (!this.reuse) return 0;
    let started = 0;
    while (this.idleCount < count) {
      this.makeIdle(this.spawn(prepare.filter(canShareHost)));
      started++;
    }
    return started;
  }

  /**
   * Retires every idle host (running stages are not touched) and resolves once
   * they have exited, so the engine's own resource usage includes theirs and
   * it leaves no process behind. The runner calls it when a run is over; the
   * pool stays usable (a later stage forks again).
   */
  async close(): Promise<void> {
    this.retireIdle();
    const exiting = this.exiting.splice(0);
    await Promise.all(exiting);
  }

  /**
   * Retires every idle host now (e.g. once no stage left in a run can use
   * one), without waiting: their exit overlaps the engine's remaining work,
   * and `close` still waits for it.
   */
  retireIdle(): void {
    for (const h of this.idle.splice(0)) {
      clearTimeout(h.idleTimer);
      h.setRef(true); // `close` waits for it
      h.retire();
      this.exiting.push(h.exited);
    }
  }

  /** Runs the stage in a warm host when it may share one, else in a fresh process; never throws for anything the stage does. */
  run(spec: BuiltinRunSpec): Promise<BuiltinOutcome> {
    if (spec.signal?.aborted) return Promise.resolve({ kind: 'cancelled' });
    const { signal, onLog, onProgress, onSpawn, onWrote, killGraceMs = 1000, ...rest } = spec;
    const request: RunRequest = { type: 'run', ...rest };
    const shared = this.reuse && canShareHost(spec.stageName);
    const host = (shared ? this.takeIdle(spec.stageName) : undefined) ?? this.spawn();
    host.ran(spec.stageName);
    clearTimeout(host.idleTimer);
    host.setRef(true);
    return new Promise((resolve) => {
      let forget: (() => void) | undefined;
      let answer: BuiltinOutcome | undefined;
      let cancelled = false;
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const settle = (o: BuiltinOutcome): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        for (const t of timers) clearTimeout(t);
        forget?.();
        resolve(o);
      };
      const onAbort = (): void => {
        cancelled = true;
        if (host.child.connected) host.child.send({ type: 'cancel' });
        timers.push(setTimeout(() => host.kill(), killGraceMs));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      host.job = {
        onLog,
        message: (m) => {
          switch (m.type) {
            case 'log':
              onLog?.(m.level, m.message);
              break;
            case 'progress':
              onProgress?.(m.done, m.total, m.label);
              break;
            case 'wrote':
              onWrote?.(m.files);
              break;
            case 'result':
              answer = { kind: 'ok', result: m.result, ...(m.refs ? { refs: m.refs } : {}) };
              if (shared && m.reusable === true && !cancelled && !signal?.aborted) {
                // Done, and clean: the host takes the next stage; the outcome is final now.
                host.job = undefined;
                this.makeIdle(host);
                settle(answer);
              } else {
                // The stage is done; the host exits (killed after a grace period if stray handles keep it alive).
                host.retire();
              }
              break;
            case 'error':
              answer = { kind: 'failed', message: m.message, ...(m.stack ? { stack: m.stack } : {}), ...(m.errno ? { errno: m.errno } : {}) };
              host.retire();
              break;
          }
        },
        gone: (code, sig, spawnError) => {
          if (cancelled) return settle({ kind: 'cancelled' });
          if (answer) return settle(answer);
          if (spawnError) return settle({ kind: 'crashed', message: `could not start the stage host: ${spawnError.message}` });
          settle({ kind: 'crashed', message: sig ? `stage process killed by ${sig}` : `stage process exited with code ${code} without a result` });
        },
      };
      // After the abort listener is in place, so an abort from inside onSpawn is seen.
      forget = host.pid !== undefined ? onSpawn?.(host.pid) : undefined;
      try {
        host.child.send(request);
      } catch {
        host.kill(); // disconnected meanwhile: its exit reports the crash
      }
      if (signal?.aborted && !cancelled) onAbort();
    });
  }

  private spawn(prepare: readonly string[] = []): Host {
    this.spawned++;
    return new Host((h) => this.drop(h), prepare);
  }

  /**
   * The idle host that suits `stageName` best: one prepared for it, else one
   * of its warmth (policy.ts), else for a stage of no warmth one without any
   * (leaving warm hosts to the stages that use their warmth), else the most
   * recently idle.
   */
  private takeIdle(stageName: string): Host | undefined {
    const warmth = warmthOf(stageName);
    let best: Host | undefined;
    let bestScore = -1;
    // From the most recently idle down: ties go to it.
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const h = this.idle[i]!;
      if (!h.usable) continue;
      const score = (h.prepared.has(stageName) ? 4 : 0) + (warmth !== undefined && h.warm.has(warmth) ? 2 : 0) + (warmth === undefined && h.warm.size === 0 ? 1 : 0);
      if (score > bestScore) {
        best = h;
        bestScore = score;
      }
    }
    // Drop the chosen one and any that went away meanwhile.
    for (let i = this.idle.length - 1; i >= 0; i--) if (this.idle[i] === best || !this.idle[i]!.usable) this.idle.splice(i, 1);
    return best;
  }

  private makeIdle(h: Host): void {
    h.setRef(false);
    h.idleTimer = setTimeout(() => {
      this.drop(h);
      h.retire();
    }, this.idleMs);
    h.idleTimer.unref();
    this.idle.push(h);
  }

  private drop(h: Host): void {
    const i = this.idle.indexOf(h);
    if (i >= 0) this.idle.splice(i, 1);
  }
}

/**
 * The engine process's pool (one per process, like `http.globalAgent`): the
 * runner, watch mode and sweeps all share it, so a host warmed by one stage
 * serves the next wherever it comes from.
 */
export const stageHosts: HostPool = new HostPool();

/** Runs the stage through `stageHosts` (see `HostPool.run`). */
export function runBuiltin(spec: BuiltinRunSpec): Promise<BuiltinOutcome> {
  return stageHosts.run(spec);
}
