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
  /**
   * In a sweep (`pipeline run -S a=1,2`): the label of the variant the event
   * belongs to, e.g. `train.lr=0.1 model.backbone=simple_cnn`. Absent outside
   * sweeps, and on events of stages shared by every variant (they run once, in
   * the workspace) and of the sweep as a whole.
   */
  readonly variant?: string;
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

/** One experiment of a sweep. */
export interface SweepVariant {
  /** 1-based position in the sweep (cartesian order, last axis fastest). */
  readonly index: number;
  /** `path=value` pairs joined by spaces; the `variant` field of its events. */
  readonly label: string;
  /** The sweep values this variant sets. */
  readonly overrides: Readonly<Record<string, unknown>>;
}

/** A sweep begins (after `run-start`): its variants and the stages they all share. */
export interface SweepStartEvent extends EventBase {
  readonly type: 'sweep-start';
  /** The id every experiment of this sweep records. */
  readonly sweep: string;
  readonly variants: readonly SweepVariant[];
  /** Stages identical in every variant: they run once, in the workspace. */
  readonly shared: readonly StageId[];
}

/** Every stage of one variant has ended (and its experiment was recorded, if it was). */
export interface VariantEndEvent extends EventBase {
  readonly type: 'variant-end';
  readonly variant: string;
  readonly index: number;
  /**
   * - `succeeded`: every stage is ran/restored/fresh;
   * - `failed`: a stage failed (or was skipped or not started because of it);
   * - `cancelled`: cut short by an abort (Ctrl-C); not recorded.
   */
  readonly status: 'succeeded' | 'failed' | 'cancelled';
  /** From the sweep's start to this variant's last stage end. */
  readonly durationMs: number;
  /** Id of the experiment recorded for it, when one was. */
  readonly experiment?: string;
  /** Its metrics, flattened `<stage>.<metric>`. */
  readonly metrics: Readonly<Record<string, number>>;
}

/** After the sweep: the chosen variant's outputs were materialised into the workspace. */
export interface SweepApplyEvent extends EventBase {
  readonly type: 'sweep-apply';
  readonly variant: string;
  readonly index: number;
  /** Stages whose outputs were restored into the workspace (or already there). */
  readonly stages: readonly StageId[];
  /** Outputs that could not be placed, one line each (e.g. `cache: false` outputs, which only exist where they ran). */
  readonly problems: readonly string[];
}

/** Every event a run emits. */
export type RunEvent =
  | RunStartEvent
  | StagePlanEvent
  | StageStartEvent
  | StageOutputEvent
  | StageProgressEvent
  | StageEndEvent
  | RunEndEvent
  | SweepStartEvent
  | VariantEndEvent
  | SweepApplyEvent;

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
