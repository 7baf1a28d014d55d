/**
 * An exclusive lock file (one `pipeline run` per workspace; one `cache gc` per
 * cache). The lock is created atomically with full content: the owner's info
 * is written to a temp file which is then hard-linked to the lock path
 * (`link` fails with EEXIST if the lock exists), so a reader never sees an
 * empty or half-written lock.
 *
 * A lock whose owner is dead (same host, pid gone or recycled — checked with
 * the /proc start time) is reclaimed. Two processes reclaiming the same stale
 * lock at once are serialised through a short-lived `<lock>.break` file, and
 * the stale lock is removed only if it is still the one that was judged stale.
 *
 * This module does not install signal handlers or exit hooks: the caller
 * releases the lock (a killed process leaves a stale lock that the next run
 * reclaims).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { type Result, ok, err } from '../result.js';
import { currentProcess, isAlive, type ProcessId } from './process-id.js';

/** What a lock file holds. */
export interface LockInfo extends ProcessId {
  /** ISO time the lock was taken. */
  readonly since: string;
  /** Random token: release removes the file only if it still holds this token. */
  readonly token: string;
  /** Free text, e.g. `pipeline run`. */
  readonly purpose?: string;
}

/** Who held a stale lock that `acquireLock` removed before taking it (for a "reclaimed" note). */
export interface ReclaimedLock {
  /** The dead owner's pid (-1 when the lock file was unreadable). */
  readonly pid: number;
  readonly hostname: string;
  /** When the dead owner took the lock ('?' when unknown). */
  readonly since: string;
  readonly purpose?: string;
  /** Why it was judged stale: its owner is gone (or the pid now belongs to a process started later), or the file was not a lock. */
  readonly why: 'owner-dead' | 'unreadable';
}

/** A held lock. */
export interface Lock {
  readonly file: string;
  readonly info: LockInfo;
  /** Set when a stale lock (dead owner) was removed to take this one (added with issue 7). */
  readonly reclaimed?: ReclaimedLock;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

/** Why the lock could not be taken: someone alive holds it. */
export interface LockBusy {
  readonly reason: 'locked';
  readonly file: string;
  readonly pid: number;
  readonly hostname: string;
  readonly since: string;
  readonly purpose?: string;
}

/** Options for `acquireLock`. */
export interface LockOptions {
  /** Keep retrying this long (ms) while the lock is busy. Default 0: fail at once. */
  readonly waitMs?: number;
  /** Delay between retries (ms). Default 50. */
  readonly pollMs?: number;
  /** Stored in the lock for messages. */
  readonly purpose?: string;
}

const BREAKER_STALE_MS = 10_000;
const UNREADABLE_STALE_MS = 5_000;

/** Takes the lock at `file`, reclaiming it if its owner is dead. */
export async function acquireLock(file: string, opts: LockOptions = {}): Promise<Result<Lock, LockBusy>> {
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const me = currentProcess();
  const info: LockInfo = { ...me, since: new Date().toISOString(), token: randomBytes(8).toString('hex'), ...(opts.purpose ? { purpose: opts.purpose } : {}) };
  const body = JSON.stringify(info);
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    const r = await tryOnce(file, info, body);
    if (r.ok) return r;
    if (Date.now() >= deadline) return r;
    await new Promise((res) => setTimeout(res, opts.pollMs ?? 50));
  }
}

async function tryOnce(file: string, info: LockInfo, body: string): Promise<Result<Lock, LockBusy>> {
  let reclaimed: ReclaimedLock | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = `${file}.${info.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(tmp, body);
    try {
      await fs.link(tmp, file);
      await removeDeadTemps(file);
      return ok(makeLock(file, info, reclaimed));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const held = await readHolder(file);
    if (held === 'gone') continue; // released meanwhile: retry
    if (held.kind === 'live') return err(busy(file, held.info));
    const broke = await breakStale(file, held.raw);
    if (broke === 'removed') reclaimed = reclaimedFrom(held.info);
  }
  const held = await readHolder(file);
  return err(busy(file, held === 'gone' ? undefined : held.info));
}

/** Removes `<lock>.<pid>.<rnd>.tmp` files left by processes killed while taking the lock. */
async function removeDeadTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  const host = currentProcess().hostname;
  for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
    const m = n.startsWith(prefix) ? /^(\d+)\.[0-9a-f]+\.tmp$/.exec(n.slice(prefix.length)) : null;
    if (m && !isAlive({ pid: Number(m[1]), hostname: host })) await fs.rm(path.join(dir, n), { force: true });
  }
}

/** The holder of the lock at `file` when a live process holds it; undefined when free or stale. Reads only. */
export async function liveLockHolder(file: string): Promise<Partial<LockInfo> | undefined> {
  const held = await readHolder(file).catch(() => 'gone' as const);
  return held !== 'gone' && held.kind === 'live' ? (held.info ?? {}) : undefined;
}

function busy(file: string, info: Partial<LockInfo> | undefined): LockBusy {
  return {
    reason: 'locked',
    file,
    pid: info?.pid ?? -1,
    hostname: info?.hostname ?? '?',
    since: info?.since ?? '?',
    ...(info?.purpose ? { purpose: info.purpose } : {}),
  };
}

type Holder = 'gone' | { kind: 'live' | 'stale'; raw: string; info: Partial<LockInfo> | undefined };

async function readHolder(file: string): Promise<Holder> {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = await fs.readFile(file, 'utf8');
    mtimeMs = (await fs.stat(file)).mtimeMs;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
  let info: Partial<LockInfo> | undefined;
  try {
    info = JSON.parse(raw) as Partial<LockInfo>;
  } catch {
    info = undefined;
  }
  if (info === undefined || typeof info.pid !== 'number' || typeof info.hostname !== 'string') {
    // Not written by us (links are atomic); treat as stale once it is clearly not being written.
    return { kind: Date.now() - mtimeMs > UNREADABLE_STALE_MS ? 'stale' : 'live', raw, info: undefined };
  }
  const id: ProcessId = info.start === undefined ? { pid: info.pid, hostname: info.hostname } : { pid: info.pid, hostname: info.hostname, start: info.start };
  return { kind: isAlive(id) ? 'live' : 'stale', raw, info };
}

function reclaimedFrom(info: Partial<LockInfo> | undefined): ReclaimedLock {
  if (info === undefined) return { pid: -1, hostname: '?', since: '?', why: 'unreadable' };
  return { pid: info.pid ?? -1, hostname: info.hostname ?? '?', since: info.since ?? '?', ...(info.purpose ? { purpose: info.purpose } : {}), why: 'owner-dead' };
}

/**
 * Removes `file` if it still holds `staleRaw`, under the breaker lock.
 * `removed`: this call removed it; `retry`: someone else is breaking it or it
 * changed meanwhile (the caller retries either way).
 */
async function breakStale(file: string, staleRaw: string): Promise<'removed' | 'retry'> {
  const breaker = `${file}.break`;
  try {
    await fs.writeFile(breaker, JSON.stringify(currentProcess()), { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Someone else is breaking it. A breaker whose owner died (killed right here) goes at once, not after 10 s.
    const raw = await fs.readFile(breaker, 'utf8').catch(() => undefined);
    const st = await fs.stat(breaker).catch(() => undefined);
    let owner: ProcessId | undefined;
    try {
      owner = raw === undefined ? undefined : (JSON.parse(raw) as ProcessId);
    } catch {
      owner = undefined;
    }
    const dead = owner !== undefined && typeof owner.pid === 'number' && typeof owner.hostname === 'string' && !isAlive(owner);
    if (st !== undefined && (dead || Date.now() - st.mtimeMs > BREAKER_STALE_MS)) {
      // Remove it only if it is still that breaker (compare-and-remove, as for the lock itself).
      if ((await fs.readFile(breaker, 'utf8').catch(() => undefined)) === raw) await fs.rm(breaker, { force: true });
    }
    return 'retry';
  }
  try {
    const now = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (now !== staleRaw) return 'retry';
    await fs.rm(file, { force: true });
    return 'removed';
  } finally {
    await fs.rm(breaker, { force: true });
  }
}

function makeLock(file: string, info: LockInfo, reclaimed: ReclaimedLock | undefined): Lock {
  let released = false;
  return {
    file,
    info,
    ...(reclaimed ? { reclaimed } : {}),
    async release() {
      if (released) return;
      released = true;
      const raw = await fs.readFile(file, 'utf8').catch(() => undefined);
      if (raw === undefined) return;
      try {
        if ((JSON.parse(raw) as LockInfo).token === info.token) await fs.rm(file, { force: true });
      } catch {
        /* not ours */
      }
    },
  };
}
