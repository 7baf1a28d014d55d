/**
 * The analysed pipeline: what `analyze` returns and what the planner, runner,
 * watcher and experiment tracker consume. Plain data only: no I/O, no methods.
 * It does not say whether anything is fresh; that is `fingerprint`'s and
 * `plan`'s job.
 */
import type { SourceLocation } from './diagnostic.js';

/** A JSON value (params, `with:` blocks). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** A stage's unique id in the pipeline, e.g. `train` or, after matrix expansion, `train@lr=0.01`. */
export type StageId = string & { readonly __brand: 'StageId' };

/** What a stage depends on besides upstream stages. */
export type DepSpec =
  /** A workspace path: a file, a directory (all files below it, recursively) or a glob. Relative to the workspace. */
  | { readonly kind: 'path'; readonly path: string; readonly loc?: SourceLocation }
  /** Another stage's outputs (all of them, or one declared output path). */
  | { readonly kind: 'stage'; readonly stage: StageId; readonly output?: string; readonly loc?: SourceLocation };

/** One declared output of a `cmd` stage: a workspace-relative file or directory the command writes. */
export interface OutSpec {
  readonly path: string;
  /** When false the output is not stored in the cache (DVC `cache: false`). Default true. */
  readonly cache: boolean;
  readonly loc?: SourceLocation;
}

/** A param a stage reads, resolved to its value (only these enter the stage key). */
export interface ParamRead {
  /** Dotted path into the params tree, e.g. `train.lr`. */
  readonly path: string;
  /** The resolved value; `undefined` never happens after analysis (missing params are diagnostics). */
  readonly value: JsonValue;
}

/** Fields shared by both stage kinds. */
interface StageNodeBase {
  readonly id: StageId;
  /** Location of the stage's key in the pipeline file (diagnostics point here). */
  readonly loc: SourceLocation;
  /** Every upstream stage this stage must wait for: explicit `needs`, stage deps, builtin input slots. Sorted. */
  readonly needs: readonly StageId[];
  /** Workspace paths/globs the stage reads. For builtins, includes what the stage's `fileDeps` reports. */
  readonly deps: readonly DepSpec[];
  /** Params the stage reads, sorted by path. */
  readonly params: readonly ParamRead[];
  /** Declared environment variables passed to the stage (part of the key). */
  readonly env: Readonly<Record<string, string>>;
  /** Declared resource needs, e.g. `{gpu: 1}`; the scheduler never over-commits a resource. */
  readonly resources: Readonly<Record<string, number>>;
  /** In watch mode, whether a running instance may be cancelled when its key goes stale. Default true. */
  readonly interrupt: boolean;
  /** Free-text description from the pipeline file. */
  readonly description?: string;
}

/** A stage implemented by a built-in (`uses:`). */
export interface BuiltinStageNode extends StageNodeBase {
  readonly kind: 'builtin';
  /** Built-in stage name, e.g. `resize`. */
  readonly uses: string;
  /**
   * The built-in's `version` as the registry had it at analysis time. Lets
   * planning compute keys without importing stage modules (a cached graph is
   * invalidated whenever stage code changes). Optional for hand-built graphs.
   */
  readonly version?: string;
  /** The `with:` block after `${...}` interpolation and with schema defaults applied. */
  readonly with: JsonObject;
  /** Input slot name → upstream stage providing it. */
  readonly inputs: Readonly<Record<string, StageId>>;
  /** Workspace-relative directory the outputs are materialised into (default `out/<id>`). */
  readonly outDir: string;
}

/** A stage that runs a user command (`cmd:`). */
export interface CmdStageNode extends StageNodeBase {
  readonly kind: 'cmd';
  /** The command as argv, after interpolation; each element is exactly one argument (no shell). */
  readonly argv: readonly string[];
  /** Working directory, workspace-relative (default `.`). */
  readonly cwd: string;
  readonly outs: readonly OutSpec[];
  /** Workspace-relative JSON files (outputs) holding metrics, e.g. `metrics.json`. */
  readonly metrics: readonly string[];
}

/** A stage after analysis. */
export type StageNode = BuiltinStageNode | CmdStageNode;

/** A validated, expanded pipeline. */
export interface PipelineGraph {
  /** `name:` from the file. */
  readonly name: string;
  /** Absolute path of the pipeline file. */
  readonly file: string;
  /** Absolute path of the workspace (the pipeline file's directory); all relative paths resolve against it. */
  readonly workspace: string;
  /** Absolute folders outside the workspace that dependencies may read (`external:`); absent: none. */
  readonly external?: readonly string[];
  /** The full params tree after merging params files and `-S` overrides. */
  readonly params: JsonObject;
  /** Stages by id, in topological order (ties broken by file order). */
  readonly stages: ReadonlyMap<StageId, StageNode>;
  /** Absolute paths of every config file read (pipeline file, params files); watch mode watches these. */
  readonly configFiles: readonly string[];
  /** Cache directory from the file (`cache:`), absolute, if set. */
  readonly cacheDir?: string;
}
