/**
 * Concurrency scenarios of issue 7, shared by the fast test
 * (`test/reliability/concurrency.test.ts`, few rounds) and the stress test
 * (`test/stress/concurrency.stress.ts`, many rounds). Everything is real: the
 * CLI as child processes (`e2eRig`), real `cmd` and built-in stages, one
 * cache directory.
 *
 * - `sameWorkspaceRound`: N `pipeline run`s start at once in one workspace
 *   (one without `--wait`, the others with it). A `guard` stage (forced in
 *   every run) creates a marker file with O_EXCL, checks that the workspace
 *   lock names its own run, sleeps, and removes the marker: two runs working
 *   in the workspace at once leave a violation. Readers (`status`, `exp list`)
 *   run meanwhile.
 * - `sharedCacheRound`: two workspaces share one cache (`--cache` for one,
 *   PIPELINE_CACHE for the other) and run at once, with stage keys they share
 *   (same params and inputs → same objects, records and resize item entries)
 *   and keys of their own; `cache gc --grace 3`, `cache verify`, `status` and
 *   `exp list` run against the same cache meanwhile.
 * - `killHolderRound`: the lock holder is killed with SIGKILL mid-stage; the
 *   next run (no `--wait`) proceeds and says it reclaimed the lock.
 * - `pidReuseCases`: a lock naming a live unrelated process (a recycled pid:
 *   same pid, other start time) is reclaimed; one naming a live process with
 *   its real start time is respected.
 *
 * After every round, `auditCache` checks the cache is whole: `cache verify`
 * clean, every record / experiment / state / backup file parses, nothing left
 * in `tmp/`, no lock left behind; and that each workspace holds exactly the
 * bytes its recorded key says (re-hashed), and a plain rerun finds it fresh.
 *
 * A round returns the problems it found (empty = clean) instead of asserting,
 * so the stress test can count clean rounds; the callers assert.
 *
 * This module does not record figures (the stress test does).
 */
import fs from 'node:fs/promises';
import fss from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { type CliResult, type E2eRig, ndjson, pipelineYaml, statuses, waitForExit } from '../helpers/rig.js';
import { CacheStore } from '../../src/cache/store.js';
import { hashFile } from '../../src/cache/manifest.js';
import { processStart } from '../../src/cache/process-id.js';

/** What one round found. */
export interface RoundResult {
  readonly scenario: 'same-workspace' | 'shared-cache' | 'gc-during-restore' | 'kill-holder' | 'pid-reuse';
  readonly round: number;
  /** Empty when the round was clean. */
  readonly problems: string[];
  /** Counts worth reporting (runs that got the lock error, gc runs, ...). */
  readonly counts: Record<string, number>;
}

/**
 * The guard stage's script: `node guard.mjs MARKER SLEEP_MS IN OUT TEXT`.
 * Fails (and appends to violations.log) if another stage of this workspace is
 * inside (marker exists) or the workspace lock does not name its parent run;
 * appends `ppid start end` to guard.log.
 */
const GUARD_SCRIPT = `
import fs from 'node:fs';
import path from 'node:path';
const [marker, sleep, input, out, text] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);
const bad = (m) => { fs.appendFileSync(path.join(here, 'violations.log'), m + '\\n'); process.exit(1); };
let fd;
try { fd = fs.openSync(marker, 'wx'); } catch (e) { bad('overlap: ' + marker + ' exists (' + e.code + ') in run ' + process.ppid); }
let lock;
try { lock = JSON.parse(fs.readFileSync('.pipeline/lock', 'utf8')); } catch (e) { bad('no readable workspace lock while run ' + process.ppid + ' works: ' + e.message); }
if (lock.pid !== process.ppid) bad('the workspace lock names pid ' + lock.pid + ' but run ' + process.ppid + ' is working');
const start = Date.now();
await new Promise((r) => setTimeout(r, Number(sleep)));
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, fs.readFileSync(input, 'utf8') + text);
fs.appendFileSync(path.join(here, 'guard.log'), process.ppid + ' ' + start + ' ' + Date.now() + '\\n');
fs.closeSync(fd);
fs.rmSync(marker);
`;

/** Writes the guard script into the rig (idempotent). */
async function ensureGuard(rig: E2eRig): Promise<string> {
  const file = path.join(rig.dir, 'guard.mjs');
  if (!fss.existsSync(file)) await fs.writeFile(file, GUARD_SCRIPT);
  return file;
}

/** Runs `args` repeatedly until `until` settles; every invocation must exit 0 (and parse, for --json). */
async function readerLoop(rig: E2eRig, args: readonly string[], until: Promise<unknown>, env: Record<string, string>, problems: string[]): Promise<number> {
  let stop = false;
  void until.finally(() => (stop = true));
  let n = 0;
  while (!stop) {
    const r = await rig.cli(args, { env, timeoutMs: 60_000 });
    n++;
    if (r.code !== 0) problems.push(`reader \`${args.join(' ')}\` exited ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
    else if (args.includes('--json')) {
      try {
        // One JSON document (exp list, status) or NDJSON.
        try {
          JSON.parse(r.stdout);
        } catch {
          for (const l of r.stdout.split('\n')) if (l.trim() !== '') JSON.parse(l);
        }
      } catch {
        problems.push(`reader \`${args.join(' ')}\` printed JSON that does not parse: ${r.stdout.slice(0, 200)}`);
      }
    }
  }
  return n;
}

/**
 * Checks that the cache at `cacheDir` is whole (see module doc); returns problems.
 * `workspaces` are checked against their recorded keys. Run it only when no
 * process uses the cache.
 */
export async function auditCache(rig: E2eRig, cacheDir: string, workspaces: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const v = await rig.cli(['cache', 'verify', '--json', '--cache', cacheDir]);
  try {
    const rep = JSON.parse(v.stdout) as { ok: boolean; corrupt: string[]; missing: unknown[]; badRecords: string[]; corruptItems?: string[] };
    if (!rep.ok || v.code !== 0) problems.push(`cache verify not clean (exit ${v.code}): ${JSON.stringify({ corrupt: rep.corrupt, missing: rep.missing, badRecords: rep.badRecords, corruptItems: rep.corruptItems })}`);
  } catch {
    problems.push(`cache verify --json (exit ${v.code}) printed no report: ${v.stdout}${v.stderr}`);
  }
  // Every record: whole JSON, named by its key.
  for (const shard of await readdirOrEmpty(path.join(cacheDir, 'records'))) {
    for (const n of await readdirOrEmpty(path.join(cacheDir, 'records', shard))) {
      const raw = await fs.readFile(path.join(cacheDir, 'records', shard, n), 'utf8');
      try {
        const rec = JSON.parse(raw) as { format?: string; key?: string };
        if (rec.format !== 'pipeline.run-record/v1' || `${rec.key}.json` !== n) problems.push(`record ${n}: wrong format or key`);
      } catch {
        problems.push(`record ${n} does not parse (${raw.length} bytes)`);
      }
    }
  }
  // Every experiment record and latest pointer.
  const expDir = path.join(cacheDir, 'experiments');
  const ids = new Set<string>();
  for (const n of await readdirOrEmpty(expDir)) {
    if (n === 'latest') continue;
    const raw = await fs.readFile(path.join(expDir, n), 'utf8');
    try {
      const e = JSON.parse(raw) as { format?: string; id?: string };
      if (e.format !== 'pipeline.experiment/v1' || `${e.id}.json` !== n) problems.push(`experiment ${n}: wrong format or id`);
      else ids.add(e.id!);
    } catch {
      problems.push(`experiment ${n} does not parse (${raw.length} bytes)`);
    }
  }
  for (const n of await readdirOrEmpty(path.join(expDir, 'latest'))) {
    const id = (await fs.readFile(path.join(expDir, 'latest', n), 'utf8')).trim();
    if (!ids.has(id)) problems.push(`experiments/latest/${n} names ${JSON.stringify(id)}, which is not a record`);
  }
  // Workspace states and backups.
  for (const ws of await readdirOrEmpty(path.join(cacheDir, 'workspaces'))) {
    const st = path.join(cacheDir, 'workspaces', ws, 'state.json');
    if (fss.existsSync(st)) {
      try {
        JSON.parse(await fs.readFile(st, 'utf8'));
      } catch {
        problems.push(`workspaces/${ws}/state.json does not parse`);
      }
    }
    for (const b of await readdirOrEmpty(path.join(cacheDir, 'workspaces', ws, 'backups'))) {
      try {
        JSON.parse(await fs.readFile(path.join(cacheDir, 'workspaces', ws, 'backups', b), 'utf8'));
      } catch {
        problems.push(`backup ${b} does not parse`);
      }
    }
  }
  const tmp = await readdirOrEmpty(path.join(cacheDir, 'tmp'));
  if (tmp.length > 0) problems.push(`tmp/ holds ${tmp.length} entries after every process ended: ${tmp.slice(0, 3).join(', ')}`);
  for await (const f of walk(path.join(cacheDir, 'items'))) if (f.endsWith('.tmp')) problems.push(`item-cache temp file left: ${path.relative(cacheDir, f)}`);
  // Each workspace holds exactly the bytes of the key its state names.
  const store = await CacheStore.open(cacheDir);
  for (const ws of workspaces) {
    const lockLeft = await readdirOrEmpty(path.join(ws, '.pipeline'));
    for (const n of lockLeft) if (n === 'lock' || n.startsWith('lock.')) problems.push(`${path.basename(ws)}/.pipeline/${n} left behind`);
    problems.push(...(await workspaceMatchesRecords(store, ws)));
  }
  return problems;
}

/** Re-hashes every output the workspace state lists and compares with the record of the state's key. */
async function workspaceMatchesRecords(store: CacheStore, ws: string): Promise<string[]> {
  const problems: string[] = [];
  const { WorkspaceState } = await import('../../src/cache/workspace-state.js');
  const state = await WorkspaceState.open(store.root, ws);
  const name = path.basename(ws);
  if (state.stageIds().length === 0) problems.push(`${name}: no workspace state`);
  for (const id of state.stageIds()) {
    const st = state.get(id)!;
    const rec = await store.readRecord(st.key);
    if (rec === undefined) {
      problems.push(`${name}: stage ${id} holds key ${st.key.slice(0, 12)} but its record is missing or unusable`);
      continue;
    }
    if (rec.outputs.hash !== st.outputsHash) problems.push(`${name}: stage ${id} state and record disagree on the outputs hash`);
    const byPath = new Map(rec.outputs.files.map((f) => [f.path, f.sha256]));
    for (const o of st.outputs) {
      for (const [rel] of o.files) {
        const abs = rel === '' ? path.join(ws, o.dest) : path.join(ws, o.dest, rel);
        // cmd outs are recorded workspace-relative; a builtin's files relative to its outDir.
        const recPath = byPath.has(rel) ? rel : rel === '' ? o.dest : `${o.dest}/${rel}`;
        const want = byPath.get(recPath);
        const got = await hashFile(abs).catch(() => 'unreadable');
        if (want === undefined) problems.push(`${name}: ${o.dest}/${rel} is not in the record of ${id}`);
        else if (got !== want) problems.push(`${name}: ${path.join(o.dest, rel)} differs from the record of stage ${id} (${await peek(abs)} in the workspace, ${await peek(store.objectPath(want))} in the record's object)`);
      }
    }
  }
  return problems;
}

/** A short file's text for a message (its size otherwise). */
async function peek(file: string): Promise<string> {
  const b = await fs.readFile(file).catch(() => undefined);
  if (b === undefined) return 'missing';
  return b.length <= 64 ? JSON.stringify(b.toString('utf8')) : `${b.length} bytes`;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).sort();
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [] as fss.Dirent[])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

/** Problems in the outcome of one run that had to succeed. */
function runFailed(label: string, r: CliResult): string[] {
  if (r.code === 0) return [];
  return [`${label} exited ${r.code ?? r.signal}: ${r.stderr.trim().slice(-400)}`];
}

/** Stage statuses that mean the stage's outputs are in place. */
const DONE = new Set(['ran', 'restored', 'fresh']);

/**
 * One round of `runs` simultaneous `pipeline run`s in the rig's workspace
 * (default cache `<rig>/cache`). Round numbers change the stage params, so
 * each round has new keys.
 */
export async function sameWorkspaceRound(rig: E2eRig, round: number, opts: { runs?: number; guardMs?: number } = {}): Promise<RoundResult> {
  const runs = opts.runs ?? 3;
  const guard = await ensureGuard(rig);
  const problems: string[] = [];
  await rig.write(
    'pipeline.yaml',
    pipelineYaml({
      name: 'concurrent',
      stages: {
        a: { cmd: rig.step('a', '--out', 'out/a.txt', '--text', `a${round}`), outs: ['out/a.txt'] },
        guard: { cmd: [process.execPath, guard, path.join(rig.dir, 'inside'), String(opts.guardMs ?? 250), 'out/a.txt', 'out/g.txt', `g${round}`], deps: ['out/a.txt'], outs: ['out/g.txt'] },
        b: { cmd: rig.step('b', '--in', 'out/g.txt', '--out', 'out/b.txt', '--text', 'b'), deps: ['out/g.txt'], outs: ['out/b.txt'] },
      },
    }),
  );
  const cacheDir = path.join(rig.dir, 'cache');
  const expBefore = (await readdirOrEmpty(path.join(cacheDir, 'experiments'))).filter((n) => n.endsWith('.json')).length;
  await rig.rm('guard.log');
  // Run 0 fails at once if the lock is taken; the others wait for it.
  const started = Array.from({ length: runs }, (_, i) => rig.start(['run', '--json', '--force', 'guard', ...(i === 0 ? [] : ['--wait', '120'])]));
  const all = Promise.all(started.map((s) => s.done));
  const readers = Promise.all([readerLoop(rig, ['status', '--json'], all, {}, problems), readerLoop(rig, ['exp', 'list', '--json'], all, {}, problems)]);
  const results = await all;
  const reads = (await readers).reduce((a, b) => a + b, 0);

  let locked = 0;
  const holders: number[] = [];
  results.forEach((r, i) => {
    const label = `run ${i}${i === 0 ? '' : ' (--wait)'}`;
    if (i === 0 && r.code === 4) {
      locked++;
      if (!/another run \(pid \d+ .*\) holds the workspace lock/.test(r.stderr)) problems.push(`${label}: exit 4 without the lock message: ${r.stderr.trim()}`);
      if (r.stdout.trim() !== '') problems.push(`${label}: got the lock error but printed events`);
      return;
    }
    problems.push(...runFailed(label, r));
    if (r.code !== 0) return;
    holders.push(started[i]!.child.pid!);
    const s = statuses(r.stdout);
    if (s.guard !== 'ran') problems.push(`${label}: guard ${s.guard}, expected ran (forced)`);
    for (const [id, st] of Object.entries(s)) if (!DONE.has(st)) problems.push(`${label}: stage ${id} ${st}`);
  });
  // The guard ran once per successful run, one at a time, each time inside the run that held the lock.
  const log = (await rig.exists('guard.log')) ? (await rig.read('guard.log')).trim().split('\n').filter(Boolean) : [];
  const spans = log.map((l) => l.split(' ').map(Number) as [number, number, number]).sort((x, y) => x[1] - y[1]);
  if (spans.length !== holders.length) problems.push(`guard ran ${spans.length} times for ${holders.length} successful runs`);
  for (let i = 1; i < spans.length; i++) if (spans[i]![1] < spans[i - 1]![2]) problems.push(`runs ${spans[i - 1]![0]} and ${spans[i]![0]} worked in the workspace at the same time`);
  for (const [ppid] of spans) if (!holders.includes(ppid)) problems.push(`guard ran under pid ${ppid}, not one of the successful runs`);
  if (await rig.exists('violations.log')) {
    problems.push(...(await rig.read('violations.log')).trim().split('\n'));
    await rig.rm('violations.log');
  }
  // Outputs are this round's, every successful run recorded one whole experiment.
  const want: Record<string, string> = { 'out/a.txt': `a${round}`, 'out/g.txt': `a${round}g${round}`, 'out/b.txt': `a${round}g${round}b` };
  for (const [f, text] of Object.entries(want)) {
    const got = await rig.read(f).catch(() => '<missing>');
    if (got !== text) problems.push(`${f} is ${JSON.stringify(got)}, expected ${JSON.stringify(text)}`);
  }
  const expAfter = (await readdirOrEmpty(path.join(cacheDir, 'experiments'))).filter((n) => n.endsWith('.json')).length;
  if (expAfter - expBefore !== holders.length) problems.push(`${expAfter - expBefore} experiments recorded for ${holders.length} successful runs`);
  problems.push(...(await auditCache(rig, cacheDir, [rig.dir])));
  const again = await rig.cli(['run', '--json']);
  problems.push(...runFailed('rerun', again));
  for (const [id, st] of Object.entries(statuses(again.stdout))) if (st !== 'fresh') problems.push(`rerun: stage ${id} ${st}, expected fresh`);
  return { scenario: 'same-workspace', round, problems, counts: { runs, locked, waited: runs - 1, reads } };
}

/** Sets up two workspaces with the same images under `<rig>/ws1`, `<rig>/ws2` (once). */
async function ensureWorkspaces(rig: E2eRig): Promise<[string, string]> {
  const dirs: [string, string] = [path.join(rig.dir, 'ws1'), path.join(rig.dir, 'ws2')];
  for (const ws of dirs) {
    const rel = path.basename(ws);
    if (await rig.exists(`${rel}/images`)) continue;
    for (const [cls, i, rgb] of [['cat', 1, [200, 10, 10]], ['cat', 2, [180, 30, 10]], ['dog', 1, [10, 10, 200]], ['dog', 2, [20, 40, 190]]] as const) {
      await rig.png(`${rel}/images/${cls}/${i}.png`, rgb, [12, 10]);
    }
  }
  return dirs;
}

/**
 * One round of two workspaces sharing one cache, running at once, with
 * shared keys (`ingest`, `resize`, `common`) and keys of their own (`thumb`
 * size, `own`), while gc (grace 3 s), verify and readers run on the cache.
 */
export async function sharedCacheRound(rig: E2eRig, round: number): Promise<RoundResult> {
  const problems: string[] = [];
  const [ws1, ws2] = await ensureWorkspaces(rig);
  const cacheDir = path.join(rig.dir, 'shared-cache');
  const size = 4 + (round % 3);
  for (const [i, ws] of [ws1, ws2].entries()) {
    const rel = path.basename(ws);
    await rig.write(`${rel}/data/common.txt`, `c${round}`);
    await rig.write(`${rel}/data/own.txt`, `${rel}-${round}`);
    await rig.write(
      `${rel}/pipeline.yaml`,
      pipelineYaml({
        name: `shared-${rel}`,
        stages: {
          ingest: { uses: 'ingest', with: { source: 'images' } },
          resize: { uses: 'resize', with: { size: [size, size] } },
          thumb: { uses: 'resize', with: { size: [3 + i + (round % 2), 3] }, inputs: { ingest: 'ingest' } },
          common: { cmd: rig.step('common', '--in', 'data/common.txt', '--sleep', '100', '--out', 'out/common.txt', '--text', '!'), deps: ['data/common.txt'], outs: ['out/common.txt'] },
          own: { cmd: rig.step(`own-${rel}`, '--in', 'data/own.txt', '--in', 'out/common.txt', '--out', 'out/own.txt'), deps: ['data/own.txt', 'out/common.txt'], outs: ['out/own.txt'] },
        },
      }),
    );
  }
  const env = { PIPELINE_CACHE: cacheDir };
  const r1 = rig.start(['run', '--json', '-f', 'ws1/pipeline.yaml', '--cache', cacheDir]);
  const r2 = rig.start(['run', '--json', '-f', 'ws2/pipeline.yaml'], { env });
  const both = Promise.all([r1.done, r2.done]);
  let gcs = 0;
  const gcLoop = (async () => {
    // gc with a 3 s grace while the runs write: it may delete last round's unkept records and objects, never this round's.
    while (!(await Promise.race([both.then(() => true), sleep(150).then(() => false)]))) {
      const g = await rig.cli(['cache', 'gc', '--cache', cacheDir, '--grace', '3', '--keep-last', '0', '--json']);
      gcs++;
      if (g.code !== 0) problems.push(`concurrent cache gc exited ${g.code}: ${g.stderr.trim().slice(0, 300)}`);
    }
  })();
  const verifyOnce = (async () => {
    await sleep(300);
    const v = await rig.cli(['cache', 'verify', '--json', '--cache', cacheDir]);
    if (v.code !== 0) problems.push(`concurrent cache verify reported problems: ${v.stdout.trim().slice(0, 400)}${v.stderr.trim().slice(0, 200)}`);
  })();
  const readers = Promise.all([
    readerLoop(rig, ['status', '--json', '-f', 'ws1/pipeline.yaml'], both, env, problems),
    readerLoop(rig, ['exp', 'list', '--json', '--cache', cacheDir], both, {}, problems),
  ]);
  const [a, b] = await both;
  await Promise.all([gcLoop, verifyOnce, readers]);
  problems.push(...runFailed('ws1 run', a), ...runFailed('ws2 run', b));
  for (const [label, r] of [['ws1', a], ['ws2', b]] as const) {
    for (const e of ndjson(r.stdout)) if (e.type === 'stage-end' && !DONE.has(String(e.status))) problems.push(`${label}: stage ${e.stage} ${e.status}: ${String(e.error ?? '')}`);
  }
  for (const [ws, own] of [[ws1, `ws1-${round}`], [ws2, `ws2-${round}`]] as const) {
    const rel = path.basename(ws);
    const common = await rig.read(`${rel}/out/common.txt`).catch(() => '<missing>');
    if (common !== `c${round}!`) problems.push(`${rel}/out/common.txt is ${JSON.stringify(common)}`);
    const o = await rig.read(`${rel}/out/own.txt`).catch(() => '<missing>');
    if (o !== `${own}c${round}!`) problems.push(`${rel}/out/own.txt is ${JSON.stringify(o)}`);
  }
  // `common` has one key (same argv, same input bytes) in both; `own` differs. ingest's manifest names
  // absolute image paths, so its key includes the workspace (and so do its downstream keys), while
  // the resized pixels are the same bytes (one shared item-cache entry per image).
  const keys = [a, b].map((r) => Object.fromEntries(ndjson(r.stdout).filter((e) => e.type === 'stage-end').map((e) => [e.stage, e.key])));
  if (keys[0]!.common === undefined || keys[0]!.common !== keys[1]!.common) problems.push('stage common has different keys in the two workspaces');
  for (const id of ['own', 'ingest', 'resize']) if (keys[0]![id] === keys[1]![id]) problems.push(`stage ${id} has the same key in both workspaces`);
  for (const ws of [ws1, ws2]) {
    const lines = (await fs.readFile(path.join(ws, 'out', 'ingest', 'manifest.jsonl'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
    const foreign = lines.map((l) => (JSON.parse(l) as { path: string }).path).filter((p) => !p.startsWith(ws + path.sep));
    if (lines.length !== 4 || foreign.length > 0) problems.push(`${path.basename(ws)}/out/ingest/manifest.jsonl: ${lines.length} images, paths outside the workspace: ${foreign.slice(0, 2).join(', ')}`);
  }
  for await (const f of walk(path.join(ws1, 'out', 'resize', 'px'))) {
    const other = path.join(ws2, path.relative(ws1, f));
    const [h1, h2] = await Promise.all([hashFile(f), hashFile(other).catch(() => 'missing')]);
    if (h1 !== h2) problems.push(`resize output ${path.relative(ws1, f)} differs between the workspaces`);
  }
  problems.push(...(await auditCache(rig, cacheDir, [ws1, ws2])));
  // gc (default grace) after the runs must keep what both workspaces hold: the reruns are fresh.
  const g = await rig.cli(['cache', 'gc', '--cache', cacheDir, '--keep-last', '0']);
  if (g.code !== 0) problems.push(`cache gc after the runs exited ${g.code}`);
  for (const rel of ['ws1', 'ws2']) {
    const again = await rig.cli(['run', '--json', '-f', `${rel}/pipeline.yaml`], { env });
    problems.push(...runFailed(`${rel} rerun`, again));
    for (const [id, st] of Object.entries(statuses(again.stdout))) if (st !== 'fresh') problems.push(`${rel} rerun: stage ${id} ${st}, expected fresh`);
  }
  const restoreFallbacks = [a, b].reduce((n, r) => n + (r.stdout.match(/cannot restore from cache/g)?.length ?? 0), 0);
  return { scenario: 'shared-cache', round, problems, counts: { gcs, restoreFallbacks } };
}

/** `node many.mjs DIR N TEXT`: writes N files DIR/f<i>.txt holding `TEXT i`. */
const MANY_SCRIPT = `
import fs from 'node:fs';
import path from 'node:path';
const [dir, n, text] = process.argv.slice(2);
fs.mkdirSync(dir, { recursive: true });
for (let i = 0; i < Number(n); i++) fs.writeFileSync(path.join(dir, 'f' + i + '.txt'), text + ' ' + i);
`;

/**
 * gc while a run restores an old key: key A is recorded, then B, so A's
 * record is unkept; once A's record and objects are older than the grace,
 * a run goes back to A while `cache gc --grace G --keep-last 0` runs in a
 * loop (G must exceed the time the run takes from storing an output to
 * recording it, as the default hour does). In the same workspace (it has state, so gc sees the run's lock) gc
 * must keep what the run restores (the restore is whole and the rerun is
 * fresh). In a new workspace on the same cache (`freshWorkspace`: no state
 * yet, gc cannot see the run) gc may delete A's record and objects under
 * the restore: the run must then run the stage instead and end correct
 * (never a failed run, a half-restored output or a torn record).
 */
export async function gcDuringRestoreRound(rig: E2eRig, round: number, opts: { files?: number; freshWorkspace?: boolean; graceS?: number } = {}): Promise<RoundResult> {
  const problems: string[] = [];
  const files = opts.files ?? 300;
  const script = path.join(rig.dir, 'many.mjs');
  if (!fss.existsSync(script)) await fs.writeFile(script, MANY_SCRIPT);
  const cacheDir = path.join(rig.dir, 'restore-cache');
  const yaml = (v: string): string => pipelineYaml({ name: 'restore', stages: { many: { cmd: [process.execPath, script, 'out/many', String(files), v], outs: ['out/many'] } } });
  const a = `A${round}`;
  for (const v of [a, `B${round}`]) {
    await rig.write('restore/pipeline.yaml', yaml(v));
    problems.push(...runFailed(`setup run ${v}`, await rig.cli(['run', '-f', 'restore/pipeline.yaml', '--cache', cacheDir])));
  }
  const graceS = opts.graceS ?? 2;
  await sleep(graceS * 1000 + 500); // A's record and objects are now older than the grace
  const rel = opts.freshWorkspace ? `restore-new-${round}` : 'restore';
  await rig.write(`${rel}/pipeline.yaml`, yaml(a));
  const run = rig.start(['run', '--json', '-f', `${rel}/pipeline.yaml`, '--cache', cacheDir]);
  let gcs = 0;
  let stop = false;
  void run.done.finally(() => (stop = true));
  // Start gc once the run has decided (gc's own start-up then overlaps the copying).
  await run.waitFor(/"action":"(restore|run)"/, 60_000).catch(() => {});
  while (!stop) {
    const g = await rig.cli(['cache', 'gc', '--cache', cacheDir, '--grace', String(graceS), '--keep-last', '0']);
    gcs++;
    if (g.code !== 0) problems.push(`concurrent cache gc exited ${g.code}: ${g.stderr.trim().slice(0, 300)}`);
  }
  const r = await run.done;
  problems.push(...runFailed('run back to A', r));
  const end = ndjson(r.stdout).find((e) => e.type === 'stage-end' && e.stage === 'many');
  if (!end || !DONE.has(String(end.status))) problems.push(`stage many ${String(end?.status)}: ${String(end?.error ?? '')}`);
  if (!opts.freshWorkspace && end?.status === 'ran') problems.push('gc deleted the record a run in a known workspace was restoring (it ran instead)');
  for (let i = 0; i < files; i++) {
    const got = await rig.read(`${rel}/out/many/f${i}.txt`).catch(() => '<missing>');
    if (got !== `${a} ${i}`) {
      problems.push(`${rel}/out/many/f${i}.txt is ${JSON.stringify(got)}`);
      break;
    }
  }
  const ws = path.join(rig.dir, rel);
  problems.push(...(await auditCache(rig, cacheDir, [ws])));
  const again = await rig.cli(['run', '--json', '-f', `${rel}/pipeline.yaml`, '--cache', cacheDir]);
  problems.push(...runFailed('rerun', again));
  for (const [id, st] of Object.entries(statuses(again.stdout))) if (st !== 'fresh') problems.push(`rerun: stage ${id} ${st}, expected fresh`);
  const fellBack = /cannot restore from cache/.test(r.stdout) ? 1 : 0;
  return { scenario: 'gc-during-restore', round, problems, counts: { gcs, restored: end?.status === 'restored' ? 1 : 0, fellBack, ran: end?.status === 'ran' ? 1 : 0 } };
}

/**
 * The lock holder is killed with SIGKILL mid-stage; the next run (no
 * `--wait`) must proceed, say it reclaimed the lock, and produce correct
 * outputs; the cache stays whole.
 */
export async function killHolderRound(rig: E2eRig, round: number): Promise<RoundResult> {
  const problems: string[] = [];
  const ws = path.join(rig.dir, 'killed');
  const yaml = (sleepMs: number): string =>
    pipelineYaml({
      name: 'killed',
      stages: {
        first: { cmd: rig.step('k-first', '--out', 'out/1.txt', '--text', `one${round}`), outs: ['out/1.txt'] },
        slow: { cmd: rig.step('k-slow', '--in', 'out/1.txt', '--sleep', String(sleepMs), '--out', 'out/2.txt', '--text', 'two'), deps: ['out/1.txt'], outs: ['out/2.txt'] },
      },
    });
  await rig.write('killed/pipeline.yaml', yaml(20_000));
  const run = rig.start(['run', '-f', 'killed/pipeline.yaml']);
  await run.waitFor(/k-slow running/, 60_000);
  const holder = run.child.pid!;
  run.child.kill('SIGKILL');
  await run.done;
  const orphan = await rig.pid('k-slow');
  if (!(await rig.exists('killed/.pipeline/lock'))) problems.push('the killed run left no lock (nothing to reclaim: the test proves nothing)');
  await rig.write('killed/pipeline.yaml', yaml(10));
  const next = await rig.cli(['run', '--json', '-f', 'killed/pipeline.yaml']);
  problems.push(...runFailed('run after kill -9', next));
  if (!new RegExp(`reclaimed the workspace lock .*pid ${holder}`).test(next.stderr)) problems.push(`run after kill -9 did not say it reclaimed the lock of pid ${holder}: ${next.stderr.trim()}`);
  if (!(await waitForExit(orphan, 3000))) problems.push(`orphaned stage ${orphan} still runs`);
  const out = await rig.read('killed/out/2.txt').catch(() => '<missing>');
  if (out !== `one${round}two`) problems.push(`killed/out/2.txt is ${JSON.stringify(out)}`);
  problems.push(...(await auditCache(rig, path.join(ws, 'cache'), [ws])));
  return { scenario: 'kill-holder', round, problems, counts: { reclaimed: next.code === 0 && problems.length === 0 ? 1 : 0 } };
}

/**
 * A lock left by pid P, where P now belongs to an unrelated live process (a
 * recycled pid: the lock's start time differs) → reclaimed, and the unrelated
 * process is left alone. A lock naming a live process with its true start
 * time → respected (exit 4, naming it).
 */
export async function pidReuseCases(rig: E2eRig): Promise<RoundResult> {
  const problems: string[] = [];
  await rig.write('reuse/pipeline.yaml', pipelineYaml({ name: 'reuse', stages: { s: { cmd: rig.step('reuse', '--out', 'out/s.txt', '--text', 's'), outs: ['out/s.txt'] } } }));
  const stranger = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const pid = stranger.pid!;
    let start: string | undefined;
    for (let i = 0; i < 50 && start === undefined; i++) {
      start = processStart(pid);
      if (start === undefined) await sleep(10);
    }
    if (start === undefined) return { scenario: 'pid-reuse', round: 0, problems: ['no /proc start time for a live process (not Linux?)'], counts: {} };
    const lockFile = path.join(rig.dir, 'reuse', '.pipeline', 'lock');
    const writeLock = async (s: string): Promise<void> => {
      await fs.mkdir(path.dirname(lockFile), { recursive: true });
      await fs.writeFile(lockFile, JSON.stringify({ pid, hostname: os.hostname(), start: s, since: '2026-01-01T00:00:00.000Z', token: 'feedfacecafebeef', purpose: 'pipeline run' }));
    };
    // 1. Recycled pid: the lock's owner started at another time.
    await writeLock(String(Number(start) - 12345));
    const r = await rig.cli(['run', '--json', '-f', 'reuse/pipeline.yaml']);
    problems.push(...runFailed('run over a recycled-pid lock', r));
    if (!new RegExp(`reclaimed the workspace lock .*pid ${pid}`).test(r.stderr)) problems.push(`no reclaim message for the recycled-pid lock: ${r.stderr.trim()}`);
    if (stranger.exitCode !== null || stranger.signalCode !== null) problems.push('the unrelated process that reuses the pid was killed');
    if (fss.existsSync(lockFile)) problems.push('the lock was not released after the run');
    // 2. The same pid with its real start time: a live holder; respected.
    await writeLock(start);
    const busy = await rig.cli(['run', '-f', 'reuse/pipeline.yaml']);
    if (busy.code !== 4) problems.push(`run over a live holder's lock exited ${busy.code}, expected 4`);
    if (!busy.stderr.includes(`pid ${pid} `)) problems.push(`the lock error does not name the holder pid ${pid}: ${busy.stderr.trim()}`);
    if (!fss.existsSync(lockFile)) problems.push("a live holder's lock was removed");
    await fs.rm(lockFile, { force: true });
  } finally {
    stranger.kill('SIGKILL');
  }
  return { scenario: 'pid-reuse', round: 0, problems, counts: {} };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
