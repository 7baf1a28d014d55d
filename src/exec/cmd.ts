/**
 * Runs one `cmd` stage's command through execa: argv only (never a shell, so a
 * param holding `; rm -rf ~` stays one argument), in its own process group
 * (`detached`) so cancellation kills the whole tree, with stdout/stderr split
 * into lines and handed to a callback as they arrive.
 *
 * It does not check outputs, hash, cache or print anything; the runner does.
 */
import type { Readable } from 'node:stream';

/** What to run. */
export interface CommandSpec {
  /** argv[0] is the program (looked up on PATH), the rest are its arguments, one element each. */
  readonly argv: readonly string[];
  /** Absolute working directory. */
  readonly cwd: string;
  /** Declared env, merged onto the process env. */
  readonly env: Readonly<Record<string, string>>;
  /** Aborting kills the process group (SIGTERM, then SIGKILL after `killGraceMs`). */
  readonly signal?: AbortSignal;
  /** Called once per complete line (without the newline), in arrival order per stream. */
  readonly onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** Milliseconds between SIGTERM and SIGKILL on cancel. Default 2000. */
  readonly killGraceMs?: number;
  /** Called with the pid (= process group id) right after spawning; the returned function is called when it is gone. */
  readonly onSpawn?: (pid: number) => () => void;
}

/**
 * How the command ended.
 * - `exited`: it exited on its own with `code` (0 = success).
 * - `signalled`: it was killed by a signal it did not get from us.
 * - `spawn-error`: it could not start (e.g. program not found); `message` says why.
 * - `cancelled`: we killed it because the signal was aborted.
 */
export type CommandOutcome =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'signalled'; readonly signal: string }
  | { readonly kind: 'spawn-error'; readonly message: string }
  | { readonly kind: 'cancelled' };

/** Splits a byte stream into lines (`\n` or `\r\n`), flushing a final unterminated line. */
function forEachLine(stream: Readable | null | undefined, onLine: (line: string) => void): Promise<void> {
  if (!stream) return Promise.resolve();
  return new Promise((resolve) => {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      }
    });
    const done = (): void => {
      if (pending.length > 0) onLine(pending);
      pending = '';
      resolve();
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/**
 * Sends `sig` to the process group of `pid`. With `fallback` (default) and no
 * such group, signals the process alone; pass false once the leader may have
 * been reaped (its pid could be reused).
 */
export function killGroup(pid: number, sig: NodeJS.Signals, fallback = true): void {
  try {
    process.kill(-pid, sig);
  } catch {
    if (!fallback) return;
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Runs the command; never throws for anything the command does. */
export async function runCommand(spec: CommandSpec): Promise<CommandOutcome> {
  if (spec.argv.length === 0 || spec.argv[0] === '') return { kind: 'spawn-error', message: 'empty command' };
  if (spec.signal?.aborted) return { kind: 'cancelled' };
  const { execa } = await import('execa');
  const child = execa(spec.argv[0], spec.argv.slice(1), {
    cwd: spec.cwd,
    env: { ...spec.env },
    extendEnv: true,
    detached: true,
    stdin: 'ignore',
    buffer: false,
    reject: false,
    shell: false,
    windowsHide: true,
  });
  const forget = child.pid !== undefined ? spec.onSpawn?.(child.pid) : undefined;
  const onLine = spec.onLine ?? (() => {});
  const streams = Promise.all([forEachLine(child.stdout, (l) => onLine('stdout', l)), forEachLine(child.stderr, (l) => onLine('stderr', l))]);

  let cancelled = false;
  let forceTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    if (child.pid === undefined) return;
    cancelled = true;
    killGroup(child.pid, 'SIGTERM');
    forceTimer = setTimeout(() => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, spec.killGraceMs ?? 2000);
  };
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await child;
    // Grandchildren that inherited stdout may keep it open; don't wait for them after a cancel.
    if (!cancelled) await streams;
    if (cancelled) {
      // The leader is gone; make sure the rest of its group is too.
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL', false);
      return { kind: 'cancelled' };
    }
    if (result.exitCode !== undefined) return { kind: 'exited', code: result.exitCode };
    if (result.signal !== undefined) return { kind: 'signalled', signal: result.signal };
    const e = result as { code?: string; originalMessage?: string; shortMessage?: string };
    if (e.code === 'ENOENT') return { kind: 'spawn-error', message: `command not found: ${spec.argv[0]}` };
    return { kind: 'spawn-error', message: e.originalMessage ?? e.shortMessage ?? 'could not start the command' };
  } finally {
    spec.signal?.removeEventListener('abort', onAbort);
    if (forceTimer) clearTimeout(forceTimer);
    forget?.();
  }
}
