/**
 * Messages between the engine and the child process that runs one built-in
 * stage (`child.ts`). JSON over Node's IPC channel. Types only.
 */
import type { StageResult } from '../../stages/types.js';
import type { JsonObject } from '../pipeline.js';

/** Engine → child: run this stage once. */
export interface RunRequest {
  readonly type: 'run';
  readonly stageId: string;
  /** Registry name (`uses:`). */
  readonly stageName: string;
  readonly params: JsonObject;
  /** Input slot → absolute directory of the upstream outputs. */
  readonly inputs: Readonly<Record<string, string>>;
  /** Absolute, empty staging directory the stage writes into. */
  readonly outDir: string;
  readonly workspace: string;
  readonly cacheDir: string;
  readonly seed: number;
}

/** Engine → child: abort the stage's signal (the engine kills the process group shortly after). */
export interface CancelRequest {
  readonly type: 'cancel';
}

/** Every engine → child message. */
export type HostRequest = RunRequest | CancelRequest;

/** Child → engine messages. */
export type ChildMessage =
  | { readonly type: 'log'; readonly level: 'info' | 'warn'; readonly message: string }
  | { readonly type: 'progress'; readonly done: number; readonly total: number; readonly label?: string }
  | { readonly type: 'result'; readonly result: StageResult }
  /** The stage threw or could not be found; `message` is user-facing, `stack` for PIPELINE_DEBUG. */
  | { readonly type: 'error'; readonly message: string; readonly stack?: string };
