/**
 * Messages between the engine and a stage host: a child process
 * (`child.ts`) that runs built-in stages one at a time. JSON over Node's IPC
 * channel. Types only.
 */
import type { StageResult } from '../../stages/types.js';
import type { JsonObject } from '../pipeline.js';

/** Engine → child: run this stage (only while the host is idle). */
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
  /**
   * Offer `ItemCache.refer` to the stage (default false): the stage may then
   * name item-cache entries as output files instead of writing or linking
   * them into `outDir`, and the result lists them in `refs`. Only a caller
   * that stores `refs` with the outputs (the engine, `CacheStore.ingestStaging`)
   * may set it; anyone reading `outDir` alone would miss those files.
   */
  readonly offerRefs?: boolean;
  /** A file holding `StageContext.depListings` (`dep-files.ts`), which the engine removes once the stage is over. */
  readonly depListingsFile?: string;
}

/**
 * A `DepFiles` in a `depListingsFile`: paths joined by NUL (which no path
 * contains), hashes concatenated (each 64 hex digits). Ten thousand small
 * strings cost JSON more, on both ends, than two long ones.
 */
export interface EncodedDepFiles {
  readonly rels: string;
  readonly sha256: string;
  readonly sizes: readonly number[];
}

/** Engine → child: abort the running stage's signal (the engine kills the process group shortly after). */
export interface CancelRequest {
  readonly type: 'cancel';
}

/** Every engine → child message. */
export type HostRequest = RunRequest | CancelRequest;

/**
 * An output file that is an item-cache entry (`ItemCache.refer`): `path`
 * (relative to the staging dir, `/`-separated) holds the bytes of entry
 * `key` of the stage's item cache `<cacheDir>/items/<stageName>/`.
 */
export interface ItemRef {
  readonly path: string;
  readonly key: string;
  /**
   * The entry as the stage found it, `[dev, ino, size, mtimeMs]` (from the
   * lstat `refer` made anyway), so the engine need not stat it again. Only a
   * hint: the engine uses it when the object the inode memo names for it is
   * that very inode, and stats the entry itself otherwise (`ItemRefs`).
   */
  readonly stat?: ItemStat;
  /**
   * The sha256 (hex) of the entry file's bytes, when the stage host wrote the
   * entry in this run (`ItemCache.put`, hashed from the bytes in memory as it
   * wrote them). With `stat`, the engine adopts the entry as that object
   * without reading it back, provided the entry is still that inode, size
   * and mtime.
   */
  readonly sha256?: string;
}

/** `[dev, ino, size, mtimeMs]` of an item-cache entry (`ItemRef.stat`). */
export type ItemStat = readonly [number, number, number, number];

/** Child → engine messages. */
export type ChildMessage =
  | { readonly type: 'log'; readonly level: 'info' | 'warn'; readonly message: string }
  | { readonly type: 'progress'; readonly done: number; readonly total: number; readonly label?: string }
  /**
   * Item-cache entries (absolute paths) the stage has just written (only when
   * the request set `offerRefs`): the engine may flush them to disk while the
   * stage goes on, rather than all at once after it (`BuiltinRunSpec.onWrote`).
   */
  | { readonly type: 'wrote'; readonly files: readonly string[] }
  | {
      readonly type: 'result';
      readonly result: StageResult;
      /** Output files named by `ItemCache.refer` (only when the request set `offerRefs`). */
      readonly refs?: readonly ItemRef[];
      /** The host may take another stage: see `child.ts` `reusable`. Absent: no. */
      readonly reusable?: boolean;
    }
  /**
   * The stage threw or could not be found; `message` is user-facing, `stack`
   * for PIPELINE_DEBUG, and `errno` the fs fields of a thrown system error (so
   * the engine tells a full disk from a bug without parsing `message`).
   */
  | { readonly type: 'error'; readonly message: string; readonly stack?: string; readonly errno?: ErrnoFields };

/** The fields of a Node system error (`NodeJS.ErrnoException`) that say what failed where; `dest` is a copy's target. */
export interface ErrnoFields {
  readonly code: string;
  readonly path?: string;
  readonly dest?: string;
}
