/**
 * The built-in stage interface. A built-in stage is a plain object; the engine
 * validates its params against `schemas/stages/<name>.json` (defaults applied),
 * computes its key, gives it an empty output directory and, on success, stores
 * that directory in the cache. A stage's `run` writes only under `ctx.outDir`
 * (and through `ctx.items`), keeps no module state, and never prints: it talks
 * through `ctx.log`.
 *
 * This module holds types only.
 */

/** Where a stage reports progress and messages. Implemented by the engine (over IPC when the stage runs in a child). */
export interface StageLogger {
  info(message: string): void;
  warn(message: string): void;
  /** Progress of a long loop: `done` of `total` items; the engine renders bars with items/s and ETA. */
  progress(done: number, total: number, label?: string): void;
}

/**
 * A per-item cache shared by all runs of one stage kind (e.g. resized pixels per
 * (image hash, resize params)). Keys are hex strings the stage derives from
 * content hashes and the params that affect the item; values are opaque bytes.
 * Writes are atomic; a missing or corrupt entry reads as `undefined`.
 */
export interface ItemCache {
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, value: Buffer): Promise<void>;
  /**
   * Optional (added by the data stages, issue 3): hard-links the stored entry
   * for `key` to the new path `dest` (e.g. inside `ctx.outDir`) without
   * reading it. The linked file holds the value followed by the 32-byte
   * sha256 of the value (the per-image pack layout of stages/lib/shards.ts)
   * and is read-only: never write into it. Resolves false (a miss) when there
   * is no entry whose value has `valueBytes` bytes. Implementations that
   * cannot link may copy.
   */
  link?(key: string, dest: string, valueBytes: number): Promise<boolean>;
  /**
   * Optional (issue 3; offered only by the engine's stage host): declares
   * that the output file `rel` (relative to `ctx.outDir`, `/`-separated) is
   * the stored entry for `key`, without creating anything in `ctx.outDir`.
   * The engine stores that entry (value + 32-byte sha256 trailer, as `link`
   * would have placed it) as the output file, sharing its inode, so a stage
   * whose outputs are mostly cached items costs one stat per item instead of
   * a link now and an unlink later. Returns false (a miss) when there is no
   * entry whose value has `valueBytes` bytes. Where it is absent (a stage run
   * outside the engine, e.g. by tests), use `link`.
   */
  refer?(key: string, rel: string, valueBytes: number): boolean;
}

/** Everything a stage run may use. */
export interface StageContext<P> {
  /** The stage's id in the pipeline (for messages). */
  readonly stageId: string;
  /** Params from `with:`, validated against the stage's schema, with defaults applied. */
  readonly params: P;
  /** Input slot → absolute directory holding that upstream stage's outputs (read-only). */
  readonly inputs: Readonly<Record<string, string>>;
  /** Absolute, initially empty directory; the stage's only output location. */
  readonly outDir: string;
  /** Absolute workspace directory; user paths in params resolve against it. */
  readonly workspace: string;
  /** Per-item cache for this stage kind. */
  readonly items: ItemCache;
  /** Absolute directory of the shared cache (for caches a stage manages itself, e.g. downloaded weights). */
  readonly cacheDir: string;
  /** Seed for every random choice; stages never call Math.random. */
  readonly seed: number;
  readonly log: StageLogger;
  /** Aborted when the run is cancelled (Ctrl-C, watch restart); long loops should check it. */
  readonly signal: AbortSignal;
  /**
   * Optional (added with issue 3's incremental work): for a stage that sets
   * `usesDepListings`, the engine's listing of each directory among its
   * `fileDeps`, by the directory's absolute path: the very files and hashes
   * its key was computed from. Present only for a directory whose walk met
   * nothing but regular files and directories it could read (no symbolic
   * link, special file, `.git` directory or unreadable entry), so that a walk
   * of the stage's own, whatever it does with links, would find the same
   * files. A stage may use it instead of walking, stating and hashing a
   * 10k-file directory a second time. Absent: walk as before.
   */
  readonly depListings?: Readonly<Record<string, DepFiles>>;
}

/** The files of one directory dependency as the engine hashed them (`StageContext.depListings`). */
export interface DepFiles {
  /** `/`-separated paths relative to the directory, in the engine's canonical (code-unit) order. */
  readonly rels: readonly string[];
  /** Lowercase hex sha256 of each file's bytes, parallel to `rels`. */
  readonly sha256: readonly string[];
  /** Byte size of each file, parallel to `rels`. */
  readonly sizes: readonly number[];
}

/** What a successful run reports back to the engine (stored in the run record). */
export interface StageResult {
  /** Scalar metrics for experiment comparison (e.g. `accuracy`). */
  readonly metrics?: Readonly<Record<string, number>>;
  /** The compute backend used, for stages that use tfjs. */
  readonly backend?: { readonly name: string; readonly threads?: number };
  /** Short human summary printed after the stage (e.g. `1,204 images, 3 rejected`). */
  readonly summary?: string;
}

/** A built-in stage definition (see module doc). */
export interface BuiltinStage<P = unknown> {
  /** Name used in `uses:`; also the schema file name `schemas/stages/<name>.json`. */
  readonly name: string;
  /** Bumped whenever a change to `run` can change outputs; part of the stage key. */
  readonly version: string;
  /** One line for `pipeline dag` and the generated reference. */
  readonly description: string;
  /** Required input slots. A slot not mapped in the pipeline file defaults to the stage with the slot's name. */
  readonly inputs: readonly string[];
  /** Optional input slots (used when the pipeline maps them or a stage of that name exists). */
  readonly optionalInputs?: readonly string[];
  /** Workspace paths (files, dirs, globs) the stage reads given its params; they are hashed into the key and watched. */
  fileDeps?(params: P): string[];
  /** Resources the stage needs, e.g. `{gpu: 1}` when it will use a GPU. */
  resources?(params: P): Record<string, number>;
  /**
   * Optional (added with issue 2's runtime facts): cheap facts about the
   * installed runtime that can change this stage's outputs given its params,
   * e.g. `{sharp: '0.34.5', libvips: '8.17.3'}` or `{tfjs: '4.22.0',
   * tfjsBackend: 'wasm'}`. They go into the stage's fingerprint `runtime`
   * (beside platform/arch), so a change makes the stage stale and
   * `pipeline explain` names it. Called on every plan, also for no-op runs:
   * must not load heavy modules (read package.json files; see
   * `stages/lib/runtime-facts.ts`). Keys must not be `platform` or `arch`.
   */
  runtimeFacts?(params: P): Readonly<Record<string, string>>;
  /**
   * Optional (added with issue 7): the stage's outputs name absolute paths
   * inside the workspace (ingest's manifest lists each image's absolute
   * path). Its key then includes the absolute workspace (the fingerprint
   * param `@workspace`), so two workspaces sharing one cache never restore
   * each other's paths: same inputs in another workspace is another key.
   */
  readonly workspaceBound?: boolean;
  /**
   * Optional (added with issue 3's incremental work): the engine passes
   * `StageContext.depListings` to this stage. Opt-in because a 10k-file
   * listing is about a megabyte to send to the stage process.
   */
  readonly usesDepListings?: boolean;
  /**
   * Optional (added with issue 3's start-up work): loads what `run` will
   * certainly need and is slow to load or set up the first time (e.g. sharp,
   * ~40 ms CPU, and libvips' first decode), so a stage host started ahead of
   * its stage (`--prepare=<stage>`, see `src/stage-host/child.ts`) does it
   * while idle instead of on the stage's clock. Never called where only
   * metadata is needed; writes nothing and keeps no state beyond the module
   * cache and the libraries' own; `run` must not depend on it.
   */
  prepare?(): void | Promise<void>;
  run(ctx: StageContext<P>): Promise<StageResult>;
}
