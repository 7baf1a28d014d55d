/**
 * Full-disk scenarios (issue 7, "Full disk"), shared by the fast test
 * (test/reliability/full-disk.test.ts) and the stress file
 * (test/stress/full-disk.stress.ts). Real size-limited filesystems: a tmpfs
 * mounted (we run as root here and in CI) on the cache, on the workspace, on
 * the resize item cache only, or on the experiments directory only, with a
 * filler file taking the space that "freeing space" later gives back.
 *
 * (Mounts hold whole directories the engine renames within: the cache, the
 * workspace, or an item-cache namespace, never e.g. `experiments/` alone,
 * whose temp files live in the cache's `tmp/`.)
 *
 * Each case checks that a run that cannot fit:
 * - fails (exit 1) with a line naming the stage and saying "no space left on
 *   device (ENOSPC)", and no stack trace;
 * - leaves no partial record (the record files are the ones before it; the
 *   cache's `tmp/` is empty) and `pipeline cache verify` is clean;
 * - leaves earlier results intact: with space freed, the previous run's
 *   outputs restore from the cache, nothing recomputed (on a disk that is
 *   still full a restore fails too, cleanly: workspace state cannot be saved);
 * - and that after the filler is removed the next run completes with outputs
 *   equal to a run that never met a full disk.
 *
 * Mounting needs root (CAP_SYS_ADMIN): `canMount()` says whether it works and
 * why not, so the tests skip with that reason. Every mount is unmounted in a
 * `finally`. This module does not assert: cases return `DiskOutcome`s.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2eRig, pipelineYaml, statuses, type CliResult, type E2eRig } from '../helpers/rig.js';
import { diffSnapshots, snapshot } from './corruption-scenario.js';

/** Whether `mount -t tmpfs` works here; the reason when it does not. */
export function canMount(): { ok: true } | { ok: false; reason: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mount-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir]);
    if (r.status !== 0) return { ok: false, reason: `mount -t tmpfs is not permitted here (${(r.stderr?.toString() || r.error?.message || `exit ${r.status}`).trim()}); run as root to test full disks` };
    spawnSync('umount', [dir]);
    return { ok: true };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A mounted tmpfs; `dispose` unmounts it (lazily if busy). */
export interface Mounted extends AsyncDisposable {
  readonly dir: string;
}

/** Mounts a tmpfs of `kib` KiB at `dir` (created if needed). Throws when mount fails. */
export async function mountTmpfs(dir: string, kib: number): Promise<Mounted> {
  await fsp.mkdir(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', dir]);
  if (r.status !== 0) throw new Error(`mount tmpfs at ${dir} failed: ${r.stderr.toString()}`);
  return {
    dir,
    async [Symbol.asyncDispose]() {
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
    },
  };
}

/** Free KiB on the filesystem holding `dir`. */
export function freeKiB(dir: string): number {
  const s = fs.statfsSync(dir);
  return Math.floor((s.bavail * s.bsize) / 1024);
}

/** Writes a filler file taking all but `leaveKiB` of the free space of `dir`'s filesystem. */
export function fill(file: string, leaveKiB: number): void {
  const kib = Math.max(0, freeKiB(path.dirname(file)) - leaveKiB);
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(4096, 1);
    for (let i = 0; i < kib / 4; i++) {
      try {
        fs.writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** What happened in one case. */
export interface DiskOutcome {
  readonly id: string;
  readonly what: string;
  /** Every check held. */
  readonly ok: boolean;
  readonly problems: readonly string[];
  /** Whether the run met the full disk at all (a size where everything fit is a pass without a failure). */
  readonly hitFull: boolean;
  /** The failure line the user saw. */
  readonly message?: string;
  readonly seconds: number;
}

const STACK = /\n\s+at .*\.[cm]?js:\d+/;

/** The pipeline: ingest → resize (64×64, so packs take space), and a cmd stage writing `kb` KiB of deterministic bytes. */
export function diskPipeline(rig: E2eRig, kb: number, size = 64): string {
  return pipelineYaml({
    name: 'full-disk',
    params: { kb },
    stages: {
      ingest: { uses: 'ingest', with: { source: 'images' } },
      resize: { uses: 'resize', with: { size: [size, size] } },
      big: {
        cmd: [process.execPath, '-e', "const n=Number(process.argv[1]);const b=Buffer.alloc(n*1024);for(let i=0;i<b.length;i++)b[i]=(i*31+n)&255;require('fs').mkdirSync('out',{recursive:true});require('fs').writeFileSync('out/big.bin',b)", '${params.kb}'],
        outs: ['out/big.bin'],
      },
    },
  });
}

/** Record files (relative) under a cache dir. */
function recordFiles(cache: string): string[] {
  const dir = path.join(cache, 'records');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((s) => fs.readdirSync(path.join(dir, s)).map((n) => `${s}/${n}`)).sort();
}

/** Entries left in a cache's tmp/ (a finished process must leave none). */
function tmpLeft(cache: string): string[] {
  const dir = path.join(cache, 'tmp');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** Engine temp siblings left in the workspace outputs (`.<name>.pipeline-tmp-…`). */
function wsTempLeft(ws: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.includes('.pipeline-tmp-') || e.name.includes('.pipeline-old-')) out.push(path.join(d, e.name));
      else if (e.isDirectory() && e.name !== 'cache') walk(path.join(d, e.name));
    }
  };
  walk(ws);
  return out;
}

/** Shared checks on a run that met a full disk. */
function checkFailure(r: CliResult, stage: RegExp, problems: string[]): string | undefined {
  if (STACK.test(r.stdout) || STACK.test(r.stderr)) problems.push(`stack trace printed: ${r.stderr.slice(0, 300)}`);
  if (r.code !== 1) problems.push(`exit ${r.code}, expected 1 (stage failed)`);
  const line = (r.stdout + r.stderr).split('\n').find((l) => /no space left on device \(ENOSPC\)/.test(l));
  if (line === undefined) problems.push(`no "no space left on device (ENOSPC)" line: ${(r.stdout + r.stderr).slice(-600)}`);
  // Met before any stage started (the workspace lock, workspace state): then no stage to name.
  else if (!stage.test(line) && !/^pipeline: no space left on device \(ENOSPC\)(?: writing \S+)?: free some space and run again$/.test(line)) problems.push(`the ENOSPC line does not name the stage: ${line}`);
  return line;
}

/** A rig with images and a reference run (never a full disk) for `kb`; the reference cache is removed after. */
async function diskRig(images: number): Promise<E2eRig> {
  const rig = await e2eRig();
  for (let i = 0; i < images; i++) await rig.png(`images/${i % 3 === 0 ? 'cat' : i % 3 === 1 ? 'dog' : 'fox'}/${i}.png`, [(37 * i) % 256, (91 + 13 * i) % 256, (200 - 17 * i + 256) % 256], [20 + (i % 5), 16 + (i % 3)]);
  return rig;
}

async function reference(rig: E2eRig, kb: number, args: readonly string[] = []): Promise<Map<string, string>> {
  await rig.write('pipeline.yaml', diskPipeline(rig, kb));
  const r = await rig.cli(['run', '--cache', 'refcache', ...args]);
  if (r.code !== 0) throw new Error(`reference run failed: ${r.stdout}${r.stderr}`);
  const snap = snapshot(path.join(rig.dir, 'out'));
  await rig.rm('refcache');
  await rig.rm('out');
  return snap;
}

/**
 * The cache on a tmpfs of `kib` KiB: a first run with a small `big` output
 * fits; then a filler leaves `leaveKiB` free and a run with `bigKb` fails
 * (or, if it happens to fit, succeeds: `hitFull` false); earlier outputs
 * still restore; with the filler gone the big run completes.
 */
export async function cacheFull(opts: { kib: number; leaveKiB: number; bigKb: number; images?: number }): Promise<DiskOutcome> {
  const t0 = performance.now();
  const problems: string[] = [];
  await using rig = await diskRig(opts.images ?? 6);
  const want = await reference(rig, opts.bigKb);
  const wantSmall = await reference(rig, 8);
  await using m = await mountTmpfs(path.join(rig.dir, 'disk'), opts.kib);
  const cache = path.join(m.dir, 'cache');
  const run = (kb: number): Promise<CliResult> => rig.write('pipeline.yaml', diskPipeline(rig, kb)).then(() => rig.cli(['run', '--cache', cache]));
  let r = await run(8);
  if (r.code !== 0) problems.push(`the first (small) run failed: ${r.stdout.slice(-400)}`);
  const before = recordFiles(cache);
  fill(path.join(m.dir, 'filler'), opts.leaveKiB);
  r = await run(opts.bigKb);
  const hitFull = r.code !== 0;
  let message: string | undefined;
  if (hitFull) {
    message = checkFailure(r, /stage (big|resize|ingest) failed/, problems);
    const after = recordFiles(cache);
    const added = after.filter((f) => !before.includes(f));
    // A stage that completed before the disk filled may have recorded; the failed one must not have.
    for (const f of added) {
      const rec = JSON.parse(fs.readFileSync(path.join(cache, 'records', f), 'utf8')) as { stageId: string };
      if (message?.includes(`stage ${rec.stageId} failed`)) problems.push(`a record was written for the failed stage ${rec.stageId}`);
    }
    if (tmpLeft(cache).length > 0) problems.push(`tmp/ not empty after the failed run: ${tmpLeft(cache).join(', ')}`);
    const v = await rig.cli(['cache', 'verify', '--cache', cache]);
    if (v.code !== 0) problems.push(`verify after the failure is not clean: ${v.stdout}`);
  }
  // Space freed. Earlier results intact: the small run's outputs restore from the cache (nothing recomputed).
  // (On a disk that is still full even a restore fails, cleanly: the workspace state cannot be saved.)
  fs.rmSync(path.join(m.dir, 'filler'), { force: true });
  if (hitFull) {
    await rig.rm('out');
    await rig.write('pipeline.yaml', diskPipeline(rig, 8));
    r = await rig.cli(['run', '--cache', cache, '--json']);
    const st = statuses(r.stdout);
    if (r.code !== 0 || Object.values(st).some((x) => x === 'ran')) problems.push(`the earlier run's outputs did not all restore from the cache: exit ${r.code} ${JSON.stringify(st)}`);
    const d = diffSnapshots(wantSmall, snapshot(path.join(rig.dir, 'out')));
    if (d.length > 0) problems.push(`restored earlier outputs differ: ${d.slice(0, 3).join(', ')}`);
  }
  // And the run that did not fit completes.
  r = await run(opts.bigKb);
  if (r.code !== 0) problems.push(`after freeing space the run failed: ${r.stdout.slice(-400)}`);
  const d = diffSnapshots(want, snapshot(path.join(rig.dir, 'out')));
  if (d.length > 0) problems.push(`outputs after freeing space differ from a run that never met a full disk: ${d.slice(0, 3).join(', ')}`);
  const v = await rig.cli(['cache', 'verify', '--cache', cache]);
  if (v.code !== 0) problems.push(`verify at the end is not clean: ${v.stdout}`);
  return { id: `cache-full-${opts.kib}k-leave${opts.leaveKiB}k-big${opts.bigKb}k`, what: 'the cache on a small tmpfs', ok: problems.length === 0, problems, hitFull, ...(message ? { message } : {}), seconds: (performance.now() - t0) / 1000 };
}

/**
 * The workspace on a tmpfs (cache elsewhere): outputs restore into a full
 * workspace (materialise fails), then with space freed they restore.
 */
export async function workspaceFull(opts: { kib: number; leaveKiB: number; bigKb: number }): Promise<DiskOutcome> {
  const t0 = performance.now();
  const problems: string[] = [];
  await using rig = await diskRig(6);
  // The workspace is ws/ (the pipeline file's directory): the reference runs there before the mount hides it.
  const setup = (dir: string): void => {
    fs.cpSync(path.join(rig.dir, 'images'), path.join(dir, 'images'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'pipeline.yaml'), diskPipeline(rig, opts.bigKb));
  };
  const ws = path.join(rig.dir, 'ws');
  setup(ws);
  const ref = await rig.cli(['run', 'ws/pipeline.yaml', '--cache', 'refcache']);
  if (ref.code !== 0) throw new Error(`reference run failed: ${ref.stdout}${ref.stderr}`);
  const want = snapshot(path.join(ws, 'out'));
  await rig.rm('refcache');
  await using m = await mountTmpfs(ws, opts.kib);
  setup(m.dir);
  const cache = path.join(rig.dir, 'cache');
  const run = (): Promise<CliResult> => rig.cli(['run', 'ws/pipeline.yaml', '--cache', cache]);
  let r = await run();
  if (r.code !== 0) problems.push(`the first run failed: ${r.stdout.slice(-400)}`);
  const before = recordFiles(cache);
  fs.rmSync(path.join(m.dir, 'out'), { recursive: true, force: true });
  fill(path.join(m.dir, 'filler'), opts.leaveKiB);
  r = await run();
  const hitFull = r.code !== 0;
  let message: string | undefined;
  if (hitFull) {
    message = checkFailure(r, /stage (big|resize|ingest) failed/, problems);
    if (recordFiles(cache).join() !== before.join()) problems.push('records changed although every stage only restored');
    const left = wsTempLeft(m.dir);
    if (left.length > 0) problems.push(`engine temp files left in the workspace: ${left.join(', ')}`);
    const v = await rig.cli(['cache', 'verify', '--cache', cache]);
    if (v.code !== 0) problems.push(`verify after the failure is not clean: ${v.stdout}`);
  }
  fs.rmSync(path.join(m.dir, 'filler'), { force: true });
  r = await run();
  if (r.code !== 0) problems.push(`after freeing space the run failed: ${r.stdout.slice(-400)}`);
  const d = diffSnapshots(want, snapshot(path.join(m.dir, 'out')));
  if (d.length > 0) problems.push(`outputs after freeing space differ: ${d.slice(0, 3).join(', ')}`);
  return { id: `workspace-full-${opts.kib}k-leave${opts.leaveKiB}k`, what: 'the workspace on a small tmpfs (restoring outputs)', ok: problems.length === 0, problems, hitFull, ...(message ? { message } : {}), seconds: (performance.now() - t0) / 1000 };
}

/**
 * Only the resize item cache (`cache/items/resize`) on a tiny tmpfs: resize's
 * per-image cache writes meet ENOSPC. The stage must fail cleanly (or carry
 * on without caching, if it chooses): never a record with missing or torn
 * packs; with space freed it completes identically.
 */
export async function itemsFull(opts: { kib: number; leaveKiB: number }): Promise<DiskOutcome> {
  const t0 = performance.now();
  const problems: string[] = [];
  await using rig = await diskRig(12);
  const want = await reference(rig, 8);
  const cache = path.join(rig.dir, 'cache');
  await using m = await mountTmpfs(path.join(cache, 'items', 'resize'), opts.kib);
  fill(path.join(m.dir, 'filler'), opts.leaveKiB);
  await rig.write('pipeline.yaml', diskPipeline(rig, 8));
  let r = await rig.cli(['run', '--cache', cache]);
  const hitFull = r.code !== 0;
  let message: string | undefined;
  if (hitFull) {
    message = checkFailure(r, /stage resize failed/, problems);
    if (tmpLeft(cache).length > 0) problems.push(`tmp/ not empty after the failed run: ${tmpLeft(cache).join(', ')}`);
    const v = await rig.cli(['cache', 'verify', '--cache', cache, '--json']);
    if (v.code !== 0) problems.push(`verify after the failure is not clean: ${v.stdout}`);
    // Earlier results intact: ingest (which fit) is fresh or restores.
    const again = await rig.cli(['run', '--cache', cache, '--stage', 'ingest', '--json']);
    const s = statuses(again.stdout);
    if (again.code !== 0 || !['fresh', 'restored'].includes(s['ingest'] ?? '')) problems.push(`ingest's result did not survive: ${JSON.stringify(s)}`);
  } else {
    const d = diffSnapshots(want, snapshot(path.join(rig.dir, 'out')));
    if (d.length > 0) problems.push(`a run that carried on past the full item cache has different outputs: ${d.slice(0, 3).join(', ')}`);
  }
  fs.rmSync(path.join(m.dir, 'filler'), { force: true });
  r = await rig.cli(['run', '--cache', cache]);
  if (r.code !== 0) problems.push(`after freeing space the run failed: ${r.stdout.slice(-400)}`);
  const d = diffSnapshots(want, snapshot(path.join(rig.dir, 'out')));
  if (d.length > 0) problems.push(`outputs after freeing space differ: ${d.slice(0, 3).join(', ')}`);
  const v = await rig.cli(['cache', 'verify', '--cache', cache]);
  if (v.code !== 0) problems.push(`verify at the end is not clean: ${v.stdout}`);
  return { id: `items-full-${opts.kib}k-leave${opts.leaveKiB}k`, what: "resize's item-cache writes on a full tmpfs", ok: problems.length === 0, problems, hitFull, ...(message ? { message } : {}), seconds: (performance.now() - t0) / 1000 };
}

/**
 * The cache on a tmpfs filled completely after a first run; a second run
 * asks for nothing new but a name (`-n`), so every stage is fresh and the
 * only write it needs is the experiment record, which meets ENOSPC. The user
 * is told plainly; no partial record file is left; earlier experiments are
 * still listed; with space freed the next run records its experiment.
 */
export async function experimentFull(opts: { kib: number }): Promise<DiskOutcome> {
  const t0 = performance.now();
  const problems: string[] = [];
  await using rig = await diskRig(3);
  await using m = await mountTmpfs(path.join(rig.dir, 'disk'), opts.kib);
  const cache = path.join(m.dir, 'cache');
  const expDir = path.join(cache, 'experiments');
  await rig.write('pipeline.yaml', diskPipeline(rig, 4, 8));
  let r = await rig.cli(['run', '--cache', cache, '-n', 'first']);
  if (r.code !== 0) problems.push(`the first run failed: ${r.stdout.slice(-400)}`);
  const listed = async (): Promise<number> => {
    const l = await rig.cli(['exp', 'list', '--json', '--cache', cache]);
    if (l.code !== 0 || STACK.test(l.stderr)) problems.push(`exp list failed: ${l.stderr}`);
    try {
      return (JSON.parse(l.stdout) as unknown[]).length;
    } catch {
      problems.push(`exp list --json printed no JSON: ${l.stdout.slice(0, 200)}`);
      return -1;
    }
  };
  if ((await listed()) !== 1) problems.push('the first experiment is not listed');
  fill(path.join(m.dir, 'filler'), 0);
  r = await rig.cli(['run', '--cache', cache, '-n', 'second']);
  const line = (r.stdout + r.stderr).split('\n').find((l) => /experiment/.test(l) && /no space left on device/.test(l));
  const hitFull = line !== undefined;
  if (!hitFull) problems.push(`no plain "could not record the experiment: … no space left on device" line: ${r.stderr}`);
  if (STACK.test(r.stdout) || STACK.test(r.stderr)) problems.push('stack trace printed');
  if (r.code !== 0) problems.push(`exit ${r.code}: the stages themselves were all fresh`);
  const partial = [...fs.readdirSync(expDir).filter((n) => !/^[0-9a-f]+\.json$/.test(n) && n !== 'latest'), ...tmpLeft(cache)];
  if (partial.length > 0) problems.push(`partial files left: ${partial.join(', ')}`);
  if ((await listed()) !== 1) problems.push('the earlier experiment is no longer listed (or a partial one is)');
  const s = await rig.cli(['status', '--json', '--cache', cache]);
  if (!(JSON.parse(s.stdout) as { status: string }[]).every((x) => x.status === 'fresh')) problems.push(`the stages' own records were lost: ${s.stdout}`);
  fs.rmSync(path.join(m.dir, 'filler'), { force: true });
  r = await rig.cli(['run', '--cache', cache, '-n', 'third']);
  if (r.code !== 0 || /could not record/.test(r.stderr)) problems.push(`after freeing space the run did not record: ${r.stderr}`);
  if ((await listed()) !== 2) problems.push('the new experiment is not listed after freeing space');
  return { id: `experiment-full-${opts.kib}k`, what: 'the experiment record write on a full tmpfs', ok: problems.length === 0, problems, hitFull, ...(line ? { message: line } : {}), seconds: (performance.now() - t0) / 1000 };
}
