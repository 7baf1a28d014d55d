/**
 * Executing one stage whose decision is `run`: a `cmd` stage through execa in
 * the workspace, or a built-in in a child process writing into a staging dir.
 * On success the outputs are ingested into the cache, the run record is
 * written LAST, and the stage's workspace state is returned for the runner to
 * save. On failure or cancellation nothing is recorded.
 *
 * It does not decide freshness or order (plan.ts, scheduler.ts) and does not
 * print (it emits events).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CacheStore, NewRunRecord, RunRecord } from '../cache/store.js';
import { err, type Result } from '../result.js';
import { subManifest, type OutputManifest } from '../cache/manifest.js';
import { backupIfForeign, checkOutputDir, materialize, type OutputDirCheck } from '../cache/materialize.js';
import type { FileHasher } from '../hash/file-hasher.js';
import { statSignature, type MaterialisedFile, type MaterialisedOutput, type StageState, type WorkspaceState } from '../cache/workspace-state.js';
import type { FingerprintHash, StageFingerprint } from '../fingerprint.js';
import type { BuiltinStageNode, CmdStageNode, PipelineGraph, StageId, StageNode } from '../pipeline.js';
import type { RunEventInit } from '../events.js';
import { outputPaths } from '../plan.js';
import { readMetricsFiles } from './metrics.js';
import { diskFullText } from './disk-full.js';
import { writeDepListings } from '../stage-host/dep-files.js';
import type { DepFiles } from '../../stages/types.js';

/**
 * The one-line failure of a stage whose task threw `e`. A full disk or quota
 * (ENOSPC, EDQUOT) is the environment, not a bug: said in plain words with
 * what to do (nothing was recorded for the stage: the record is written
 * last). Anything else is an internal error.
 */
export function stageErrorMessage(stageId: string, e: unknown): string {
  const full = diskFullText(e);
  if (full !== undefined) {
    return `stage ${stageId} failed: ${full}; nothing was recorded for it: free some space (\`pipeline cache gc\` removes unused cache entries; add --grace 0 when no other run is going, to include what this run stored) and run again`;
  }
  return `stage ${stageId} failed: internal error: ${e instanceof Error ? e.message : String(e)}`;
}

/** What executing a stage needs. */
export interface ExecContext {
  readonly graph: PipelineGraph;
  readonly store: CacheStore;
  readonly state: WorkspaceState;
  readonly cacheDir: string;
  readonly emit: (e: RunEventInit) => void;
  /** Aborted when this stage must stop (already accounts for `interrupt: false`). */
  readonly signal: AbortSignal;
  /** Remembers a spawned process group (so a later run can kill it if this one dies); returns the forget function. */
  readonly trackChild?: (pid: number) => () => void;
  /** When given, directory/glob dependency listings are stored with the record (for `explain`). */
  readonly hasher?: FileHasher;
  /** Called once a built-in's stage process has answered (its host may now be idle): see `runPipeline`. */
  readonly hostDone?: () => void;
}

/**
 * Writes the stage's run record (last, with its dependency listings: `stored`
 * when they were stored while the stage ran); a vanished object is a stage failure.
 */
async function writeRunRecord(node: StageNode, ctx: ExecContext, rec: NewRunRecord, stored?: Promise<Record<string, string> | undefined>): Promise<Result<RunRecord, { kind: 'failed'; message: string }>> {
  const listings = await (stored ?? storeListings(node, ctx, rec.fingerprint.inputs));
  const written = await ctx.store.writeRecord({ ...rec, ...(listings ? { inputListings: listings } : {}) });
  if (written.ok) return written;
  return err({ kind: 'failed', message: `stage ${node.id} failed: cache object for ${written.error.path} vanished before the record was written` });
}

/**
 * Stores the listing of every directory/glob dependency as an object; dep path → object sha.
 * `inputs` (the key's `kind:hash` per dep) lets the hasher hand back the walk the key came from
 * instead of walking a 10k-file dataset a second time.
 */
async function storeListings(node: StageNode, ctx: ExecContext, inputs: Readonly<Record<string, string>>): Promise<Record<string, string> | undefined> {
  if (!ctx.hasher) return undefined;
  const out: Record<string, string> = {};
  for (const d of node.deps) {
    if (d.kind !== 'path') continue;
    const l = await ctx.hasher.listDep(ctx.graph.workspace, d.path, inputs[d.path]);
    if (l.kind !== 'dir' && l.kind !== 'glob') continue;
    out[d.path] = await ctx.store.putBytes(Buffer.from(JSON.stringify(l.entries)));
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Writes `StageContext.depListings` for a built-in that uses them to a new
 * temp file, and returns its path: each of its directory dependencies whose
 * walk for this key (`inputs`, the key's `kind:hash` per dep) was plain, by
 * absolute path. Reuses that walk; never walks again (a dependency without
 * one is simply left out). Undefined when there is nothing to pass.
 */
async function depListingsFile(node: BuiltinStageNode, ctx: ExecContext, inputs: Readonly<Record<string, string>>): Promise<string | undefined> {
  if (!ctx.hasher) return undefined;
  const stage = await (await import('../../stages/registry-lazy.js')).loadBuiltinStage(node.uses);
  if (stage?.usesDepListings !== true) return undefined;
  const listings: Record<string, DepFiles> = {};
  for (const d of node.deps) {
    const expect = d.kind === 'path' ? inputs[d.path] : undefined;
    if (d.kind !== 'path' || expect === undefined) continue;
    const files = ctx.hasher.plainDirFiles(ctx.graph.workspace, d.path, expect);
    if (files !== undefined) listings[path.resolve(ctx.graph.workspace, d.path)] = files;
  }
  if (Object.keys(listings).length === 0) return undefined;
  const file = ctx.store.tmpName('.deps.json');
  writeDepListings(file, listings);
  return file;
}

/** How an execution ended. */
export type ExecOutcome =
  | {
      readonly kind: 'ok';
      readonly record: RunRecord;
      /** What to store in workspace state for the stage. */
      readonly state: StageState;
    }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'cancelled' };

/** Runs `node` for `key`; see module doc. */
export async function executeStage(node: StageNode, key: FingerprintHash, fingerprint: StageFingerprint, ctx: ExecContext): Promise<ExecOutcome> {
  return node.kind === 'cmd' ? executeCmd(node, key, fingerprint, ctx) : executeBuiltin(node, key, fingerprint, ctx);
}

/** The stat signatures of files just written at `dest` (which hold `m`), for workspace state. */
export function describeOutput(workspace: string, dest: string, m: OutputManifest): MaterialisedOutput {
  const kind = m.files.length === 1 && m.files[0].path === '' ? 'file' : 'dir';
  const root = path.resolve(workspace, dest);
  const files: MaterialisedFile[] = [];
  for (const f of m.files) {
    const sig = statSignature(f.path === '' ? root : path.join(root, f.path));
    if (sig) files.push([f.path, sig.size, sig.mtimeNs, sig.ino]);
  }
  return { dest, kind, hash: m.hash, files };
}

async function executeCmd(node: CmdStageNode, key: FingerprintHash, fingerprint: StageFingerprint, ctx: ExecContext): Promise<ExecOutcome> {
  const ws = ctx.graph.workspace;
  const startedAt = new Date();
  const t0 = performance.now();
  const log: string[] = [];
  // The command overwrites its outs in place: save user content found there first (never lose a user file).
  const prev = ctx.state.get(node.id);
  for (const o of outputPaths(node)) {
    if (!o.cache) continue;
    const expected = prev?.outputs.find((x) => x.dest === o.path);
    await backupIfForeign(ctx.store, ws, o.path, { stageId: node.id, ...(expected ? { expected } : {}) });
  }
  if (fs.statSync(path.resolve(ws, node.cwd), { throwIfNoEntry: false })?.isDirectory() !== true) {
    return { kind: 'failed', message: `stage ${node.id} failed: working directory ${node.cwd} does not exist` };
  }
  const { runCommand } = await import('../exec/cmd.js');
  const outcome = await runCommand({
    argv: node.argv,
    cwd: path.resolve(ws, node.cwd),
    env: node.env,
    signal: ctx.signal,
    ...(ctx.trackChild ? { onSpawn: ctx.trackChild } : {}),
    onLine(stream, line) {
      log.push(stream === 'stderr' ? `[stderr] ${line}` : line);
      ctx.emit({ type: 'stage-output', stage: node.id, stream, line });
    },
  });
  switch (outcome.kind) {
    case 'cancelled':
      return { kind: 'cancelled' };
    case 'spawn-error':
      return { kind: 'failed', message: `stage ${node.id} failed: ${outcome.message}` };
    case 'signalled':
      return { kind: 'failed', message: `stage ${node.id} failed: killed by ${outcome.signal}` };
    case 'exited':
      if (outcome.code !== 0) return { kind: 'failed', message: `stage ${node.id} failed: exit code ${outcome.code}` };
      break;
  }
  if (ctx.signal.aborted) return { kind: 'cancelled' };

  const outs = outputPaths(node);
  const missing = outs.filter((o) => !exists(path.resolve(ws, o.path))).map((o) => o.path);
  if (missing.length > 0) {
    return { kind: 'failed', message: `stage ${node.id} failed: declared output${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'were' : 'was'} not written by the command` };
  }
  const metrics = await readMetricsFiles(ws, node.metrics);
  if (!metrics.ok) return { kind: 'failed', message: `stage ${node.id} failed: ${metrics.error}` };
  const cached = outs.filter((o) => o.cache).map((o) => o.path);
  const ingested = await ctx.store.ingestPaths(ws, cached);
  if (!ingested.ok) return { kind: 'failed', message: `stage ${node.id} failed: output ${ingested.error.map((m) => m.path).join(', ')} disappeared while being stored` };
  const manifest = ingested.value;
  if (ctx.signal.aborted) return { kind: 'cancelled' };
  const written = await writeRunRecord(node, ctx, { key, fingerprint, stageId: node.id, outputs: manifest, metrics: metrics.value, log: log.join('\n'), startedAt: startedAt.toISOString(), durationMs: Math.round(performance.now() - t0) });
  if (!written.ok) return written.error;
  const outputs = cached.map((dest) => describeOutput(ws, dest, subManifest(manifest, dest)));
  return { kind: 'ok', record: written.value, state: { key, outputsHash: manifest.hash, outputs, at: new Date().toISOString() } };
}

function exists(abs: string): boolean {
  return fs.statSync(abs, { throwIfNoEntry: false }) !== undefined;
}

/** Where a built-in's input slot reads from: the upstream's materialised output directory. */
function inputDir(graph: PipelineGraph, upstream: StageId): string {
  const u = graph.stages.get(upstream);
  if (u?.kind === 'builtin') return path.resolve(graph.workspace, u.outDir);
  return graph.workspace;
}

/**
 * Runs of one built-in allowed when its outputs keep meeting corrupt cache
 * content: each try quarantines what it found (a linked item-cache entry with
 * a wrong trailer, an object whose bytes do not match its name), so the next
 * try recomputes those items. Two bad things at once (entry and object of
 * one inode, found at different steps) need three.
 */
const BUILTIN_TRIES = 3;

/** An attempt that met corrupt cache content (already quarantined): run the stage again. */
interface Retry {
  readonly kind: 'retry';
  readonly why: string;
}

async function executeBuiltin(node: BuiltinStageNode, key: FingerprintHash, fingerprint: StageFingerprint, ctx: ExecContext): Promise<ExecOutcome> {
  for (let attempt = 1; ; attempt++) {
    const r = await executeBuiltinOnce(node, key, fingerprint, ctx);
    if (r.kind !== 'retry') return r;
    if (attempt >= BUILTIN_TRIES) return { kind: 'failed', message: `stage ${node.id} failed: ${r.why} (after ${attempt} tries; run \`pipeline cache verify\`)` };
    ctx.emit({ type: 'stage-output', stage: node.id, stream: 'warn', line: `${r.why}; running the stage again` });
  }
}

async function executeBuiltinOnce(node: BuiltinStageNode, key: FingerprintHash, fingerprint: StageFingerprint, ctx: ExecContext): Promise<ExecOutcome | Retry> {
  const ws = ctx.graph.workspace;
  const startedAt = new Date();
  const t0 = performance.now();
  const log: string[] = [];
  const staging = await ctx.store.makeStagingDir();
  let depFile: string | undefined;
  try {
    const inputs: Record<string, string> = {};
    for (const [slot, up] of Object.entries(node.inputs)) inputs[slot] = inputDir(ctx.graph, up);
    const seed = typeof node.with.seed === 'number' ? node.with.seed : 0;
    depFile = await depListingsFile(node, ctx, fingerprint.inputs);
    const { runBuiltin, stageHosts, canShareHost, warmthOf } = await import('../stage-host/host.js');
    const running = runBuiltin({
      stageId: node.id,
      stageName: node.uses,
      params: node.with,
      inputs,
      outDir: staging,
      workspace: ws,
      cacheDir: ctx.cacheDir,
      seed,
      // Cached items may be named instead of linked into the staging dir; ingestStaging stores them.
      offerRefs: true,
      ...(depFile !== undefined ? { depListingsFile: depFile } : {}),
      signal: ctx.signal,
      ...(ctx.trackChild ? { onSpawn: ctx.trackChild } : {}),
      onLog(level, message) {
        log.push(level === 'warn' ? `[warn] ${message}` : message);
        ctx.emit({ type: 'stage-output', stage: node.id, stream: level, line: message });
      },
      onProgress(done, total, label) {
        ctx.emit({ type: 'stage-progress', stage: node.id, done, total, ...(label !== undefined ? { label } : {}) });
      },
      // Entries it writes are flushed to disk while it runs, not after it (ingestStaging would flush each).
      onWrote: (files) => ctx.store.flushSoon(files),
    });
    // The stages that start when this one ends get warm hosts now, while it runs (their start-up overlaps it).
    // After `runBuiltin` has taken this stage's own host (synchronously), so a prewarmed host is left for them.
    const { count, stages } = hostsWanted(ctx.graph, node, canShareHost, warmthOf);
    stageHosts.prewarm(count, stages);
    // While it runs: this stage's last record (what its outputs update) and its dependents' (why they rerun);
    // the listings of its directory dependencies (for `explain`), which its record will name.
    ctx.store.prefetchRecords([node.id, ...dependentsOf(ctx.graph, node.id)].flatMap((id) => ctx.state.get(id)?.key ?? []));
    const listings = storeListings(node, ctx, fingerprint.inputs);
    listings.catch(() => {}); // awaited by writeRunRecord; a failure there (e.g. ENOSPC) fails the stage as before
    // The hash memo so far (this stage's key is computed): written now rather than after the last stage.
    ctx.hasher?.save().catch(() => {}); // best effort, as at the end of a run
    // Which files of its current output the new one may keep: checked now, re-checked where it writes (materialize).
    const earlyCheck = checkOutputAhead(node, ctx).catch(() => undefined);
    const outcome = await running;
    ctx.hostDone?.();
    switch (outcome.kind) {
      case 'cancelled':
        return { kind: 'cancelled' };
      case 'failed':
        // A full disk met in the stage process is said as plainly as the engine's own.
        if (diskFullText(outcome.errno) !== undefined) return { kind: 'failed', message: stageErrorMessage(node.id, outcome.errno) };
        return { kind: 'failed', message: `stage ${node.id} failed: ${outcome.message}` };
      case 'crashed':
        return { kind: 'failed', message: `stage ${node.id} failed: ${outcome.message}` };
      case 'ok':
        break;
    }
    if (ctx.signal.aborted) return { kind: 'cancelled' };
    const prevState = ctx.state.get(node.id);
    // The record the workspace state names for this stage: gc keeps it (and its objects) until the state names
    // this run's record, which is written before the state is saved. Its objects need no "used" mark (store.ts).
    const prevRecord = prevState !== undefined ? await ctx.store.readRecord(prevState.key, { checkObjects: false }) : undefined;
    const kept = prevState !== undefined ? await ctx.store.keptObjects(prevState.key) : undefined;
    const ingested = await ctx.store.ingestStaging(staging, outcome.refs ? { namespace: node.uses, refs: outcome.refs } : undefined, kept);
    if (!ingested.ok) {
      const bad = ingested.error.filter((c) => c.reason === 'corrupt-item-entry');
      const gone = ingested.error.filter((c) => c.reason === 'missing-item-entry');
      const why = [
        ...(bad.length > 0 ? [`corrupt item-cache entr${bad.length === 1 ? 'y' : 'ies'} ${bad.map((c) => c.entry).join(', ')} (moved to quarantine)`] : []),
        ...(gone.length > 0 ? [`item-cache entr${gone.length === 1 ? 'y' : 'ies'} ${gone.map((c) => c.entry).join(', ')} removed while the stage ran (a concurrent \`cache gc\`?)`] : []),
      ];
      return { kind: 'retry', why: why.join('; ') };
    }
    const manifest = ingested.value;
    const result = outcome.result;
    const written = await writeRunRecord(node, ctx, {
      key,
      fingerprint,
      stageId: node.id,
      outputs: manifest,
      metrics: { ...(result.metrics ?? {}) },
      log: log.join('\n'),
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      ...(result.backend ? { backend: result.backend } : {}),
      ...(result.summary ? { summary: result.summary } : {}),
    }, listings);
    if (!written.ok) return written.error;
    const expected = prevState?.outputs.find((o) => o.dest === normalDest(node.outDir));
    // The previous run's manifest lets materialize keep unchanged files instead of copying everything again.
    const previous = expected !== undefined && prevRecord !== undefined && prevRecord.outputs.hash === expected.hash ? prevRecord.outputs : undefined;
    const checked = expected !== undefined && previous !== undefined ? await earlyCheck : undefined;
    const placed = await materialize(ctx.store, manifest, ws, node.outDir, { kind: 'dir', stageId: node.id, ...(expected ? { expected } : {}), ...(previous ? { previous } : {}), ...(checked ? { checked } : {}) });
    if (!placed.ok) {
      // The object was quarantined (so the record just written is unusable): a new try stores good bytes.
      if (placed.error.reason === 'corrupt-object') return { kind: 'retry', why: `corrupt cache object for ${placed.error.path} (moved to quarantine)` };
      return { kind: 'failed', message: `stage ${node.id} failed: could not place outputs in ${node.outDir}: ${placed.error.reason}` };
    }
    return { kind: 'ok', record: written.value, state: { key, outputsHash: manifest.hash, outputs: [placed.value.output], at: new Date().toISOString() } };
  } finally {
    await ctx.store.removeStagingDir(staging).catch(() => {});
    if (depFile !== undefined) await fs.promises.rm(depFile, { force: true }).catch(() => {});
  }
}

/**
 * How many idle stage hosts to have ready when `node` starts: one per
 * built-in stage that directly depends on it and may share a host, less the
 * host `node` itself frees if it may share one; and those stages' names,
 * which the new hosts load while they wait (less the one that will take the
 * freed host: a dependent of the same warmth, policy.ts). At most the machine's
 * parallelism (the default job count). A dependent that turns out fresh
 * leaves its host unused: one process start-up spent for nothing, retired
 * when the run ends.
 */
export function hostsWanted(graph: PipelineGraph, node: BuiltinStageNode, canShareHost: (name: string) => boolean, warmthOf: (name: string) => string | undefined): { count: number; stages: string[] } {
  const names: string[] = [];
  for (const s of graph.stages.values()) if (s.kind === 'builtin' && s.needs.includes(node.id) && canShareHost(s.uses)) names.push(s.uses);
  const frees = canShareHost(node.uses);
  // The host this stage frees goes to a dependent of the same warmth (HostPool): the new hosts need not prepare it.
  const warmth = frees ? warmthOf(node.uses) : undefined;
  const heir = warmth === undefined ? -1 : names.findIndex((n) => warmthOf(n) === warmth);
  const others = heir < 0 ? names : names.filter((_, i) => i !== heir);
  return { count: Math.max(0, Math.min(os.availableParallelism(), names.length - (frees ? 1 : 0))), stages: [...new Set(others)].sort() };
}

/** `checkOutputDir` of a built-in's current output, with what its workspace state and last record say is there. */
async function checkOutputAhead(node: BuiltinStageNode, ctx: ExecContext): Promise<OutputDirCheck | undefined> {
  const st = ctx.state.get(node.id);
  const expected = st?.outputs.find((o) => o.dest === normalDest(node.outDir));
  if (st === undefined || expected === undefined) return undefined;
  const rec = await ctx.store.readRecord(st.key, { checkObjects: false });
  if (rec === undefined || rec.outputs.hash !== expected.hash) return undefined;
  return checkOutputDir(ctx.graph.workspace, node.outDir, { expected, previous: rec.outputs });
}

/** Stages that need `id` directly. */
function dependentsOf(graph: PipelineGraph, id: StageId): StageId[] {
  return [...graph.stages.values()].filter((s) => s.needs.includes(id)).map((s) => s.id);
}

function normalDest(p: string): string {
  return path.posix.normalize(p.split(path.sep).join('/')).replace(/\/+$/, '').replace(/^\.\//, '');
}
