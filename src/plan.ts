/**
 * Planning: which stages a run covers (`--stage` plus upstream), each stage's
 * fingerprint and key, and the decision for it (fresh / restore / run, or
 * unknown while an upstream stage still has to run), with a human reason
 * derived from `diffFingerprints` against the stage's last recorded run.
 *
 * Keys hold upstream OUTPUT hashes (early cutoff), so a stage's key is only
 * known once all of its upstream stages have a known output: fresh, restorable
 * (the record says), or finished. `planPipeline` (for `status`, `--dry`,
 * `explain`) marks the rest `unknown`; the runner decides stage by stage as
 * upstream work completes, with the same `decideStage`.
 *
 * This module reads files only through `FileHasher` and records only through
 * `CacheStore`; it never writes, runs or prints anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FileHasher } from './hash/file-hasher.js';
import type { CacheStore, RunRecord } from './cache/store.js';
import { subManifest, type ManifestFile } from './cache/manifest.js';
import { listingHash } from './hash/file-hasher.js';
import { pairWithEcho } from './change-echo.js';
import { baseRuntime, computeKey, diffFingerprints, engineVersion, type FingerprintChange, type FingerprintHash, type StageFingerprint, type StageImpl } from './fingerprint.js';
import type { JsonValue, PipelineGraph, StageId, StageNode } from './pipeline.js';
import type { PlannedAction } from './events.js';
import { err, ok, unreachable, type Result } from './result.js';
import { didYouMeanSuffix } from './did-you-mean.js';

/** Where a stage's last run in this workspace is remembered (implemented over `cache/workspace-state.ts`). */
export interface LastRunLookup {
  /** The key of the stage's last successful run (or restore) in this workspace, if any. */
  lastKey(stage: StageId): string | undefined;
  /**
   * Stat-only check that the workspace still holds exactly what the engine put
   * there for the stage's last key (no edits, deletions or additions).
   */
  intact(stage: StageId): boolean;
}

/** What planning reads. */
export interface PlanDeps {
  readonly graph: PipelineGraph;
  readonly hasher: FileHasher;
  readonly store: CacheStore;
  readonly last: LastRunLookup;
  /** Version of a built-in stage (from the registry); loaded only when the graph has built-ins. */
  readonly builtinVersion: (name: string) => Promise<string>;
  /**
   * Runtime facts of a built-in stage given its resolved `with:` params
   * (`BuiltinStage.runtimeFacts`), added to its fingerprint's `runtime`.
   * Optional (added with issue 2's runtime facts): absent means "ask the
   * stage registry" (`registryRuntimeFacts`); tools and tests may pass their own.
   */
  readonly builtinRuntime?: (name: string, params: JsonValue) => Promise<Readonly<Record<string, string>>>;
}

/** The built-in `name`, importing only its own module (`stages/registry-lazy.ts`). */
async function builtin(name: string): Promise<{ runtimeFacts?(params: unknown): Readonly<Record<string, string>>; workspaceBound?: boolean } | undefined> {
  return (await import('../stages/registry-lazy.js')).loadBuiltinStage(name);
}

/** Whether the registry's built-in `name` writes absolute workspace paths into its outputs (`BuiltinStage.workspaceBound`). */
export async function registryWorkspaceBound(name: string): Promise<boolean> {
  return (await builtin(name))?.workspaceBound === true;
}

/**
 * The runtime facts the registry's built-in `name` declares for `params`
 * (`{}` for a stage that declares none). Loads that stage's module on first
 * use (no other stage's); the facts themselves are cheap.
 */
export async function registryRuntimeFacts(name: string, params: JsonValue): Promise<Readonly<Record<string, string>>> {
  const s = await builtin(name);
  if (!s) throw new Error(`built-in stage "${name}" is not in the registry`);
  return s.runtimeFacts?.(params) ?? {};
}

/** The decision for one stage. */
export interface StageDecision {
  readonly action: PlannedAction;
  readonly key?: FingerprintHash;
  readonly fingerprint?: StageFingerprint;
  /** The record for `key`, when one exists (fresh / restore). */
  readonly record?: RunRecord;
  /** One line: why it runs (or restores). */
  readonly reason?: string;
  /** Every change against the last run's fingerprint (empty when unknown or never run). */
  readonly changes: readonly FingerprintChange[];
  /** The key of the stage's last run in this workspace. */
  readonly lastKey?: string;
}

/** `ids` plus everything upstream of them, in graph (topological) order; all stages when `ids` is empty. */
export function selectStages(graph: PipelineGraph, ids: readonly string[]): Result<StageId[], string[]> {
  const all = [...graph.stages.keys()];
  if (ids.length === 0) return ok(all);
  const errors: string[] = [];
  const want = new Set<StageId>();
  const visit = (id: StageId): void => {
    if (want.has(id)) return;
    want.add(id);
    for (const u of graph.stages.get(id)?.needs ?? []) visit(u);
  };
  for (const raw of ids) {
    // A foreach/matrix name selects all of its expansions.
    const matches = graph.stages.has(raw as StageId) ? [raw as StageId] : all.filter((s) => s.startsWith(`${raw}@`));
    if (matches.length === 0) errors.push(`unknown stage "${raw}"${didYouMeanSuffix(raw, all)}`);
    for (const m of matches) visit(m);
  }
  if (errors.length > 0) return err(errors);
  return ok(all.filter((s) => want.has(s)));
}

/** The implementation part of a fingerprint. */
async function implOf(node: StageNode, deps: PlanDeps): Promise<StageImpl> {
  switch (node.kind) {
    case 'cmd':
      return { kind: 'cmd', argv: node.argv, cwd: node.cwd };
    case 'builtin':
      return { kind: 'builtin', name: node.uses, version: await deps.builtinVersion(node.uses) };
    default:
      return unreachable(node);
  }
}

/**
 * Outputs of stages that a plan will restore but that are not in the workspace
 * yet: workspace-relative output path → its files (paths relative to it). A
 * downstream path dep inside one is hashed from these instead of the disk.
 */
export type OutputOverlay = Map<string, readonly ManifestFile[]>;

/** Adds a recorded run's outputs to `overlay`. */
export function addToOverlay(overlay: OutputOverlay, node: StageNode, rec: RunRecord): void {
  for (const o of outputPaths(node)) {
    if (!o.cache) continue;
    overlay.set(o.path, node.kind === 'builtin' ? rec.outputs.files : subManifest(rec.outputs, o.path).files);
  }
}

/** The dep hash (same format as `fingerprintStage` uses) of `dep` if it lies in the overlay. */
function overlayHash(overlay: OutputOverlay | undefined, dep: string): string | undefined {
  if (!overlay || overlay.size === 0) return undefined;
  const d = normal(dep);
  for (const [p, files] of overlay) {
    let sub: readonly ManifestFile[] | undefined;
    if (d === p) sub = files;
    else if (d.startsWith(`${p}/`)) {
      const pre = d.slice(p.length + 1);
      sub = files.filter((f) => f.path === pre || f.path.startsWith(`${pre}/`)).map((f) => ({ ...f, path: f.path === pre ? '' : f.path.slice(pre.length + 1) }));
    }
    if (sub === undefined) continue;
    if (sub.length === 0) return 'missing';
    if (sub.length === 1 && sub[0].path === '') return `file:${sub[0].sha256}`;
    return `dir:${listingHash('dir', sub.map((f) => f.path), sub.map((f) => f.sha256))}`;
  }
  return undefined;
}

/**
 * The stage's fingerprint, given the output hash of each upstream stage.
 * Path deps are hashed now through the memoised hasher (or from `overlay`
 * for outputs a plan would restore first).
 */
export async function fingerprintStage(node: StageNode, deps: PlanDeps, upstreamOutputs: ReadonlyMap<StageId, string>, overlay?: OutputOverlay): Promise<StageFingerprint> {
  const params: Record<string, JsonValue> = {};
  for (const p of node.params) params[p.path] = p.value;
  if (node.kind === 'builtin') params.with = node.with;
  // `@` cannot start a pipeline param path, so this never collides with one.
  if (node.kind === 'builtin' && (await registryWorkspaceBound(node.uses))) params['@workspace'] = deps.graph.workspace;
  const inputs: Record<string, string> = {};
  for (const d of node.deps) {
    if (d.kind !== 'path') continue;
    const virtual = overlayHash(overlay, d.path);
    if (virtual !== undefined) {
      inputs[d.path] = virtual;
      continue;
    }
    const h = await deps.hasher.hashDep(deps.graph.workspace, d.path);
    inputs[d.path] = h.hash === undefined ? 'missing' : `${h.kind}:${h.hash}`;
  }
  const upstream: Record<string, string> = {};
  for (const u of node.needs) {
    const h = upstreamOutputs.get(u);
    if (h === undefined) throw new Error(`fingerprintStage(${node.id}): upstream ${u} has no known output`);
    upstream[u] = h;
  }
  return {
    engine: engineVersion(),
    stage: await implOf(node, deps),
    params,
    inputs,
    upstream,
    env: { ...node.env },
    runtime: node.kind === 'builtin' ? { ...(await (deps.builtinRuntime ?? registryRuntimeFacts)(node.uses, node.with)), ...baseRuntime() } : baseRuntime(),
  };
}

/** Workspace-relative paths a stage's outputs live at, and whether each is cached. */
export function outputPaths(node: StageNode): { path: string; cache: boolean }[] {
  switch (node.kind) {
    case 'builtin':
      return [{ path: node.outDir, cache: true }];
    case 'cmd': {
      const outs = node.outs.map((o) => ({ path: normal(o.path), cache: o.cache }));
      // Metrics files are outputs too (restored with the rest), unless already under a declared out.
      for (const m of node.metrics) {
        const p = normal(m);
        if (!outs.some((o) => o.path === p || p.startsWith(`${o.path}/`))) outs.push({ path: p, cache: true });
      }
      return outs;
    }
    default:
      return unreachable(node);
  }
}

function normal(p: string): string {
  return path.posix.normalize(p.split(path.sep).join('/')).replace(/\/+$/, '').replace(/^\.\//, '');
}

/**
 * Whether the workspace holds exactly the outputs of `rec`, by content (hashes
 * via the memo). Outputs with `cache: false` only need to exist. The runner
 * uses the cheaper stat-only `LastRunLookup.intact`; this is for tools.
 */
export async function workspaceMatches(node: StageNode, rec: RunRecord, deps: PlanDeps): Promise<boolean> {
  const ws = deps.graph.workspace;
  for (const out of outputPaths(node)) {
    const listing = await deps.hasher.listDep(ws, out.path);
    if (!out.cache) {
      if (listing.kind === 'missing') return false;
      continue;
    }
    const want = node.kind === 'builtin' ? rec.outputs : subManifest(rec.outputs, out.path);
    if (listing.kind === 'missing') {
      if (want.files.length === 0) continue;
      return false;
    }
    if (listing.entries.length !== want.files.length) return false;
    for (let i = 0; i < want.files.length; i++) {
      const [rel, sha] = listing.entries[i];
      const f = want.files[i];
      if (rel !== f.path || sha !== f.sha256) return false;
    }
  }
  return true;
}

/** Human one-liners for fingerprint changes (used by `explain`, `status` and reasons). */
export function describeChange(c: FingerprintChange): string {
  const v = (x: unknown): string => (x === undefined ? '(unset)' : JSON.stringify(x));
  switch (c.kind) {
    case 'engine':
      return `engine version changed: ${c.old} → ${c.new}`;
    case 'code':
      return codeChange(c.old, c.new);
    case 'param':
      return `param ${c.path} changed: ${v(c.old)} → ${v(c.new)}`;
    case 'input':
      return `input ${c.path} ${c.change}`;
    case 'upstream':
      return c.change === 'modified' ? `upstream stage ${c.stage} produced different outputs` : `upstream stage ${c.stage} ${c.change === 'added' ? 'added' : 'removed'}`;
    case 'env':
      return `env ${c.name} changed: ${v(c.old)} → ${v(c.new)}`;
    case 'runtime':
      // Versions and names read best bare: `runtime sharp changed: 0.34.1 → 0.34.2`.
      return `runtime ${c.field} changed: ${c.old ?? '(unset)'} → ${c.new ?? '(unset)'}`;
    default:
      return unreachable(c);
  }
}

/** A code change, as small as possible: only the argv elements that differ. */
function codeChange(a: StageImpl, b: StageImpl): string {
  if (a.kind === 'cmd' && b.kind === 'cmd') {
    if (a.cwd !== b.cwd) return `command working directory changed: ${a.cwd} → ${b.cwd}`;
    if (a.argv.length === b.argv.length) {
      const diffs = a.argv.flatMap((x, i) => (x === b.argv[i] ? [] : [`argument ${i} ${JSON.stringify(x)} → ${JSON.stringify(b.argv[i])}`]));
      return `command changed: ${diffs.join(', ')}`;
    }
  }
  if (a.kind === 'builtin' && b.kind === 'builtin' && a.name === b.name) return `stage code changed: ${a.name} version ${a.version} → ${b.version}`;
  return `command changed: ${implText(a)} → ${implText(b)}`;
}

function implText(i: StageImpl): string {
  return i.kind === 'cmd' ? `${JSON.stringify(i.argv)}${i.cwd !== '.' ? ` in ${i.cwd}` : ''}` : `${i.name}@${i.version}`;
}

/** Which change explains a rerun best: what the user edited (params, inputs) before its consequences (argv). */
const reasonPriority: Record<FingerprintChange['kind'], number> = { param: 0, input: 1, upstream: 2, env: 3, code: 4, runtime: 5, engine: 6 };

/** Changes ordered most telling first: params, inputs, upstream, env, code, runtime, engine (stable within a kind). */
export function sortChanges(changes: readonly FingerprintChange[]): FingerprintChange[] {
  return [...changes].sort((a, b) => reasonPriority[a.kind] - reasonPriority[b.kind]);
}

/** A one-line reason from a change list (the most telling change, plus "and N more"). */
export function summarizeChanges(all: readonly FingerprintChange[]): string | undefined {
  // A params edit and its with.* echo are one edit, not "(and 1 more)".
  const changes = pairWithEcho(all).map((l) => l.change);
  if (changes.length === 0) return undefined;
  const best = sortChanges(changes)[0];
  const first = describeChange(best);
  return changes.length === 1 ? first : `${first} (and ${changes.length - 1} more)`;
}

/**
 * Decides one stage whose upstream outputs are all known. `forced` stages
 * always run. Reads the record for the key (objects checked), the last run's
 * record for the reason, and the workspace outputs for freshness.
 */
export async function decideStage(node: StageNode, deps: PlanDeps, upstreamOutputs: ReadonlyMap<StageId, string>, forced: boolean, overlay?: OutputOverlay): Promise<StageDecision> {
  const fingerprint = await fingerprintStage(node, deps, upstreamOutputs, overlay);
  const key = computeKey(fingerprint);
  const lastKey = deps.last.lastKey(node.id);
  const changes = await changesSinceLast(fingerprint, lastKey, deps);
  const base = { key, fingerprint, changes, ...(lastKey !== undefined ? { lastKey } : {}) };
  if (forced) return { ...base, action: 'run', reason: 'forced' };
  const record = await deps.store.readRecord(key);
  if (record === undefined) {
    return { ...base, action: 'run', reason: lastKey === undefined ? 'never run in this workspace' : (summarizeChanges(changes) ?? 'no record for its key (cache cleared or corrupt)') };
  }
  const uncachedPresent = outputPaths(node).every((o) => o.cache || fs.existsSync(path.resolve(deps.graph.workspace, o.path)));
  if (lastKey === key && deps.last.intact(node.id) && uncachedPresent) return { ...base, action: 'fresh', record };
  // An uncached output cannot be restored.
  if (!uncachedPresent) return { ...base, action: 'run', reason: 'an output that is not cached is missing' };
  return { ...base, action: 'restore', record, reason: lastKey === key ? 'outputs missing or modified in the workspace' : (summarizeChanges(changes) ?? 'outputs of this key are in the cache') };
}

/** Differences against the fingerprint recorded for `lastKey` (none if unknown). */
async function changesSinceLast(fp: StageFingerprint, lastKey: string | undefined, deps: PlanDeps): Promise<FingerprintChange[]> {
  if (lastKey === undefined) return [];
  const last = await deps.store.readRecord(lastKey, { checkObjects: false });
  if (!last) return [];
  return diffFingerprints(last.fingerprint, fp);
}

/** One stage in a plan. */
export interface PlanEntry extends StageDecision {
  readonly stage: StageId;
  /** For `unknown`: the upstream stages that must run first. */
  readonly waitingFor?: readonly StageId[];
}

/**
 * Plans the given stages without running anything: keys for every stage whose
 * upstream outputs are known (fresh or restorable upstream), `unknown` for the
 * rest. `forced` stages plan as `run`.
 */
export async function planStages(deps: PlanDeps, stages: readonly StageId[], forced: ReadonlySet<StageId>): Promise<PlanEntry[]> {
  const outputs = new Map<StageId, string>();
  const willRun = new Set<StageId>();
  const overlay: OutputOverlay = new Map();
  const plan: PlanEntry[] = [];
  for (const id of stages) {
    const node = deps.graph.stages.get(id)!;
    const blocking = node.needs.filter((u) => willRun.has(u));
    if (blocking.length > 0) {
      willRun.add(id);
      plan.push({ stage: id, action: 'unknown', changes: [], waitingFor: blocking, reason: `upstream ${blocking.join(', ')} will run first` });
      continue;
    }
    const d = await decideStage(node, deps, outputs, forced.has(id), overlay);
    if (d.action === 'run') willRun.add(id);
    else if (d.record) outputs.set(id, d.record.outputs.hash);
    if (d.action === 'restore' && d.record) addToOverlay(overlay, node, d.record);
    plan.push({ stage: id, ...d });
  }
  return plan;
}
