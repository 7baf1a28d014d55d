/**
 * Runs one built-in stage in a child Node process (`child.ts`), so a stage
 * that crashes, leaks memory or blocks its event loop cannot take the engine
 * with it, and cancellation is a process-group kill. Messages from the child
 * (log lines, progress, the result) come back through callbacks.
 *
 * It does not ingest, record or print: the runner does that with the outcome.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StageResult } from '../../stages/types.js';
import type { ChildMessage, RunRequest } from './protocol.js';
import { killGroup } from '../exec/cmd.js';

/** Absolute path of the compiled child entry point. */
export const childEntry: string = fileURLToPath(new URL('./child.js', import.meta.url));

/** One built-in stage run. */
export interface BuiltinRunSpec extends Omit<RunRequest, 'type'> {
  /** Aborting sends `cancel`, then kills the child's process group after `killGraceMs`. */
  readonly signal?: AbortSignal;
  readonly onLog?: (level: 'info' | 'warn', message: string) => void;
  readonly onProgress?: (done: number, total: number, label?: string) => void;
  /** Default 1000 ms. */
  readonly killGraceMs?: number;
  /** Called with the child's pid (= process group id) after spawning; the returned function is called when it is gone. */
  readonly onSpawn?: (pid: number) => () => void;
}

/**
 * How the run ended.
 * - `ok`: the stage returned `result`; its outputs are in `outDir`.
 * - `failed`: the stage threw (or was unknown); `message` is the error, `stack` for debugging.
 * - `crashed`: the child died without answering (exit code or signal in `message`).
 * - `cancelled`: the signal was aborted.
 */
export type BuiltinOutcome =
  | { readonly kind: 'ok'; readonly result: StageResult }
  | { readonly kind: 'failed'; readonly message: string; readonly stack?: string }
  | { readonly kind: 'crashed'; readonly message: string }
  | { readonly kind: 'cancelled' };

/** Runs the stage in a fresh child process; never throws for anything the stage does. */
export function runBuiltin(spec: BuiltinRunSpec): Promise<BuiltinOutcome> {
  if (spec.signal?.aborted) return Promise.resolve({ kind: 'cancelled' });
  const { signal, onLog, onProgress, onSpawn, killGraceMs = 1000, ...rest } = spec;
  const request: RunRequest = { type: 'run', ...rest };
  return new Promise((resolve) => {
    const child = fork(childEntry, [], {
      detached: true,
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    const forget = child.pid !== undefined ? onSpawn?.(child.pid) : undefined;
    let answer: BuiltinOutcome | undefined;
    let cancelled = false;
    const timers: NodeJS.Timeout[] = [];
    // A stage must not print, but if a library does, keep it as log lines rather than corrupt the terminal.
    for (const [stream, level] of [
      [child.stdout, 'info'],
      [child.stderr, 'warn'],
    ] as const) {
      let pending = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          onLog?.(level, pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      });
      stream?.on('end', () => {
        if (pending) onLog?.(level, pending);
      });
    }
    const kill = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) killGroup(child.pid, 'SIGKILL');
    };
    const onAbort = (): void => {
      cancelled = true;
      if (child.connected) child.send({ type: 'cancel' });
      timers.push(setTimeout(kill, killGraceMs));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: ChildMessage) => {
      switch (m.type) {
        case 'log':
          onLog?.(m.level, m.message);
          break;
        case 'progress':
          onProgress?.(m.done, m.total, m.label);
          break;
        case 'result':
          answer = { kind: 'ok', result: m.result };
          // The stage is done; a child kept alive by stray handles is killed after a grace period.
          timers.push(setTimeout(kill, 1000));
          break;
        case 'error':
          answer = { kind: 'failed', message: m.message, ...(m.stack ? { stack: m.stack } : {}) };
          timers.push(setTimeout(kill, 1000));
          break;
      }
    });
    let settled = false;
    const finish = (code: number | null, sig: NodeJS.Signals | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      for (const t of timers) clearTimeout(t);
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL', false); // stray grandchildren
      forget?.();
      if (cancelled) return resolve({ kind: 'cancelled' });
      if (answer) return resolve(answer);
      if (spawnError) return resolve({ kind: 'crashed', message: `could not start the stage host: ${spawnError.message}` });
      resolve({ kind: 'crashed', message: sig ? `stage process killed by ${sig}` : `stage process exited with code ${code} without a result` });
    };
    child.on('error', (e) => finish(null, null, e));
    // 'close' (not 'exit') so every IPC message and output line has been delivered first.
    child.on('close', (code, sig) => finish(code, sig));
    child.send(request);
  });
}
