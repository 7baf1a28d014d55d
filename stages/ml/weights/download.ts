/**
 * Fetches one pinned weight file into the content-addressed weights cache, or finds it there.
 *
 * Cache layout (under the engine's shared cache dir):
 *   <cacheDir>/weights/<sha256>/<fileName>   verified files, installed by atomic rename
 *   <cacheDir>/weights/<fileName>.part       an interrupted download, resumed with an HTTP Range request
 *   <cacheDir>/weights/<fileName>.part.lock  held (pid inside) while one process downloads
 *   <cacheDir>/weights/<fileName>            a file a user dropped in by hand (air-gapped machines): it is
 *                                            verified like a download and then moved into place
 *
 * A download is checked against the pinned size, then MD5 and SHA-256 where pinned. A file that fails a check
 * is an error value and never reaches the cache; on a hash or size mismatch the `.part` is deleted too. A
 * transfer that stops early (connection cut, Content-Length larger than the body) is resumed from where it
 * stopped, a few times within one call and again on the next call.
 *
 * This module does not parse the file (h5.ts does), does not know which backbone needs which file
 * (imagenet.ts), and uses only Node's built-in fetch (no proxy support beyond what Node provides).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { err, ok, type Result } from '../../../src/result.js';
import type { WeightsSource } from '../backbones/spec.js';
import type { H5Problem } from './h5.js';

/** Why weights could not be provided. */
export type WeightsFailureReason =
  /** The host could not be reached (DNS, refused, unreachable) and nothing usable is cached. */
  | 'offline'
  /** The server answered with a non-success status (404, 500, ...). */
  | 'http-status'
  /** The transfer ended before the pinned size was reached, after all resume attempts. The `.part` is kept. */
  | 'truncated'
  /** The file (or what the server announces) does not have the pinned size. */
  | 'size-mismatch'
  /** MD5 or SHA-256 differs from the pin. */
  | 'hash-mismatch'
  /** The caller's AbortSignal fired. */
  | 'aborted'
  /** A `weights: ./path` file does not exist or cannot be read. */
  | 'local-missing'
  /** The backbone has no weights of the requested kind (e.g. `imagenet` for simple_cnn). */
  | 'unsupported-weights'
  /** The backbone name is not in the registry. */
  | 'unknown-backbone'
  /** The requested input is smaller than the architecture allows, or has the wrong channel count for pretrained weights. */
  | 'bad-input-shape'
  /** The file downloaded fine but does not fit the model (see `problems`). */
  | 'h5-invalid'
  /** The bundled (npm) model could not be loaded. */
  | 'bundled-failed';

/** An expected failure of getting weights, with everything a user needs to fix it in `message`. */
export interface WeightsFailure {
  readonly reason: WeightsFailureReason;
  /** Complete, multi-line human message (what failed, the URL, the pins, where to put the file). */
  readonly message: string;
  /** The URL involved, if any. */
  readonly url?: string;
  /** The local file involved, if any. */
  readonly file?: string;
  /** For `h5-invalid`: every located problem. */
  readonly problems?: readonly H5Problem[];
}

/** Where progress goes (a StageLogger fits). */
export interface WeightsLogger {
  info(message: string): void;
  warn(message: string): void;
  progress?(done: number, total: number, label?: string): void;
}

/** Options for {@link fetchWeights}. */
export interface FetchWeightsOptions {
  /** The engine's shared cache dir; files go under `<cacheDir>/weights/`. */
  readonly cacheDir: string;
  /** Replaces `source.base` (e.g. `http://mirror.local/keras-applications/`). */
  readonly mirror?: string;
  readonly signal?: AbortSignal;
  readonly log?: WeightsLogger;
  /** Extra attempts within this call after an interrupted transfer (each resumes with Range). Default 3. */
  readonly retries?: number;
  /** A transfer with no data for this long is cut and resumed. Default 60 s. */
  readonly stallMs?: number;
  /** Label for messages, e.g. `resnet50 ImageNet weights`. */
  readonly what?: string;
}

/** A verified file in the cache. */
export interface CachedWeights {
  /** Absolute path `<cacheDir>/weights/<sha256>/<fileName>`. */
  readonly path: string;
  /** SHA-256 of the file: the identity that goes into fingerprints. */
  readonly sha256: string;
  readonly bytes: number;
  /** True when no network was used. */
  readonly fromCache: boolean;
}

/** Hashes of a file. */
export interface FileHashes {
  readonly md5: string;
  readonly sha256: string;
  readonly bytes: number;
}

/** The URL a source is fetched from: `mirror` (if given) replaces the source's base. */
export function weightsUrl(source: WeightsSource, mirror?: string): string {
  const base = mirror ? (mirror.endsWith('/') ? mirror : `${mirror}/`) : source.base;
  return base + source.path;
}

/** Directory holding all weight files. */
export function weightsDir(cacheDir: string): string {
  return path.join(cacheDir, 'weights');
}

/** MD5 and SHA-256 of a file, streamed. */
export async function hashFile(file: string): Promise<FileHashes> {
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    md5.update(chunk as Buffer);
    sha.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { md5: md5.digest('hex'), sha256: sha.digest('hex'), bytes };
}

const fmtBytes = (n: number): string => n.toLocaleString('en-US');

/** The "how to get this file by hand" block that ends every network error message. */
export function manualInstructions(source: WeightsSource, opts: { cacheDir: string; mirror?: string }): string {
  const url = weightsUrl(source, opts.mirror);
  const lines = [
    `  download:  ${url}`,
    `  size:      ${fmtBytes(source.bytes)} bytes`,
    `  md5:       ${source.md5 ?? '(none published by Keras)'}`,
    `  sha256:    ${source.sha256 ?? '(none published; not pinned)'}`,
    `then either put it at  ${path.join(weightsDir(opts.cacheDir), source.fileName)}  (it is verified and moved into the cache on the next run)`,
    `or set  weights: ./path/to/${source.fileName}  in the stage's params,`,
    `or point PIPELINE_WEIGHTS_MIRROR (or the mirror option) at a server holding <mirror>/${source.path}.`,
  ];
  return lines.join('\n');
}

/** Checks a file against a source's pins (size first, then MD5 / SHA-256 where pinned). */
export async function verifyAgainstPin(file: string, source: WeightsSource, what: string): Promise<Result<FileHashes, WeightsFailure>> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (e) {
    return err({ reason: 'local-missing', file, message: `${what}: cannot read ${file}: ${(e as Error).message}` });
  }
  if (st.size !== source.bytes) {
    return err({
      reason: 'size-mismatch',
      file,
      message: `${what}: ${file} has ${fmtBytes(st.size)} bytes, expected ${fmtBytes(source.bytes)} (${source.fileName})`,
    });
  }
  const h = await hashFile(file);
  const bad: string[] = [];
  if (source.md5 && h.md5 !== source.md5) bad.push(`md5 ${h.md5}, expected ${source.md5}`);
  if (source.sha256 && h.sha256 !== source.sha256) bad.push(`sha256 ${h.sha256}, expected ${source.sha256}`);
  if (bad.length) return err({ reason: 'hash-mismatch', file, message: `${what}: ${file} does not match the pinned hashes: ${bad.join('; ')}` });
  return ok(h);
}

/**
 * After a first install of a file with no pinned SHA-256: says what was checked and prints the SHA-256 computed
 * (also the name of its cache directory), so it can be pinned as `sha256` in the source's registry entry. A file
 * with no published hash at all (size checked only) is a warning.
 */
function reportUnpinnedSha(source: WeightsSource, h: FileHashes, what: string, log: WeightsLogger | undefined): void {
  if (source.sha256) return;
  const pin = `sha256 ${h.sha256} (not pinned; to pin it, set sha256: '${h.sha256}' on ${source.fileName}'s entry in stages/ml/backbones/)`;
  if (source.md5) log?.info(`${what}: size and md5 ${h.md5} match the pins; ${pin}`);
  else log?.warn(`${what}: no published hash to check against (size matched); recorded ${pin}`);
}

/**
 * Finds an installed copy: `<weights>/<64 hex>/<fileName>` with the pinned
 * size (and the pinned sha256 as its dir, if pinned) whose bytes still hash
 * to its directory name. A copy that does not (a flipped byte on disk: same
 * size) is removed, so it is downloaded again instead of loaded: one hash per
 * load, against a silently wrong model.
 */
async function findCached(dir: string, source: WeightsSource): Promise<CachedWeights | undefined> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    return undefined;
  }
  const candidates = entries.filter((e) => /^[0-9a-f]{64}$/.test(e) && (!source.sha256 || e === source.sha256)).sort();
  for (const sha of candidates) {
    const p = path.join(dir, sha, source.fileName);
    try {
      const st = await fs.stat(p);
      if (!st.isFile() || st.size !== source.bytes) continue;
      if ((await hashFile(p)).sha256 === sha) return { path: p, sha256: sha, bytes: st.size, fromCache: true };
      await fs.rm(p, { force: true }); // corrupt since it was installed
    } catch {
      /* not this one */
    }
  }
  return undefined;
}

/** Moves a verified file to `<dir>/<sha256>/<fileName>` (rename: atomic on one filesystem). */
async function install(dir: string, from: string, source: WeightsSource, h: FileHashes): Promise<CachedWeights> {
  const target = path.join(dir, h.sha256, source.fileName);
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rename(from, target);
  return { path: target, sha256: h.sha256, bytes: h.bytes, fromCache: false };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `<part>.lock` (O_EXCL, pid inside); waits while a live process holds it, steals it from a dead one. */
async function lock(lockFile: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  for (;;) {
    try {
      const h = await fs.open(lockFile, 'wx');
      await h.writeFile(String(process.pid));
      await h.close();
      return () => fs.rm(lockFile, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(await fs.readFile(lockFile, 'utf8').catch(() => ''));
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) {
      await fs.rm(lockFile, { force: true });
      continue;
    }
    if (signal?.aborted) throw signal.reason;
    await sleep(250);
  }
}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function causeCode(e: unknown): string | undefined {
  const c = (e as { cause?: { code?: string } }).cause;
  return c?.code ?? (e as { code?: string }).code;
}

type Attempt =
  | { kind: 'done' }
  | { kind: 'cut'; why: string }
  | { kind: 'restart' }
  | { kind: 'fail'; failure: WeightsFailure };

/** One HTTP request, appending to `part` from its current size. */
async function attempt(url: string, part: string, source: WeightsSource, opts: FetchWeightsOptions, what: string, first: boolean): Promise<Attempt> {
  const have = await fs.stat(part).then((s) => s.size, () => 0);
  if (have === source.bytes) return { kind: 'done' };
  if (have > source.bytes) {
    await fs.rm(part, { force: true });
    return { kind: 'restart' };
  }
  const ctrl = new AbortController();
  const onAbort = (): void => ctrl.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const stallMs = opts.stallMs ?? 60_000;
  let stall = setTimeout(() => ctrl.abort(new Error('stalled')), stallMs);
  const resetStall = (): void => {
    clearTimeout(stall);
    stall = setTimeout(() => ctrl.abort(new Error(`no data for ${stallMs} ms`)), stallMs);
  };
  try {
    let res: Response;
    try {
      // identity: byte ranges and Content-Length must refer to the file itself, not a compressed transfer
      const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(have > 0 ? { range: `bytes=${have}-` } : {}) };
      res = await fetch(url, { headers, signal: ctrl.signal, redirect: 'follow' });
    } catch (e) {
      if (opts.signal?.aborted) return { kind: 'fail', failure: { reason: 'aborted', url, message: `${what}: download cancelled` } };
      const code = causeCode(e);
      if (first && code && NETWORK_CODES.has(code)) {
        const partial = have > 0 ? ` A partial download (${fmtBytes(have)} bytes) is kept in ${part} and resumed when the host is reachable.` : '';
        return {
          kind: 'fail',
          failure: {
            reason: 'offline',
            url,
            message: `${what}: cannot download (${code}: ${(e as { cause?: Error }).cause?.message ?? (e as Error).message}) and no verified copy is cached.${partial}\n${manualInstructions(source, opts)}`,
          },
        };
      }
      return { kind: 'cut', why: `${(e as Error).message}${code ? ` (${code})` : ''}` };
    }
    if (res.status === 416) {
      await res.body?.cancel();
      await fs.rm(part, { force: true });
      return { kind: 'restart' };
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      return {
        kind: 'fail',
        failure: { reason: 'http-status', url, message: `${what}: ${url} answered HTTP ${res.status} ${res.statusText}.\n${manualInstructions(source, opts)}` },
      };
    }
    let start = 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        // A range we did not ask for: start over rather than guess.
        await res.body?.cancel();
        await fs.rm(part, { force: true });
        return { kind: 'restart' };
      }
      start = have;
    }
    const len = res.headers.get('content-length');
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    if (len !== null && !encoded && start + Number(len) !== source.bytes) {
      await res.body?.cancel();
      await fs.rm(part, { force: true });
      return {
        kind: 'fail',
        failure: {
          reason: 'size-mismatch',
          url,
          message: `${what}: ${url} announces ${fmtBytes(start + Number(len))} bytes, the pinned file has ${fmtBytes(source.bytes)}: wrong file or wrong mirror.\n${manualInstructions(source, opts)}`,
        },
      };
    }
    if (start > 0) opts.log?.info(`${what}: resuming at ${fmtBytes(start)} of ${fmtBytes(source.bytes)} bytes`);
    const out = await fs.open(part, start > 0 ? 'a' : 'w');
    let done = start;
    let lastProgress = 0;
    try {
      if (!res.body) return { kind: 'cut', why: 'empty body' };
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        resetStall();
        await out.write(chunk);
        done += chunk.length;
        // at most ~5 progress reports a second (they may travel over IPC), plus the last one
        const now = Date.now();
        if (now - lastProgress >= 200 || done >= source.bytes) {
          lastProgress = now;
          opts.log?.progress?.(done, source.bytes, source.fileName);
        }
        if (done > source.bytes) break;
      }
    } catch (e) {
      if (opts.signal?.aborted) return { kind: 'fail', failure: { reason: 'aborted', url, message: `${what}: download cancelled (partial file kept for resume)` } };
      return { kind: 'cut', why: `${(e as Error).message} after ${fmtBytes(done)} bytes` };
    } finally {
      await out.close();
    }
    return done === source.bytes ? { kind: 'done' } : { kind: 'cut', why: `connection ended after ${fmtBytes(done)} of ${fmtBytes(source.bytes)} bytes` };
  } finally {
    clearTimeout(stall);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Returns the verified file for `source` from the cache, from a hand-placed copy, or by downloading it (see the
 * module doc). Never leaves an unverified file in the cache.
 */
export async function fetchWeights(source: WeightsSource, opts: FetchWeightsOptions): Promise<Result<CachedWeights, WeightsFailure>> {
  const what = opts.what ?? source.fileName;
  const dir = weightsDir(opts.cacheDir);
  const hit = await findCached(dir, source);
  if (hit) return ok(hit);
  await fs.mkdir(dir, { recursive: true });

  const part = path.join(dir, `${source.fileName}.part`);
  let unlock: () => Promise<void>;
  try {
    unlock = await lock(`${part}.lock`, opts.signal);
  } catch {
    return err({ reason: 'aborted', message: `${what}: cancelled while waiting for another download of ${source.fileName}` });
  }
  try {
    // Another process may have finished while we waited.
    const again = await findCached(dir, source);
    if (again) return ok(again);

    const dropped = path.join(dir, source.fileName);
    if (await fs.stat(dropped).then((s) => s.isFile(), () => false)) {
      const v = await verifyAgainstPin(dropped, source, what);
      if (!v.ok) return err({ ...v.error, message: `${v.error.message}\nThe file was placed by hand; it is left where it is. Remove or replace it.` });
      opts.log?.info(`${what}: verified hand-placed ${dropped}; moving it into the cache`);
      reportUnpinnedSha(source, v.value, what, opts.log);
      return ok(await install(dir, dropped, source, v.value));
    }

    const url = weightsUrl(source, opts.mirror);
    opts.log?.info(`${what}: downloading ${url} (${fmtBytes(source.bytes)} bytes)`);
    const tries = 1 + (opts.retries ?? 3);
    let lastCut = '';
    let complete = false;
    for (let i = 0; i < tries && !complete; i++) {
      if (i > 0 && lastCut) await sleep(Math.min(2000, 200 * i)); // brief backoff before resuming a cut transfer
      const a = await attempt(url, part, source, opts, what, i === 0);
      switch (a.kind) {
        case 'done':
          complete = true;
          break;
        case 'fail':
          return err(a.failure);
        case 'restart':
          break;
        case 'cut':
          lastCut = a.why;
          opts.log?.warn(`${what}: transfer interrupted (${a.why})${i + 1 < tries ? '; resuming' : ''}`);
          break;
      }
    }
    if (!complete) {
      const have = await fs.stat(part).then((s) => s.size, () => 0);
      return err({
        reason: 'truncated',
        url,
        file: part,
        message: `${what}: download from ${url} stopped at ${fmtBytes(have)} of ${fmtBytes(source.bytes)} bytes after ${tries} attempts (${lastCut}). The partial file ${part} is kept and the next run resumes it; nothing was cached.\n${manualInstructions(source, opts)}`,
      });
    }
    const v = await verifyAgainstPin(part, source, what);
    if (!v.ok) {
      await fs.rm(part, { force: true });
      return err({ ...v.error, url, message: `${v.error.message}\nDownloaded from ${url}; the file was deleted and nothing was cached. The server (or mirror) sent a different file: fix the mirror, or get the pinned file by hand:\n${manualInstructions(source, opts)}` });
    }
    reportUnpinnedSha(source, v.value, what, opts.log);
    return ok(await install(dir, part, source, v.value));
  } finally {
    await unlock();
  }
}

/** Result of {@link verifyWeightsCache}. */
export interface WeightsCacheReport {
  /** Files whose SHA-256 equals their directory name. */
  readonly good: readonly string[];
  /** Files that did not match and were removed (with their directory when it became empty). */
  readonly removed: readonly string[];
}

/**
 * Re-hashes every installed weight file and removes those whose SHA-256 no longer matches their directory (disk
 * corruption, manual edits). Lookups only check sizes, so this is the deep check (e.g. for a `cache verify`
 * command). Partial downloads and hand-placed files are left alone.
 */
export async function verifyWeightsCache(cacheDir: string): Promise<WeightsCacheReport> {
  const dir = weightsDir(cacheDir);
  const good: string[] = [];
  const removed: string[] = [];
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  for (const sha of entries.filter((e) => /^[0-9a-f]{64}$/.test(e)).sort()) {
    const sub = path.join(dir, sha);
    for (const f of await fs.readdir(sub).catch(() => [] as string[])) {
      const p = path.join(sub, f);
      if ((await hashFile(p)).sha256 === sha) good.push(p);
      else {
        await fs.rm(p, { force: true });
        removed.push(p);
      }
    }
    if ((await fs.readdir(sub).catch(() => [''])).length === 0) await fs.rmdir(sub).catch(() => undefined);
  }
  return { good, removed };
}
