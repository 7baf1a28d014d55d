/**
 * Identity of a live process for lock files and temp-file names: pid,
 * hostname and (on Linux) the process start time from /proc, so that a
 * recycled pid is not mistaken for the original owner.
 *
 * This module does not create or remove any file.
 */
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';

/** Who owns a lock or a temp file. */
export interface ProcessId {
  readonly pid: number;
  readonly hostname: string;
  /** Start time in clock ticks since boot (Linux `/proc/<pid>/stat` field 22); absent elsewhere. */
  readonly start?: string;
}

/** The start time of `pid` from /proc, or undefined when unavailable. */
export function processStart(pid: number): string | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is parenthesised and may contain spaces.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22 overall = index 19 after the first two fields
  } catch {
    return undefined;
  }
}

let self: ProcessId | undefined;

/** This process's identity. */
export function currentProcess(): ProcessId {
  if (self === undefined) {
    const start = processStart(process.pid);
    self = start === undefined ? { pid: process.pid, hostname: os.hostname() } : { pid: process.pid, hostname: os.hostname(), start };
  }
  return self;
}

/**
 * Whether the process `id` still runs. A process on another host is assumed
 * alive (we cannot tell). A pid that exists but started at a different time
 * is a recycled pid: the owner is dead.
 */
export function isAlive(id: ProcessId): boolean {
  if (id.hostname !== os.hostname()) return true;
  try {
    process.kill(id.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (id.start === undefined) return true;
  const now = processStart(id.pid);
  return now === undefined || now === id.start;
}

/**
 * A fresh file name owned by this process, `<host>~<pid>~<start>~<rnd><suffix>`:
 * the shape `CacheStore.open` parses to remove the temps of dead writers from a
 * cache's tmp/ (nothing is created).
 */
export function ownedTempName(suffix = ''): string {
  const me = currentProcess();
  return `${me.hostname}~${me.pid}~${me.start ?? ''}~${randomBytes(6).toString('hex')}${suffix}`;
}
