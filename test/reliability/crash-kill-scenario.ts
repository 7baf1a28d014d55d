/**
 * Crash-kill survival (issue 7, Faults → Crashes): `kill -9` of `pipeline run`
 * at random points of a real pipeline never loses or corrupts anything.
 *
 * The pipeline (real CLI child process, real stages): ingest → resize (224×224
 * RGB) → partition → build-model (MobileNetV2 with the bundled nsfwjs
 * weights, offline) → features → train (2 epochs) → evaluate, plus a `cmd`
 * stage that copies evaluate's metrics after a short sleep. 12 Fashion-MNIST
 * PNGs from the repo.
 *
 * {@link crashKillScenario} first runs it uninterrupted (the reference, with
 * its own cache), then per kill starts `pipeline run`, SIGKILLs the CLI
 * process only (its stage children become orphans, as for a real user) at a
 * seeded-random time drawn over the span of a cold run, runs it again to
 * completion and checks ({@link checkCompleted}). Run times vary with the
 * machine's load: when a run ends before its kill time, the span is
 * re-measured from that run and the kill redrawn (up to 3 draws per kill);
 * after each `fresh` kill the span moves halfway to kill time + the
 * completing run's time (about a cold run at the current load).
 * The checks:
 * - exit 0, the run ends ok, and a further run has nothing to do;
 * - every output file under `out/` equals the reference's, byte for byte,
 *   except the wall-clock fields named in {@link TIMING_FIELDS} (training
 *   speed and TensorBoard wall times, which differ between any two runs;
 *   every weight, loss and accuracy is compared exactly);
 * - the experiment's stage keys equal the reference's (but {@link KEYS_VARY}), and its metrics too
 *   except the work counters in {@link WORK_METRICS} (how much was computed
 *   versus taken from a cache, and speeds);
 * - `pipeline cache verify` reports nothing wrong (0 corrupt objects, 0
 *   missing, 0 bad records, 0 corrupt item-cache entries);
 * - no lock file, no orphan still alive, nothing left in the cache's `tmp/`
 *   or `train-resume/`, no temp file anywhere in the workspace or the cache
 *   (but `items/`, whose dead writers' temps `cache gc` removes by design),
 *   every experiment record readable.
 *
 * Kills rotate through three modes: `fresh` (empty workspace and cache),
 * `double` (the run after the kill is killed too before a third completes)
 * and `restore` (cache of the previous kill kept, workspace wiped, so the run
 * restores everything; killed at a time drawn over the span of such a
 * restore, counted from the run's first stage-start event).
 *
 * This module does not assert: it returns a report; the tests judge it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { e2eRig, ndjson, pipelineYaml, repoRoot, waitForExit, type CliResult, type E2eRig } from '../helpers/rig.js';
import { readEvents } from '../ml-stages/tfevents-decoder.js';
import { mulberry32 } from '../../stages/ml/dataset.js';

/** How a kill's workspace and cache start. */
export type KillMode = 'fresh' | 'double' | 'restore';
const MODES: readonly KillMode[] = ['fresh', 'double', 'restore'];

/** One kill and what the run after it showed. */
export interface KillOutcome {
  readonly index: number;
  readonly mode: KillMode;
  /** When each kill was sent, in ms after the CLI started (two for `double`); for `restore`, after its first stage began. */
  readonly killAtMs: readonly number[];
  /**
   * What was running at each kill: stage ids (`name (restore)` when restoring), or `startup` (no stage began),
   * `between-stages`, `finishing` (all stages ended, before run-end), `recording` (after run-end: the experiment
   * record), `exited` (the run had ended before the kill time).
   */
  readonly runningAtKill: readonly (readonly string[])[];
  /** Earlier draws of the first kill that came after the run had already ended (redrawn over the re-measured span). */
  readonly missed: number;
  /** Every check passed. */
  readonly survived: boolean;
  /** What failed, one line each. */
  readonly failures: readonly string[];
  /** Wall time of this kill's whole cycle (kill, completion, checks). */
  readonly cycleMs: number;
}

/** What {@link crashKillScenario} measured. */
export interface CrashKillReport {
  readonly kills: number;
  readonly survived: number;
  readonly seed: number;
  /** Wall time of the uninterrupted cold reference run (the span kill times are drawn over). */
  readonly coldRunMs: number;
  /** Wall time of a run that restores everything from the cache. */
  readonly restoreRunMs: number;
  /** When that run's first restore began (kills of `restore` mode are drawn over the rest, counted from the first stage). */
  readonly restoreStartMs: number;
  readonly outcomes: readonly KillOutcome[];
  /** Kill events by what was running (a kill during two stages counts for both). */
  readonly killsByStage: Readonly<Record<string, number>>;
}

/** Options of {@link crashKillScenario}. */
export interface CrashKillOptions {
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Run only these kill indexes (0-based; the others' random draws are still made, so times match a full run). For reproducing one kill. */
  readonly only?: readonly number[];
}

/**
 * Output fields that measure wall-clock time, not results: they differ between
 * any two runs and are left out of the comparison (JSON keys anywhere in the
 * train stage's JSON / JSONL outputs, and the same scalars in its TensorBoard
 * events). TensorBoard `wall_time` and event file names (`<unix seconds>.<host>`)
 * are dropped likewise.
 */
export const TIMING_FIELDS: ReadonlySet<string> = new Set(['samples_per_s', 'seconds']);

/**
 * Stages whose key is not compared with the reference's: their fingerprint
 * includes the hash of train's outputs, and those hold wall-clock fields
 * ({@link TIMING_FIELDS}), so any two trainings give these stages different
 * keys even with identical weights. Their outputs are compared instead.
 */
export const KEYS_VARY: ReadonlySet<string> = new Set(['evaluate', 'report']);

/** Experiment metrics that count work (computed vs from a cache) or speed; they depend on what a kill left, not on the results. */
export const WORK_METRICS: RegExp = /\.(computed|cached|cache_hits|resized|probed|read|images_per_s|samples_per_s)$/;

const SAMPLE_DIR = path.join(repoRoot, 'pipelines', 'data', 'fashion-mnist-sample');
const CLASSES = ['Bag', 'Sneaker', 'Trouser'] as const;
const PER_CLASS = 4;
const RUN_TIMEOUT_MS = 240_000;
/** Draws of the first kill time per kill: one more is made when the run ended before the previous one. */
const MAX_ATTEMPTS = 3;

/** Names of temp files (atomic writes, materialisation, checkpoints): none may outlive the run that made them. */
const TEMP_NAME = /\.tmp$|\.pipeline-tmp-|\.tmp\/|\.old-[0-9a-f]+(\/|$)/;

function pipelineFile(rig: E2eRig): string {
  return pipelineYaml({
    name: 'crash-kill',
    stages: {
      ingest: { uses: 'ingest', with: { source: 'images' } },
      resize: { uses: 'resize', with: { size: [224, 224], channels: 3 } },
      partition: { uses: 'partition', with: { ratios: [0.5, 0.25, 0.25] } },
      'build-model': {
        uses: 'build-model',
        with: { backbone: 'mobilenet_v2', weights: 'bundled', pooling: 'avg', head: [{ type: 'dense', units: 16, activation: 'relu' }] },
        inputs: { resize: 'resize' },
      },
      features: { uses: 'features', inputs: { 'build-model': 'build-model', resize: 'resize', partition: 'partition' } },
      train: { uses: 'train', with: { epochs: 2, batch_size: 4 }, inputs: { 'build-model': 'build-model', features: 'features' } },
      evaluate: { uses: 'evaluate', inputs: { train: 'train', partition: 'partition', features: 'features', resize: 'resize' } },
      report: {
        cmd: rig.step('report', '--in', 'out/evaluate/metrics.json', '--in', 'out/partition/counts.json', '--sleep', '400', '--out', 'out/report/summary.txt'),
        deps: [{ stage: 'evaluate' }],
        outs: ['out/report/summary.txt'],
      },
    },
  });
}

const KEEP = new Set(['step.mjs']);

/** Empties the workspace (all but the step script) and writes the pipeline and its images. */
async function resetWorkspace(rig: E2eRig): Promise<void> {
  for (const name of await fs.readdir(rig.dir)) if (!KEEP.has(name)) await fs.rm(path.join(rig.dir, name), { recursive: true, force: true });
  await rig.write('pipeline.yaml', pipelineFile(rig));
  for (const c of CLASSES) {
    const files = (await fs.readdir(path.join(SAMPLE_DIR, c))).filter((f) => f.endsWith('.png')).sort().slice(0, PER_CLASS);
    await fs.mkdir(path.join(rig.dir, 'images', c), { recursive: true });
    for (const f of files) await fs.copyFile(path.join(SAMPLE_DIR, c, f), path.join(rig.dir, 'images', c, f));
  }
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listFiles(root, r)));
    else out.push(r);
  }
  return out.sort();
}

function dropTiming(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropTiming);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([k]) => !TIMING_FIELDS.has(k)).map(([k, x]) => [k, dropTiming(x)]));
  }
  return v;
}

/**
 * `out/` as relative path → sha256 of the content, with the train stage's
 * timing fields removed (see {@link TIMING_FIELDS}); TensorBoard files are
 * named `events.out.tfevents.*` and compared as decoded events without wall time.
 */
export async function snapshotOutputs(workspace: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of await listFiles(path.join(workspace, 'out'))) {
    const abs = path.join(workspace, 'out', rel);
    let name = rel;
    let content: Buffer | string = await fs.readFile(abs);
    try {
      if (/^train\/tensorboard\/[^/]+\/events\.out\.tfevents\./.test(rel)) {
        name = rel.replace(/events\.out\.tfevents\..*$/, 'events.out.tfevents.*');
        content = JSON.stringify(readEvents(content).map(({ wallTime: _w, ...e }) => dropTiming(e)));
      } else if (/^train\/.*\.json$/.test(rel)) {
        content = JSON.stringify(dropTiming(JSON.parse(content.toString('utf8'))));
      } else if (/^train\/.*\.jsonl$/.test(rel)) {
        content = content.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.stringify(dropTiming(JSON.parse(l)))).join('\n');
      }
    } catch (e) {
      content = `unreadable: ${(e as Error).message}`;
    }
    if (out.has(name)) name = `${name} (2)`;
    out.set(name, createHash('sha256').update(content).digest('hex'));
  }
  return out;
}

function diffSnapshots(ref: Map<string, string>, got: Map<string, string>): string[] {
  const d: string[] = [];
  for (const [k, v] of ref) {
    if (!got.has(k)) d.push(`output missing: out/${k}`);
    else if (got.get(k) !== v) d.push(`output differs: out/${k}`);
  }
  for (const k of got.keys()) if (!ref.has(k)) d.push(`extra output: out/${k}`);
  return d;
}

interface Experiment {
  readonly format: string;
  readonly id: string;
  readonly createdAt: string;
  readonly status: string;
  readonly stages: Record<string, { key: string; status: string }>;
  readonly metrics: Record<string, number>;
}

/** Every experiment record of the cache; unreadable ones are reported as failures. */
async function readExperimentFiles(cacheDir: string, failures: string[]): Promise<Experiment[]> {
  const dir = path.join(cacheDir, 'experiments');
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  const all: Experiment[] = [];
  for (const n of names) {
    try {
      const e = JSON.parse(await fs.readFile(path.join(dir, n), 'utf8')) as Experiment;
      if (e.format !== 'pipeline.experiment/v1') throw new Error(`format ${e.format}`);
      all.push(e);
    } catch (e) {
      failures.push(`experiment record ${n} unreadable: ${(e as Error).message}`);
    }
  }
  for (const n of await fs.readdir(path.join(dir, 'latest')).catch(() => [] as string[])) {
    const id = (await fs.readFile(path.join(dir, 'latest', n), 'utf8')).trim();
    if (!names.includes(`${id}.json`)) failures.push(`experiments/latest/${n} names ${JSON.stringify(id)}, which has no record`);
  }
  return all.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

function resultMetrics(e: Experiment): Record<string, number> {
  return Object.fromEntries(Object.entries(e.metrics).filter(([k]) => !WORK_METRICS.test(k)));
}

/** What the reference run produced. */
interface Reference {
  readonly outputs: Map<string, string>;
  readonly keys: Record<string, string>;
  readonly metrics: Record<string, number>;
  readonly stages: readonly string[];
}

function runEndOk(r: CliResult): boolean {
  try {
    return ndjson(r.stdout).some((e) => e.type === 'run-end' && e.ok === true);
  } catch {
    return false;
  }
}

/** Events of a (possibly killed) run's stdout; a torn last line is dropped. */
function eventsOf(stdout: string): ReturnType<typeof ndjson> {
  const out: ReturnType<typeof ndjson> = [];
  for (const line of stdout.split('\n')) {
    try {
      out.push(JSON.parse(line) as ReturnType<typeof ndjson>[number]);
    } catch {
      /* torn or empty line */
    }
  }
  return out;
}

/** What was running when the CLI whose output is `stdout` was killed. */
function runningAt(stdout: string, stages: readonly string[], exited: boolean): string[] {
  if (exited) return ['exited'];
  const ev = eventsOf(stdout);
  const started = new Map<string, string>();
  const ended = new Set<string>();
  for (const e of ev) {
    if (e.type === 'stage-start' && e.stage) started.set(e.stage, e['action'] === 'restore' ? `${e.stage} (restore)` : e.stage);
    if (e.type === 'stage-end' && e.stage) ended.add(e.stage);
  }
  // run-end comes before the experiment is recorded.
  if (ev.some((e) => e.type === 'run-end')) return ['recording'];
  const running = [...started].filter(([s]) => !ended.has(s)).map(([, label]) => label);
  if (running.length > 0) return running;
  if (started.size === 0 && ended.size === 0) return ['startup'];
  return stages.every((s) => ended.has(s)) ? ['finishing'] : ['between-stages'];
}

/** Live stage process groups the workspace's child registry names. */
async function registeredChildren(workspace: string): Promise<number[]> {
  const dir = path.join(workspace, '.pipeline', 'children');
  const pids: number[] = [];
  for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
    try {
      pids.push((JSON.parse(await fs.readFile(path.join(dir, n), 'utf8')) as { pid: number }).pid);
    } catch {
      /* half-written entry of a killed run: the engine ignores it too */
    }
  }
  return pids;
}

/** What one kill attempt saw. */
interface KillResult {
  readonly running: string[];
  readonly orphans: number[];
  /** Set when the run ended on its own before the kill time: how long it took (from its first stage with `fromFirstStage`). */
  readonly exitedAfterMs?: number;
  /** When the first stage began, in ms after the start (when one did). */
  readonly firstStageMs?: number;
}

/**
 * Runs the CLI and SIGKILLs it `atMs` after the start, or with
 * `fromFirstStage` after its first stage began (unless it exits first);
 * returns what was running then and the pids of its stage children.
 */
async function killAt(rig: E2eRig, cacheDir: string, atMs: number, stages: readonly string[], fromFirstStage = false): Promise<KillResult> {
  const t0 = Date.now();
  const r = rig.start(['run', '--json', '--cache', cacheDir]);
  let exitedAt: number | undefined;
  void r.done.then(() => (exitedAt = Date.now()));
  if (fromFirstStage) await r.waitFor(/"type":"stage-start"/, RUN_TIMEOUT_MS).catch(() => undefined);
  await new Promise((res) => setTimeout(res, atMs));
  let orphans: number[] = [];
  if (exitedAt === undefined) {
    // Children of this run as the engine recorded them, read before the kill so none can be forgotten meanwhile.
    orphans = await registeredChildren(rig.dir);
    r.child.kill('SIGKILL');
  }
  const exitedFirst = exitedAt !== undefined;
  const res = await r.done;
  const exited = exitedFirst || res.signal !== 'SIGKILL';
  const first = eventsOf(res.stdout).find((e) => e.type === 'stage-start');
  const firstMs = first !== undefined && typeof first['time'] === 'number' ? Math.max(0, (first['time'] as number) - t0) : undefined;
  return {
    running: runningAt(res.stdout, stages, exited),
    orphans,
    ...(exited ? { exitedAfterMs: (exitedAt ?? Date.now()) - t0 - (fromFirstStage && firstMs !== undefined ? firstMs : 0) } : {}),
    ...(firstMs !== undefined ? { firstStageMs: firstMs } : {}),
  };
}

/** Runs to completion; a run that does not finish in time is killed and reported. */
function complete(rig: E2eRig, cacheDir: string): Promise<CliResult> {
  return rig.cli(['run', '--json', '--cache', cacheDir], { timeoutMs: RUN_TIMEOUT_MS });
}

/** Every check of the module doc, after `pipeline run` completed as `r`; returns the failures. */
async function checkCompleted(rig: E2eRig, cacheDir: string, r: CliResult, ref: Reference, orphans: readonly number[]): Promise<string[]> {
  const f: string[] = [];
  if (r.code !== 0 || !runEndOk(r)) {
    const errors = eventsOf(r.stdout).filter((e) => e.type === 'stage-end' && typeof e['error'] === 'string').map((e) => `${e.stage}: ${String(e['error'])}`);
    f.push(`run after the kill exited ${r.code ?? r.signal}: ${[...errors, r.stderr.trim()].join('\n').slice(0, 2000)}`);
    return f;
  }
  const got = await snapshotOutputs(rig.dir);
  f.push(...diffSnapshots(ref.outputs, got));

  const exps = await readExperimentFiles(cacheDir, f);
  const last = exps[exps.length - 1];
  if (last === undefined) f.push('no experiment recorded');
  else {
    if (last.status !== 'succeeded') f.push(`last experiment status ${last.status}`);
    for (const s of ref.stages) if (!KEYS_VARY.has(s) && last.stages[s]?.key !== ref.keys[s]) f.push(`stage ${s} key ${last.stages[s]?.key?.slice(0, 12)} ≠ reference ${ref.keys[s]?.slice(0, 12)}`);
    const m = resultMetrics(last);
    for (const k of new Set([...Object.keys(m), ...Object.keys(ref.metrics)])) if (m[k] !== ref.metrics[k]) f.push(`metric ${k} = ${m[k]}, reference ${ref.metrics[k]}`);
  }

  const v = await rig.cli(['cache', 'verify', '--json', '--cache', cacheDir]);
  try {
    const rep = JSON.parse(v.stdout) as { ok: boolean; corrupt: unknown[]; missing: unknown[]; badRecords: unknown[]; corruptItems?: unknown[] };
    if (v.code !== 0 || !rep.ok) f.push(`cache verify: ${rep.corrupt.length} corrupt, ${rep.missing.length} missing, ${rep.badRecords.length} bad records, ${rep.corruptItems?.length ?? 0} corrupt items: ${v.stdout.slice(0, 800)}`);
  } catch {
    f.push(`cache verify exited ${v.code}: ${v.stdout}${v.stderr}`);
  }

  if (await rig.exists('.pipeline/lock')) f.push('workspace lock left behind after a completed run');
  for (const pid of orphans) if (!(await waitForExit(pid, 2000))) f.push(`orphaned stage process ${pid} of the killed run still alive`);
  const left = await registeredChildren(rig.dir);
  if (left.length > 0) f.push(`child registry still names ${left.join(', ')}`);
  const tmp = await fs.readdir(path.join(cacheDir, 'tmp')).catch(() => [] as string[]);
  if (tmp.length > 0) f.push(`cache tmp/ not cleaned: ${tmp.slice(0, 5).join(', ')}`);
  // items/: a killed item writer's `<key>.<pid>.<rnd>.tmp` is by design left for `cache gc` (item-gc.ts), and harmless.
  const strayCache = (await listFiles(cacheDir)).filter((f) => TEMP_NAME.test(f) && !f.startsWith('tmp/') && !f.startsWith('items/'));
  if (strayCache.length > 0) f.push(`temp files left in the cache: ${strayCache.slice(0, 5).join(', ')}`);
  const strayWs = (await listFiles(rig.dir)).filter((f) => TEMP_NAME.test(f));
  if (strayWs.length > 0) f.push(`temp files left in the workspace: ${strayWs.slice(0, 5).join(', ')}`);
  const resume = await fs.readdir(path.join(cacheDir, 'train-resume')).catch(() => [] as string[]);
  if (resume.length > 0) f.push(`train-resume/ left behind: ${resume.join(', ')}`);

  // Nothing may be left stale: one more run has nothing to do.
  const again = await rig.cli(['run', '--json', '--cache', cacheDir]);
  const notFresh = ndjson(again.stdout).filter((e) => e.type === 'stage-end' && e.status !== 'fresh');
  if (again.code !== 0 || notFresh.length > 0) f.push(`a further run was not a no-op (exit ${again.code}): ${notFresh.map((e) => `${e.stage} ${e.status}`).join(', ')} ${again.stderr.slice(0, 1500)}`);
  return f;
}

/** Runs the uninterrupted reference and a full restore, in the shared workspace path with their own cache. */
async function reference(rig: E2eRig, cacheDir: string): Promise<{ ref: Reference; coldRunMs: number; restoreRunMs: number; restoreStartMs: number }> {
  await resetWorkspace(rig);
  let t0 = Date.now();
  const r = await complete(rig, cacheDir);
  const coldRunMs = Date.now() - t0;
  if (r.code !== 0) throw new Error(`reference run failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  const stages = eventsOf(r.stdout).filter((e) => e.type === 'stage-end').map((e) => e.stage!);
  const failures: string[] = [];
  const exps = await readExperimentFiles(cacheDir, failures);
  const exp = exps[exps.length - 1];
  if (exp === undefined || failures.length > 0) throw new Error(`reference experiment unreadable: ${failures.join('; ')}`);
  const ref: Reference = {
    outputs: await snapshotOutputs(rig.dir),
    keys: Object.fromEntries(Object.entries(exp.stages).map(([s, x]) => [s, x.key])),
    metrics: resultMetrics(exp),
    stages,
  };
  // The same outputs restored from the cache into an empty workspace: the reference is reproducible, and this times a restore.
  await resetWorkspace(rig);
  t0 = Date.now();
  const restored = await complete(rig, cacheDir);
  const restoreRunMs = Date.now() - t0;
  const firstRestore = eventsOf(restored.stdout).find((e) => e.type === 'stage-start');
  const restoreStartMs = firstRestore !== undefined ? Math.max(0, (firstRestore['time'] as number) - t0) : 0;
  const d = diffSnapshots(ref.outputs, await snapshotOutputs(rig.dir));
  if (restored.code !== 0 || d.length > 0) throw new Error(`restoring the reference failed (exit ${restored.code}): ${d.join('; ')}\n${restored.stderr}`);
  return { ref, coldRunMs, restoreRunMs, restoreStartMs };
}

/** Kills any stage process group still registered (cleanup after a failed check). */
async function killLeftovers(workspace: string): Promise<void> {
  for (const pid of await registeredChildren(workspace)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Runs the reference and then `kills` kill/complete/check cycles with kill
 * times drawn from `seed` (see module doc).
 */
export async function crashKillScenario(kills: number, seed: number, opts: CrashKillOptions = {}): Promise<CrashKillReport> {
  const log = opts.log ?? (() => {});
  await using rig = await e2eRig();
  const caches = await fs.mkdtemp(path.join(os.tmpdir(), 'crash-kill-caches-'));
  try {
    const refCache = path.join(caches, 'reference');
    const runCache = path.join(caches, 'run');
    const { ref, coldRunMs, restoreRunMs, restoreStartMs } = await reference(rig, refCache);
    log(`reference: cold run ${coldRunMs} ms, full restore ${restoreRunMs} ms (first restore at ${restoreStartMs} ms), stages ${ref.stages.join(' ')}`);
    const random = mulberry32(seed);
    const outcomes: KillOutcome[] = [];
    const killsByStage: Record<string, number> = {};
    // Kill windows, re-measured whenever a run to be killed ends first, and the cold one after every fresh kill
    // (kill time + the completing run's time, averaged in): the machine's load changes run times.
    const windows: Record<'cold' | 'restore', { start: number; end: number }> = {
      cold: { start: 0, end: coldRunMs },
      // Restores are killed relative to the first stage's start (CLI startup times vary more than the restore takes).
      restore: { start: 0, end: Math.max(restoreRunMs - restoreStartMs, 100) },
    };
    for (let i = 0; i < kills; i++) {
      // `restore` needs the previous kill's filled cache: the first kill is always `fresh`.
      const mode = MODES[i % MODES.length]!;
      const draws = Array.from({ length: MAX_ATTEMPTS + 1 }, () => random());
      if (opts.only !== undefined && !opts.only.includes(i)) continue;
      const t0 = Date.now();
      const w = windows[mode === 'restore' ? 'restore' : 'cold'];
      const killAtMs: number[] = [];
      const runningAtKill: string[][] = [];
      const orphans: number[] = [];
      let missed = 0;
      // The first kill: retried (from the same starting state) while the run ends before its kill time.
      for (let attempt = 0; ; attempt++) {
        await killLeftovers(rig.dir);
        await resetWorkspace(rig);
        if (mode !== 'restore') await fs.rm(runCache, { recursive: true, force: true });
        const at = Math.round(w.start + draws[attempt]! * (w.end - w.start));
        const k = await killAt(rig, runCache, at, ref.stages, mode === 'restore');
        if (k.exitedAfterMs !== undefined && attempt + 1 < MAX_ATTEMPTS) {
          missed++;
          w.end = Math.max(k.exitedAfterMs, 1);
          continue;
        }
        killAtMs.push(at);
        runningAtKill.push(k.running);
        orphans.push(...k.orphans);
        break;
      }
      // double: the run after the kill is killed too, over what the first left undone (plus startup).
      if (mode === 'double') {
        const at = Math.round(draws[MAX_ATTEMPTS]! * (Math.max(w.end - killAtMs[0]!, 0) + 1000));
        const k = await killAt(rig, runCache, at, ref.stages);
        killAtMs.push(at);
        runningAtKill.push(k.running);
        orphans.push(...k.orphans);
      }
      for (const running of runningAtKill) for (const s of running) killsByStage[s] = (killsByStage[s] ?? 0) + 1;
      const tc = Date.now();
      const r = await complete(rig, runCache);
      // A fresh kill plus the run that finishes its work is about one cold run at today's load: track it both ways.
      if (mode === 'fresh' && r.code === 0 && missed === 0 && !runningAtKill[0]!.includes('exited')) w.end = Math.round((w.end + killAtMs[0]! + (Date.now() - tc)) / 2);
      const failures = await checkCompleted(rig, runCache, r, ref, orphans);
      const o: KillOutcome = { index: i, mode, killAtMs, runningAtKill, missed, survived: failures.length === 0, failures, cycleMs: Date.now() - t0 };
      outcomes.push(o);
      log(`kill ${i + 1}/${kills} ${mode} at ${mode === 'restore' ? 'first stage + ' : ''}${killAtMs.join('+')} ms${missed > 0 ? ` (${missed} earlier draw(s) came after the run ended)` : ''} during ${runningAtKill.map((x) => x.join('+')).join(' / ')}: ${o.survived ? 'survived' : `FAILED\n  ${failures.join('\n  ')}`} (${o.cycleMs} ms)`);
    }
    return { kills: outcomes.length, survived: outcomes.filter((o) => o.survived).length, seed, coldRunMs, restoreRunMs, restoreStartMs, outcomes, killsByStage };
  } finally {
    await killLeftovers(rig.dir);
    await fs.rm(caches, { recursive: true, force: true });
  }
}
