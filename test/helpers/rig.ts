/**
 * End-to-end rig: a temp workspace with a pipeline file and inputs, the real
 * CLI run as a child process (`node bin/pipeline.js …`), and a small `step.mjs`
 * script that `cmd` stages call to count invocations, copy inputs to outputs,
 * record timestamps and sleep. Use with `await using rig = await e2eRig()`;
 * the temp dir is removed on dispose (and any CLI still running is killed).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Repository root (dist/test/helpers/rig.js → ../../..). */
export const repoRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cliPath = path.join(repoRoot, 'bin', 'pipeline.js');

/**
 * The helper script each `cmd` stage runs: `node step.mjs NAME [--out FILE] [--in FILE]... [--text S]
 * [--sleep MS] [--stamp] [--fail CODE] [--metrics FILE JSON] [--echo-args]`.
 * It appends NAME to counts/NAME, writes --out as the concatenation of the --in files plus --text,
 * appends `NAME start end` (ms) to stamps.log with --stamp, prints `NAME running` first, and
 * leaves its pid in pids/NAME.
 */
const STEP_SCRIPT = `
import fs from 'node:fs';
import path from 'node:path';
const [name, ...rest] = process.argv.slice(2);
const ins = []; let out; let text = ''; let sleep = 0; let stamp = false; let fail; let metrics; let echo = false;
for (let i = 0; i < rest.length; i++) {
  const a = rest[i];
  if (a === '--out') out = rest[++i];
  else if (a === '--in') ins.push(rest[++i]);
  else if (a === '--text') text += rest[++i];
  else if (a === '--sleep') sleep = Number(rest[++i]);
  else if (a === '--stamp') stamp = true;
  else if (a === '--fail') fail = Number(rest[++i]);
  else if (a === '--metrics') metrics = [rest[++i], rest[++i]];
  else if (a === '--echo-args') echo = true;
}
const here = path.dirname(new URL(import.meta.url).pathname);
fs.mkdirSync(path.join(here, 'counts'), { recursive: true });
fs.appendFileSync(path.join(here, 'counts', name), name + '\\n');
fs.mkdirSync(path.join(here, 'pids'), { recursive: true });
fs.writeFileSync(path.join(here, 'pids', name), String(process.pid));
console.log(name + ' running');
if (echo) console.log('ARGS ' + JSON.stringify(rest));
const start = Date.now();
if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
if (fail !== undefined) { console.error(name + ' failing'); process.exit(fail); }
if (out) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, ins.map((f) => fs.readFileSync(f, 'utf8')).join('') + text);
}
if (metrics) fs.writeFileSync(metrics[0], metrics[1]);
if (stamp) fs.appendFileSync(path.join(here, 'stamps.log'), name + ' ' + start + ' ' + Date.now() + '\\n');
`;

/** Result of one CLI invocation. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI process still running (for signal and concurrency tests). */
export interface RunningCli {
  readonly child: ChildProcess;
  /** Resolves when stdout+stderr so far match `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  readonly done: Promise<CliResult>;
}

export interface E2eRig extends AsyncDisposable {
  readonly dir: string;
  /** `[node, <dir>/step.mjs, name, ...args]`, for a `cmd:` list. */
  step(name: string, ...args: string[]): string[];
  write(rel: string, content: string): Promise<void>;
  read(rel: string): Promise<string>;
  exists(rel: string): Promise<boolean>;
  rm(rel: string): Promise<void>;
  /** Writes a real solid-colour PNG (via sharp) at `rel`, 8×8 unless `size` = [width, height]. */
  png(rel: string, rgb: readonly [number, number, number], size?: readonly [number, number]): Promise<void>;
  /** The pid of the last step NAME (from pids/NAME). */
  pid(name: string): Promise<number>;
  /** How many times stage script NAME ran so far. */
  count(name: string): Promise<number>;
  /** Runs the CLI to completion. */
  cli(args: readonly string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  /** Starts the CLI without waiting. */
  start(args: readonly string[], opts?: { env?: Record<string, string> }): RunningCli;
}

/** Makes a rig (see module doc). */
export async function e2eRig(): Promise<E2eRig> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'pipeline-e2e-')));
  await fs.writeFile(path.join(dir, 'step.mjs'), STEP_SCRIPT);
  const live = new Set<ChildProcess>();

  const start = (args: readonly string[], opts: { env?: Record<string, string> } = {}): RunningCli => {
    const base: Record<string, string | undefined> = { ...process.env };
    delete base.PIPELINE_CACHE;
    delete base.FORCE_COLOR;
    const env = { ...base, NO_COLOR: '1', ...opts.env };
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    const check = (): void => {
      for (const w of [...waiters]) if (w.re.test(stdout + stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => ((stdout += d), check()));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => ((stderr += d), check()));
    const done = new Promise<CliResult>((resolve) => {
      child.on('close', (code, signal) => {
        live.delete(child);
        resolve({ code, signal, stdout, stderr });
      });
    });
    return {
      child,
      done,
      waitFor(re, timeoutMs = 20_000) {
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output so far:\n${stdout}\n${stderr}`)), timeoutMs);
          waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
          check();
          void done.then(() => {
            if (waiters.some((w) => w.re === re)) {
              clearTimeout(t);
              reject(new Error(`CLI exited before ${re}; output:\n${stdout}\n${stderr}`));
            }
          });
        });
      },
    };
  };

  return {
    dir,
    step: (name, ...args) => [process.execPath, path.join(dir, 'step.mjs'), name, ...args],
    async write(rel, content) {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await fs.writeFile(path.join(dir, rel), content);
    },
    read: (rel) => fs.readFile(path.join(dir, rel), 'utf8'),
    exists: (rel) => fs.access(path.join(dir, rel)).then(() => true, () => false),
    rm: (rel) => fs.rm(path.join(dir, rel), { recursive: true, force: true }),
    async png(rel, [r, g, b], [width, height] = [8, 8]) {
      const sharp = (await import('sharp')).default;
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toFile(path.join(dir, rel));
    },
    pid: async (name) => Number(await fs.readFile(path.join(dir, 'pids', name), 'utf8')),
    async count(name) {
      const text = await fs.readFile(path.join(dir, 'counts', name), 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).length;
    },
    async cli(args, opts = {}) {
      const r = start(args, opts);
      const t = setTimeout(() => r.child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      try {
        return await r.done;
      } finally {
        clearTimeout(t);
      }
    },
    start,
    async [Symbol.asyncDispose]() {
      for (const c of live) c.kill('SIGKILL');
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Serialises a pipeline object as YAML-compatible JSON (JSON is valid YAML). */
export function pipelineYaml(p: unknown): string {
  return `${JSON.stringify(p, null, 2)}\n`;
}

/** True while `pid` runs (a zombie counts as dead). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return !/\) Z /.test(stat);
}

/** Waits until `pid` is gone (or `timeoutMs` passes); returns whether it is gone. */
export async function waitForExit(pid: number, timeoutMs = 5000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!(await isAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !(await isAlive(pid));
}

/** Parses NDJSON output into events. */
export function ndjson(stdout: string): { type: string; stage?: string; status?: string; [k: string]: unknown }[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string });
}

/** stage → final status from NDJSON output. */
export function statuses(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of ndjson(stdout)) if (e.type === 'stage-end' && e.stage && e.status) out[e.stage] = e.status;
  return out;
}
