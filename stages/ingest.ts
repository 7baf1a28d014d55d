/**
 * The `ingest` stage: turns a user's images (a class-per-folder directory, or a
 * CSV/JSONL manifest of `path,label[,split]`) into a checked manifest.
 *
 * Every file is read once, hashed (sha256) and probed with sharp (header, pixel
 * limit, then a tiny decode that catches truncation; see `lib/probe.ts`). Probe
 * results are cached per content hash in `ctx.items` (`lib/probe-memo.ts`), and
 * content hashes per (path, stat signature) in the engine's hash memo format
 * (`openStatMemo`), so re-ingesting a large folder after adding a few files
 * reads and probes only the new ones; the others cost a stat (or nothing, with
 * the engine's listing of the source). Identical bytes
 * under different labels are all rejected as `label-conflict`; identical bytes
 * within one class are collapsed to the first path (code-unit order). The class
 * list is the sorted set of accepted labels. Symbolic links are not followed
 * unless `follow_symlinks`; a skipped link to a file is a `symlink-skipped` reject.
 *
 * Writes (see `lib/manifest.ts`): manifest.jsonl, classes.json, rejects.jsonl,
 * counts.json, conflicts.jsonl, duplicates.jsonl.
 *
 * Does not resize, split, or modify the user's files.
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import crypto, { createHash } from 'node:crypto';
import type { BuiltinStage, StageContext, StageResult } from './types.js';
import type { FileHasher } from '../src/hash/file-hasher.js';
import { unreachable } from '../src/result.js';
import { pathFilter } from './lib/globs.js';
import { DataInputError } from './lib/data-error.js';
import { DEFAULT_MAX_PIXELS, PROBE_FAILURE_REASONS, probeImage, sniffFormat, type ProbeFailure, type ProbeInfo } from './lib/probe.js';
import { ProbeMemo, type ProbeMemoKeys } from './lib/probe-memo.js';
import { classFoldersFromListing, compareCodeUnits, listClassFolders, parseSourceManifest, type Candidate, type KnownDirListing } from './lib/source-list.js';
import { SPLITS, type Split } from './lib/splits.js';
import { imageRuntimeFacts } from './lib/runtime-facts.js';
import { loadSharp } from './lib/lazy-modules.js';
import { formatCount } from './lib/format-count.js';
import { warmUpJpeg } from './lib/warm-up.js';
import {
  CLASSES_FILE,
  CONFLICTS_FILE,
  COUNTS_FILE,
  DUPLICATES_FILE,
  MANIFEST_FILE,
  REJECTS_FILE,
  type ConflictEntry,
  type DuplicateEntry,
  type IngestCounts,
  type ManifestEntry,
  type RejectEntry,
  type RejectReason,
} from './lib/manifest.js';

/** What to do with files that cannot be used. */
export const ON_INVALID = ['skip', 'fail'] as const;
/** `skip`: reject with a reason, warn, continue; `fail`: fail the stage naming every bad file. */
export type OnInvalid = (typeof ON_INVALID)[number];

/** Every reason a file can be rejected, in display order. */
export const REJECT_REASONS: readonly RejectReason[] = [...PROBE_FAILURE_REASONS, 'label-conflict', 'symlink-skipped'];

/** `ingest` params (`with:` keys). Exactly one of `source` / `manifest`. */
export interface IngestParams {
  /** Workspace-relative directory with one sub-folder per class (nested folders allowed; the class is the first level). */
  readonly source?: string;
  /** Workspace-relative CSV/JSONL of `path,label[,split]`; paths are relative to the manifest file. */
  readonly manifest?: string;
  /** Globs over source-relative paths; a file must match one. */
  readonly include: readonly string[];
  /** Globs over source-relative paths; a matching file is ignored (not rejected). */
  readonly exclude: readonly string[];
  readonly on_invalid: OnInvalid;
  /**
   * Files with more pixels than this are rejected before decoding, and so are
   * files of a format decoded a whole frame at once (GIF, interlaced PNG,
   * HEIF/AVIF, progressive JPEG) whose frame would take more than this many
   * bytes (`wholeFrameBytesPerPixel` in lib/probe.ts).
   */
  readonly max_pixels: number;
  /**
   * Follow symbolic links inside `source` (cycles are detected), wherever they
   * point (the engine's dependency hash follows them too). When false, a link
   * to a file in a class folder is rejected as `symlink-skipped` without
   * reading its target; links to folders are skipped with a warning.
   */
  readonly follow_symlinks: boolean;
}

/** Defaults, identical to `schemas/stages/ingest.json` (a test checks). */
export const INGEST_DEFAULTS = {
  include: ['**/*'],
  exclude: ['**/.*', '**/.*/**', '**/Thumbs.db', '**/desktop.ini'],
  on_invalid: 'skip',
  max_pixels: DEFAULT_MAX_PIXELS,
  follow_symlinks: false,
} as const satisfies Omit<IngestParams, 'source' | 'manifest'>;

/** Applies defaults to possibly partial params (the engine already did; direct callers may not have). */
export function ingestParams(p: Partial<IngestParams>): IngestParams {
  return { ...INGEST_DEFAULTS, ...stripUndefined(p) };
}

/** File names that look like images (for the top-level warning only; probing never trusts extensions). */
const IMAGE_EXTENSIONS = /\.(png|jpe?g|jfif|webp|gif|tiff?|bmp|avif|heic|heif|svg)$/i;


/** Probes in flight: sharp work runs on libuv's 4 threads. */
const PROBE_CONCURRENCY = 4;
/** Files read and hashed at once (memoised runs are all reads; a small file read is latency-bound). */
const READ_CONCURRENCY = 16;

export { DataInputError };
export type { ProbeMemoKeys };

/** The outcome for one candidate file. */
type Probed =
  | { readonly ok: true; readonly c: Candidate; readonly sha256: string; readonly bytes: number; readonly info: ProbeInfo }
  | {
      readonly ok: false;
      readonly c: Candidate;
      readonly sha256?: string;
      readonly failure: ProbeFailure;
      /** False for a sharp failure seen while other decodes ran (its message may belong to another file). */
      readonly confirmed: boolean;
    };

/** A candidate that probed as a usable image. */
type Accepted = Extract<Probed, { ok: true }>;

export const ingestStage: BuiltinStage<IngestParams> = {
  name: 'ingest',
  // 2: skipped symlinks are rejects; WebP/TIFF truncation found from the container (cached probes of v1 may have accepted them).
  // 3: formats decoded whole (GIF, interlaced PNG, HEIF/AVIF, progressive JPEG) are held to max_pixels bytes of frame.
  version: '3',
  description: 'Finds, hashes and validates images (class folders or a CSV/JSONL manifest); writes manifest.jsonl, classes.json and rejects.jsonl',
  runtimeFacts: () => imageRuntimeFacts(),
  // The manifest holds absolute image paths: one workspace's record must not serve another's.
  workspaceBound: true,
  // The engine's listing of `source` (its key's walk) spares a second walk, stat and hash of every file.
  usesDepListings: true,
  inputs: [],
  fileDeps(params) {
    if (params.source !== undefined) return [params.source];
    if (params.manifest !== undefined) {
      const dir = path.dirname(params.manifest);
      return dir === '.' || dir === '' ? [params.manifest] : [params.manifest, dir];
    }
    return [];
  },
  // A run that has anything to probe needs sharp (and a run with nothing new rarely happens: the
  // engine skips ingest when its source is unchanged). Probing a tiny JPEG as well takes libvips'
  // first-use set-up (~5 ms CPU, up to tens of ms wall) off the first real probe, and loading
  // p-limit here takes its module resolution (~3 ms) off the first queued file.
  prepare: async () => {
    loadSharp();
    await import('p-limit');
    const r = await probeImage(warmUpJpeg());
    if (!r.ok) throw new Error(`ingest prepare: the warm-up JPEG did not probe (${r.error.reason}: ${r.error.detail})`); // a bug
  },
  run: (ctx) => runIngest(ctx),
};

async function runIngest(ctx: StageContext<IngestParams>): Promise<StageResult> {
  const params = ingestParams(ctx.params);
  const filter = pathFilter(params.include, params.exclude);
  // The probe memo's entries are read while the source is listed.
  const memoKeys = probeMemoKeys(params.max_pixels);
  const loadingMemo = ProbeMemo.load(ctx.items, memoKeys);
  loadingMemo.catch(() => {}); // handled: awaited below (a listing failure ends the run before that)
  const listed = await listCandidates(ctx, params, filter);
  const { candidates, unlabelled, skippedLinks, statPath, known } = listed;
  // Top-level files have no class. README/LICENSE/manifest files are expected there; images are probably a mistake.
  const strayImages = unlabelled.filter((rel) => IMAGE_EXTENSIONS.test(rel));
  if (strayImages.length > 0) {
    ctx.log.warn(`${strayImages.length} image file(s) directly under the source root have no class folder and were ignored (e.g. ${strayImages.slice(0, 3).join(', ')})`);
  }

  // Probe every candidate (cached per content hash). Files whose stat signature the hash memo
  // knows, with a memoised probe, are settled here synchronously (a stat and two lookups each);
  // the rest (new, changed, racy, special or large files) are queued for reading and probing as
  // they are found, and the loop yields now and then so that work (libuv and sharp threads)
  // overlaps the stats of the files after them.
  const memo = await loadingMemo;
  // With the engine's hashes (`known`) the stat memo is not needed: a file it cannot settle is read anyway.
  const hasher = known === undefined ? await openStatMemo(ctx, params) : undefined;
  const probed: Probed[] = new Array<Probed>(candidates.length);
  const queued: Promise<void>[] = [];
  let queue: ProbeQueue | undefined;
  let done = 0;
  let probedFresh = 0;
  let read = 0;
  const progress = () => {
    if (done % 64 === 0 || done === candidates.length) ctx.log.progress(done, candidates.length, 'probe');
  };
  try {
    for (let i = 0; i < candidates.length; i++) {
      if ((i & 255) === 255 && queued.length > 0) await new Promise((r) => setImmediate(r));
      if ((i & 255) === 0 && ctx.signal.aborted) throw ctx.signal.reason ?? new Error('aborted');
      const c = candidates[i]!;
      const k = known?.[i];
      const byHash = k === undefined ? undefined : settledByHash(memo, c, k.sha256, k.size);
      if (byHash !== undefined) {
        probed[i] = byHash;
        done++;
        continue;
      }
      // Same file as c.abs (see DirListing.realRoot); c.abs stays its identity in the memo and the manifest.
      const st = fss.statSync(statPath(c), { throwIfNoEntry: false });
      const settled = hasher === undefined ? undefined : settledByStat(memo, c, st, hasher);
      if (settled !== undefined) {
        probed[i] = settled;
        done++;
        continue;
      }
      queue ??= await probeQueue();
      const { decodeLimit } = queue;
      const task = queue.limit(async (): Promise<void> => {
        if (ctx.signal.aborted) throw ctx.signal.reason ?? new Error('aborted');
        probed[i] = await probeCandidate(memo, c, st, params.max_pixels, decodeLimit, () => probedFresh++, false, hasher, () => read++);
        done++;
        progress();
      });
      task.catch(() => {}); // handled: awaited below (an abort may end the loop before that)
      queued.push(task);
    }
    if (done > 0 && done < candidates.length) ctx.log.progress(done, candidates.length, 'probe');
  } catch (e) {
    await Promise.allSettled(queued);
    throw e;
  }
  await Promise.all(queued);
  if (queued.length === 0 && candidates.length > 0) ctx.log.progress(done, candidates.length, 'probe');

  // libvips keeps one error buffer per process: when several decodes fail at
  // once, messages can be swapped or lost ("Unknown error"). Re-probe fresh
  // failures one at a time so each reason is deterministic, then cache it.
  for (let i = 0; i < probed.length; i++) {
    const p = probed[i]!;
    if (p.ok || p.confirmed) continue;
    probed[i] = await probeCandidate(memo, p.c, fss.statSync(p.c.abs, { throwIfNoEntry: false }), params.max_pixels, (f) => f(), () => {}, true);
  }
  await memo.save(ctx.items, memoKeys);
  await hasher?.save();

  const rejects: RejectEntry[] = skippedLinks.map((l) => rejectOf(l.c, 'symlink-skipped', l.detail));
  const accepted: Accepted[] = [];
  for (const p of probed) {
    if (p.ok) accepted.push(p);
    else rejects.push(rejectOf(p.c, p.failure.reason, p.failure.detail, p.sha256));
  }

  // Group identical bytes: conflicts across labels, duplicates within one. Almost every content
  // is unique: one Set insertion each; only contents seen twice are grouped (no array, object or
  // sort per image). A kept image's split is its own unless it stands for a group (`groupSplit`).
  const seen = new Set<string>();
  let repeated: Set<string> | undefined;
  for (const a of accepted) {
    const before = seen.size;
    if (seen.add(a.sha256).size === before) (repeated ??= new Set()).add(a.sha256);
  }
  const conflicts: ConflictEntry[] = [];
  const duplicates: DuplicateEntry[] = [];
  const groupSplit = new Map<Accepted, Split | undefined>();
  let kept = accepted;
  if (repeated !== undefined) {
    kept = [];
    const groups = new Map<string, Accepted[]>();
    for (const a of accepted) {
      if (!repeated.has(a.sha256)) kept.push(a);
      else if (groups.has(a.sha256)) groups.get(a.sha256)!.push(a);
      else groups.set(a.sha256, [a]);
    }
    for (const [sha, group] of groups) {
      group.sort((a, b) => compareCodeUnits(a.c.rel, b.c.rel));
      const labels = [...new Set(group.map((g) => g.c.label))].sort(compareCodeUnits);
      if (labels.length > 1) {
        conflicts.push({ sha256: sha, labels, rels: group.map((g) => g.c.rel) });
        for (const g of group) {
          const others = group.filter((o) => o.c.label !== g.c.label).map((o) => `${o.c.rel} (${o.c.label})`);
          rejects.push(rejectOf(g.c, 'label-conflict', `same content as ${others.join(', ')}`, sha));
        }
        continue;
      }
      const first = group[0]!;
      for (const d of group.slice(1)) duplicates.push({ rel: d.c.rel, keptRel: first.c.rel, sha256: sha, label: first.c.label });
      kept.push(first);
      groupSplit.set(first, mostHeldOut(group.map((g) => g.c.split)));
    }
  }

  // Usually in order already (the engine's listing and the walk are sorted, groups are rare): one
  // pass of plain comparisons instead of ~10k comparator calls.
  if (!sortedByRel(kept)) kept.sort((a, b) => compareCodeUnits(a.c.rel, b.c.rel));
  rejects.sort((a, b) => compareCodeUnits(a.rel, b.rel) || compareCodeUnits(a.reason, b.reason));
  conflicts.sort((a, b) => compareCodeUnits(a.sha256, b.sha256));
  duplicates.sort((a, b) => compareCodeUnits(a.rel, b.rel));

  const classes = [...new Set(kept.map((k) => k.c.label))].sort(compareCodeUnits);
  const perClass = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const k of kept) perClass[k.c.label]!++;
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const entries: ManifestEntry[] = kept.map((p) => {
    const e: ManifestEntry = {
      path: p.c.abs,
      rel: p.c.rel,
      sha256: p.sha256,
      label: p.c.label,
      labelIndex: classIndex.get(p.c.label)!,
      width: p.info.width,
      height: p.info.height,
      format: p.info.format,
      bytes: p.bytes,
    };
    const split = groupSplit.size > 0 && groupSplit.has(p) ? groupSplit.get(p) : p.c.split;
    return split === undefined ? e : { ...e, split };
  });

  const rejectedByReason = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  for (const r of rejects) rejectedByReason[r.reason]++;
  const counts: IngestCounts = {
    files: candidates.length + skippedLinks.length,
    accepted: kept.length,
    rejected: rejectedByReason,
    duplicates: duplicates.length,
    unlabelled: unlabelled.length,
    classes: perClass,
  };

  // Plain writes: outDir is the engine's staging dir, read only after this returns, and the engine
  // fsyncs each file it stores as a new object (one whose object exists already needs no sync).
  // Synchronous: an open, one write and a close each (the promise form writes a 2.5 MB manifest
  // in 512 KiB pieces, each a round trip: ~8 ms CPU for the six files against ~2 ms, measured).
  const write = (name: string, text: string) => fss.writeFileSync(path.join(ctx.outDir, name), text);
  write(MANIFEST_FILE, jsonl(entries));
  write(CLASSES_FILE, JSON.stringify(classes, null, 2) + '\n');
  write(REJECTS_FILE, jsonl(rejects));
  write(CONFLICTS_FILE, jsonl(conflicts));
  write(DUPLICATES_FILE, jsonl(duplicates));
  write(COUNTS_FILE, JSON.stringify(counts, null, 2) + '\n');

  const rejectSummary = REJECT_REASONS.filter((r) => rejectedByReason[r] > 0)
    .map((r) => `${rejectedByReason[r]} ${r}`)
    .join(', ');
  if (rejects.length > 0) {
    const listing = rejects.slice(0, 20).map((r) => `  ${r.path}: ${r.reason} (${r.detail})`);
    if (rejects.length > 20) listing.push(`  ... and ${rejects.length - 20} more in ${REJECTS_FILE}`);
    const considered = candidates.length + skippedLinks.length;
    if (params.on_invalid === 'fail') {
      throw new DataInputError(`ingest: ${rejects.length} invalid file(s) (${rejectSummary}) and on_invalid is "fail":\n${listing.join('\n')}`);
    }
    ctx.log.warn(`${rejects.length} of ${considered} file(s) rejected (${rejectSummary}); see ${REJECTS_FILE}:\n${listing.join('\n')}`);
  }
  if (kept.length === 0) {
    throw new DataInputError(`ingest: no usable images in ${params.source ?? params.manifest} (${candidates.length} file(s) considered${rejects.length > 0 ? `, ${rejectSummary}` : ''})`);
  }
  if (duplicates.length > 0) ctx.log.info(`${duplicates.length} exact duplicate(s) within a class collapsed (see ${DUPLICATES_FILE})`);

  return {
    metrics: { images: kept.length, classes: classes.length, rejected: rejects.length, duplicates: duplicates.length, probed: probedFresh, read },
    summary: `${formatCount(kept.length)} images in ${classes.length} classes${rejects.length > 0 ? `, ${formatCount(rejects.length)} rejected (${rejectSummary})` : ''}${duplicates.length > 0 ? `, ${formatCount(duplicates.length)} duplicates collapsed` : ''}`,
  };
}

async function listCandidates(
  ctx: StageContext<IngestParams>,
  params: IngestParams,
  filter: ReturnType<typeof pathFilter>,
): Promise<{ candidates: Candidate[]; unlabelled: string[]; skippedLinks: SkippedLink[]; statPath: (c: Candidate) => string; known?: KnownDirListing['known'] }> {
  if ((params.source === undefined) === (params.manifest === undefined)) {
    throw new DataInputError('ingest: give exactly one of `source` (a class-per-folder directory) or `manifest` (a CSV/JSONL file)');
  }
  if (params.source !== undefined) {
    const root = path.resolve(ctx.workspace, params.source);
    const st = await fs.stat(root).catch(() => undefined);
    if (st === undefined || !st.isDirectory()) throw new DataInputError(`ingest: source ${params.source} (${root}) is not a directory`);
    // The engine's walk for the key, when it saw only plain files: no second walk, stat or hash here.
    const fromEngine = ctx.depListings?.[root];
    if (fromEngine !== undefined) {
      const listing = classFoldersFromListing(root, fromEngine, filter);
      return { ...listing, skippedLinks: [], statPath: (c) => listing.realRoot + c.rel };
    }
    const listing = await listClassFolders(root, filter, params.follow_symlinks);
    if (listing.skippedSymlinks.length > 0) {
      ctx.log.warn(`${listing.skippedSymlinks.length} symbolic link(s) skipped (set follow_symlinks: true to follow), e.g. ${listing.skippedSymlinks.slice(0, 3).join(', ')}`);
    }
    const { realRoot } = listing;
    // '/'-separated rel is a valid path tail wherever this runs (Windows accepts '/').
    return { ...listing, skippedLinks: await skippedLinkRejects(root, listing.skippedSymlinks, filter), statPath: (c) => realRoot + c.rel };
  }
  const file = path.resolve(ctx.workspace, params.manifest!);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new DataInputError(`ingest: cannot read manifest ${params.manifest} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const parsed = parseSourceManifest(file, text, filter);
  if (!parsed.ok) {
    const shown = parsed.error.slice(0, 20);
    throw new DataInputError(`ingest: ${parsed.error.length} error(s) in manifest:\n${shown.join('\n')}${parsed.error.length > 20 ? `\n... and ${parsed.error.length - 20} more` : ''}`);
  }
  return { candidates: parsed.value, unlabelled: [], skippedLinks: [], statPath: (c) => c.abs };
}

/** A symbolic link to a file that was not followed: it becomes a `symlink-skipped` reject. */
interface SkippedLink {
  readonly c: Candidate;
  readonly detail: string;
}

/**
 * The skipped links that would have been images of a class: inside a class
 * folder, accepted by the globs, pointing at a file (or nowhere). Links to
 * directories and top-level links stay a warning only. The detail names the
 * target and whether it lies outside the source directory; the target is
 * never read.
 */
async function skippedLinkRejects(root: string, rels: readonly string[], filter: ReturnType<typeof pathFilter>): Promise<SkippedLink[]> {
  const out: SkippedLink[] = [];
  const realRoot = await fs.realpath(root);
  for (const rel of rels) {
    const slash = rel.indexOf('/');
    if (slash === -1 || !filter.accepts(rel)) continue;
    const abs = path.join(root, ...rel.split('/'));
    const target = await fs.readlink(abs).catch(() => '?');
    const st = await fs.stat(abs).catch(() => undefined);
    if (st?.isDirectory() === true) continue;
    const real = await fs.realpath(abs).catch(() => undefined);
    const fromRoot = real === undefined ? undefined : path.relative(realRoot, real);
    const inside = fromRoot !== undefined && !/^\.\.($|[\\/])/.test(fromRoot) && !path.isAbsolute(fromRoot);
    const where = real === undefined ? 'a missing file' : inside ? 'a file inside the source directory' : 'a file outside the source directory';
    out.push({
      c: { abs, rel, label: rel.slice(0, slash) },
      detail: `symbolic link to ${target} (${where}), not followed; set follow_symlinks: true to read it`,
    });
  }
  return out;
}

/** The read/probe queue of files a stat could not settle. */
interface ProbeQueue {
  /** Files read, hashed and probed at once. */
  readonly limit: <T>(f: () => Promise<T>) => Promise<T>;
  /** sharp probes in flight. */
  readonly decodeLimit: <T>(f: () => Promise<T>) => Promise<T>;
}

/** A new probe queue (imports p-limit: a re-run that settles every file by stat never loads it). */
async function probeQueue(): Promise<ProbeQueue> {
  const { default: pLimit } = await import('p-limit');
  return { limit: pLimit(READ_CONCURRENCY), decodeLimit: pLimit(PROBE_CONCURRENCY) };
}

/** The probe memo's item-cache keys for `max_pixels` (exported for tests). */
export function probeMemoKeys(maxPixels: number): ProbeMemoKeys {
  const key = (stage: string) => createHash('sha256').update(JSON.stringify({ stage, version: ingestStage.version, maxPixels })).digest('hex');
  // The base keeps the key of the single entry it replaces, so existing caches stay valid.
  return { base: key('ingest.probe-memo'), delta: key('ingest.probe-memo-delta') };
}

/**
 * The content-hash memo of source files: absolute path + stat signature →
 * sha256 (src/hash/file-hasher.ts, the engine's own memo, with its racy-mtime
 * rule), one file per source under `items/ingest/stat-memo/`. With it a re-run
 * over 10k unchanged files stats them instead of reading and hashing them.
 */
async function openStatMemo(ctx: StageContext<IngestParams>, params: IngestParams): Promise<FileHasher> {
  const { FileHasher } = await import('../src/hash/file-hasher.js');
  const which = createHash('sha256').update(JSON.stringify({ workspace: ctx.workspace, source: params.source ?? null, manifest: params.manifest ?? null })).digest('hex');
  return FileHasher.open(path.join(ctx.cacheDir, 'items', 'ingest', 'stat-memo', `${which}.bin`));
}

/**
 * The outcome for a candidate decided by its stat alone, or undefined when it
 * must be read: a FIFO, device or socket is refused, and a regular file whose
 * stat signature the hash memo knows (racy-window rule included, see
 * `FileHasher.lookup`) with a memoised probe is settled without reading it.
 * Large files (sniffed first) and everything else go to `probeCandidate`.
 */
function settledByStat(memo: ProbeMemo, c: Candidate, st: fss.Stats | undefined, hasher: FileHasher): Probed | undefined {
  if (st === undefined) return undefined;
  if (!st.isFile()) {
    const special = specialFileKind(st);
    return special === undefined ? undefined : specialReject(c, special);
  }
  if (st.size === 0 || st.size > LARGE_FILE_BYTES) return undefined;
  const known = hasher.lookup(c.abs, st);
  const outcome = known === undefined ? undefined : memo.get(known);
  if (known === undefined || outcome === undefined) return undefined;
  return outcome.ok ? { ok: true, c, sha256: known, bytes: st.size, info: outcome.info } : { ok: false, c, sha256: known, failure: outcome.failure, confirmed: true };
}

/**
 * The outcome for a candidate whose content hash and size the engine's
 * listing gave (`StageContext.depListings`), when the probe memo has it;
 * undefined otherwise (empty and large files go the usual way too, so their
 * messages stay the same).
 */
function settledByHash(memo: ProbeMemo, c: Candidate, sha256: string, size: number): Probed | undefined {
  if (size === 0 || size > LARGE_FILE_BYTES) return undefined;
  const outcome = memo.get(sha256);
  if (outcome === undefined) return undefined;
  return outcome.ok ? { ok: true, c, sha256, bytes: size, info: outcome.info } : { ok: false, c, sha256, failure: outcome.failure, confirmed: true };
}

/** Reading a FIFO never ends and a device may never end: they are refused before opening. */
function specialReject(c: Candidate, kind: string): Probed {
  return { ok: false, c, failure: { reason: 'unreadable', detail: `not a regular file (${kind})` }, confirmed: true };
}

/**
 * Hashes and probes one file that `settledByStat` could not settle, given
 * the stat taken before (undefined: it did not exist then); `serial` marks
 * the one-at-a-time re-check whose result is always memoised. A large file
 * whose stat signature the hash memo knows, with a memoised probe, is not
 * read at all.
 */
async function probeCandidate(
  memo: ProbeMemo,
  c: Candidate,
  st: fss.Stats | undefined,
  maxPixels: number,
  decodeLimit: <T>(f: () => Promise<T>) => Promise<T>,
  onFresh: () => void,
  serial = false,
  hasher?: FileHasher,
  onRead?: () => void,
): Promise<Probed> {
  const special = st === undefined ? undefined : specialFileKind(st);
  if (special !== undefined) return specialReject(c, special);
  if (st !== undefined && st.isFile() && st.size > LARGE_FILE_BYTES) {
    const head = await readHead(c.abs, SNIFF_BYTES);
    if (head !== undefined && sniffFormat(head) === undefined) {
      onRead?.();
      return { ok: false, c, failure: { reason: 'not-an-image', detail: `no known image signature in the first bytes of this ${Math.round(st.size / 2 ** 20)} MiB file (not read further)` }, confirmed: true };
    }
  }
  // Smaller files were looked up by `settledByStat` already (a second lookup would only miss again).
  if (!serial && hasher !== undefined && st !== undefined && st.isFile() && st.size > LARGE_FILE_BYTES) {
    const known = hasher.lookup(c.abs, st);
    const outcome = known === undefined ? undefined : memo.get(known);
    if (known !== undefined && outcome !== undefined) {
      return outcome.ok ? { ok: true, c, sha256: known, bytes: st.size, info: outcome.info } : { ok: false, c, sha256: known, failure: outcome.failure, confirmed: true };
    }
  }
  let buf: Buffer;
  onRead?.();
  try {
    buf = await readWhole(c.abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    return { ok: false, c, failure: { reason: 'unreadable', detail: `cannot read file (${code})` }, confirmed: true };
  }
  if (buf.length === 0) return { ok: false, c, failure: { reason: 'empty', detail: 'file is empty' }, confirmed: true };
  const sha256 = sha256Hex(buf);
  // Stat taken before the read: if the file changed meanwhile its signature differs next time (or the racy rule skips it).
  if (hasher !== undefined && st !== undefined && st.isFile() && st.size === buf.length) hasher.remember(c.abs, st, sha256);
  let outcome = serial ? undefined : memo.get(sha256);
  if (outcome === undefined) {
    onFresh();
    const r = await decodeLimit(() => probeImage(buf, maxPixels));
    outcome = r.ok ? { ok: true, info: r.value } : { ok: false, failure: r.error };
    // A failure seen among concurrent decodes is cached only once confirmed serially (see runIngest).
    if (outcome.ok || serial) memo.set(sha256, outcome);
    else return { ok: false, c, sha256, failure: outcome.failure, confirmed: false };
  }
  return outcome.ok ? { ok: true, c, sha256, bytes: buf.length, info: outcome.info } : { ok: false, c, sha256, failure: outcome.failure, confirmed: true };
}

/**
 * The bytes of `file`: `fs.readFile` with a callback (the promise form's FileHandle and promise
 * per step cost ~25 µs more main-thread CPU per small file, measured over 100 new JPEGs).
 */
function readWhole(file: string): Promise<Buffer> {
  return new Promise((resolve, reject) => fss.readFile(file, (e, data) => (e === null ? resolve(data) : reject(e))));
}

/** `crypto.hash` (Node >= 20.12): one-shot, without a Hash object per file. */
const oneShotHash = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'hex') => string }).hash;

/** Lowercase hex sha256 of `data`. */
function sha256Hex(data: Uint8Array): string {
  return oneShotHash === undefined ? createHash('sha256').update(data).digest('hex') : oneShotHash('sha256', data, 'hex');
}

/**
 * Files larger than this are first sniffed from their head: without an image
 * signature they are rejected as `not-an-image` without being read whole (a
 * stray 2 GB video must not be read into memory, 16 files at a time).
 */
const LARGE_FILE_BYTES = 64 * 2 ** 20;
/** Bytes read to sniff a large file's signature. */
const SNIFF_BYTES = 64;

/** The first `n` bytes of `file`, or undefined when it cannot be opened (the full read then reports why). */
async function readHead(file: string, n: number): Promise<Buffer | undefined> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(n), 0, n, 0);
    return buffer.subarray(0, bytesRead);
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

/** What a non-regular, non-directory file is (FIFO, device, socket), or undefined. */
function specialFileKind(st: fss.Stats): string | undefined {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return undefined;
}

/** Whether `items` are in code-unit order of their `rel`. */
function sortedByRel(items: readonly { readonly c: Candidate }[]): boolean {
  for (let i = 1; i < items.length; i++) if (items[i - 1]!.c.rel > items[i]!.c.rel) return false;
  return true;
}

/** Of duplicates carrying predefined splits, the most held-out wins (test > validation > train), so no copy leaks into training. */
function mostHeldOut(splits: readonly (Split | undefined)[]): Split | undefined {
  let best: Split | undefined;
  for (const s of splits) if (s !== undefined && (best === undefined || SPLITS.indexOf(s) > SPLITS.indexOf(best))) best = s;
  return best;
}

function rejectOf(c: Candidate, reason: RejectReason, detail: string, sha256?: string): RejectEntry {
  return { path: c.abs, rel: c.rel, reason, detail: `${detail}${describeReason(reason)}`, label: c.label, ...(sha256 !== undefined ? { sha256 } : {}) };
}

/** A short hint appended to each reason's detail. */
function describeReason(reason: RejectReason): string {
  switch (reason) {
    case 'empty':
    case 'truncated':
    case 'not-an-image':
    case 'corrupt':
    case 'unreadable':
    case 'label-conflict':
    case 'symlink-skipped':
      return '';
    case 'unsupported-format':
      return '; convert it to PNG or JPEG';
    case 'too-many-pixels':
      return '; raise max_pixels if this image is genuine';
    default:
      return unreachable(reason);
  }
}

/**
 * One JSON object per line: the bytes of `JSON.stringify(row) + '\n'` per row, made with ONE
 * `JSON.stringify` of the array (measured 2-3x cheaper on 10k manifest rows than one call per
 * row). Rows are objects whose values are strings, numbers, booleans or arrays of those, never
 * objects: a `}` is then only ever a row's end, and `},{"` (a quote not escaped) only ever the
 * boundary between two rows, since inside a JSON string every `"` is written `\"`.
 */
export function jsonl<T extends { readonly [K in keyof T]: FlatValue }>(rows: readonly T[]): string {
  if (rows.length === 0) return '';
  return JSON.stringify(rows).slice(1, -1).replaceAll('},{"', '}\n{"') + '\n';
}

/** A value `jsonl` rows may hold: no objects (see `jsonl`). */
type FlatValue = string | number | boolean | undefined | readonly (string | number | boolean)[];


function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
