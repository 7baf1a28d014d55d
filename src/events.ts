/**
 * Run events: the one stream of facts a run produces. The runner emits them;
 * reporters (`src/log/human.ts`, `src/log/ndjson.ts`), the experiment recorder
 * and watch mode consume them. Events are plain JSON-serialisable data, so
 * `--json` writes them verbatim as NDJSON.
 *
 * This module holds types and tiny pure helpers only: it neither prints nor
 * runs anything.
 */
import type { StageId } from './pipeline.js';

/**
 * How a stage ended in one run.
 * - `ran`: the stage executed and its outputs were recorded.
 * - `restored`: a record for its key existed; outputs were materialised from the cache without running.
 * - `fresh`: the workspace already held the outputs of the current key; nothing was done.
 * - `failed`: it executed (or tried to restore) and failed; no record was written.
 * - `cancelled`: the run was aborted before or while it ran; no record was written.
 * - `skipped-upstream-failed`: an upstream stage failed or was cancelled, so it never started.
 */
export const stageStatuses = ['ran', 'restored', 'fresh', 'failed', 'cancelled', 'skipped-upstream-failed'] as const;
/** See `stageStatuses`. */
export type StageStatus = (typeof stageStatuses)[number];

/**
 * What the planner decided for a stage (`--dry`, `run-start` event, `pipeline status`).
 * - `fresh`: workspace outputs match the current key.
 * - `restore`: a record for the current key exists; outputs will be materialised.
 * - `run`: no record for the current key (or forced); it will execute.
 * - `unknown`: the key depends on outputs of an upstream stage that has not run yet.
 */
export type PlannedAction = 'fresh' | 'restore' | 'run' | 'unknown';

/** Why a stage will run, in one short line (e.g. `param train.lr changed: 0.01 → 0.001`). */
export type Reason = string;

/** Common fields of every event. */
interface EventBase {
  /** Milliseconds since the Unix epoch when the event was emitted. */
  readonly time: number;
}

/** The run begins. */
export interface RunStartEvent extends EventBase {
  readonly type: 'run-start';
  readonly pipeline: string;
  /** Absolute pipeline file. */
  readonly file: string;
  /** Stages in this run (after `--stage` selection), in topological order. */
  readonly stages: readonly StageId[];
  readonly jobs: number;
  readonly dry: boolean;
}

/** The planner's decision for one stage (emitted when its key becomes known, before any work). */
export interface StagePlanEvent extends EventBase {
  readonly type: 'stage-plan';
  readonly stage: StageId;
  readonly action: PlannedAction;
  readonly key?: string;
  readonly reason?: Reason;
}

/** A stage begins work: executing (`run`) or materialising outputs (`restore`). */
export interface StageStartEvent extends EventBase {
  readonly type: 'stage-start';
  readonly stage: StageId;
  readonly action: 'run' | 'restore';
  readonly key: string;
  readonly reason?: Reason;
}

/** One line a `cmd` stage wrote to stdout/stderr, or a message a built-in logged. */
export interface StageOutputEvent extends EventBase {
  readonly type: 'stage-output';
  readonly stage: StageId;
  /** `stdout`/`stderr` for commands; `info`/`warn` for built-in log calls. */
  readonly stream: 'stdout' | 'stderr' | 'info' | 'warn';
  readonly line: string;
}

/** Progress of a long loop in a built-in. */
export interface StageProgressEvent extends EventBase {
  readonly type: 'stage-progress';
  readonly stage: StageId;
  readonly done: number;
  readonly total: number;
  readonly label?: string;
}

/** A stage finished (whatever the outcome). */
export interface StageEndEvent extends EventBase {
  readonly type: 'stage-end';
  readonly stage: StageId;
  readonly status: StageStatus;
  /** Wall time of the work (0 for fresh). */
  readonly durationMs: number;
  readonly key?: string;
  /** For `failed`/`cancelled`/`skipped-upstream-failed`: what happened, one line, naming the stage. */
  readonly error?: string;
  readonly metrics?: Readonly<Record<string, number>>;
  readonly summary?: string;
}

/** The run is over. */
export interface RunEndEvent extends EventBase {
  readonly type: 'run-end';
  /** `ok` when every stage is ran/restored/fresh. */
  readonly ok: boolean;
  readonly cancelled: boolean;
  readonly durationMs: number;
  /** Count of stages per final status. */
  readonly counts: Readonly<Partial<Record<StageStatus, number>>>;
}

/** Every event a run emits. */
export type RunEvent =
  | RunStartEvent
  | StagePlanEvent
  | StageStartEvent
  | StageOutputEvent
  | StageProgressEvent
  | StageEndEvent
  | RunEndEvent;

/** An event before its timestamp is stamped. */
export type RunEventInit = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 'time'> : never) : never;

/** A consumer of run events. Must not throw; must be quick (it runs on the scheduler's thread). */
export type EventSink = (e: RunEvent) => void;

/** Fans one event out to several sinks, stamping the time. */
export function eventEmitter(sinks: readonly (EventSink | undefined)[]): (e: RunEventInit) => void {
  const live = sinks.filter((s): s is EventSink => s !== undefined);
  return (e) => {
    const stamped = { ...e, time: Date.now() } as RunEvent;
    for (const s of live) s(stamped);
  };
}
