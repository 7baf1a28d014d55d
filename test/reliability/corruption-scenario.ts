/**
 * Cache corruption scenarios (issue 7, "Corruption"), shared by the fast test
 * (test/reliability/corruption.test.ts, a few cases) and the stress file
 * (test/stress/corruption.stress.ts, every case plus random byte flips).
 *
 * A real small pipeline (built-in ingest → resize, partition, and a `cmd`
 * stage with a directory dependency and a metric) runs twice (params tag `a`
 * then `b`: two experiments, two report records) in a temp workspace; the
 * workspace + cache are then kept as a template. Each case starts from a copy
 * of the template (`cp -a`: hard links between item-cache entries and cache
 * objects are kept), injects one fault into the cache, and checks:
 *
 * - `pipeline cache verify --json` on one copy reports it (exit 1, in the
 *   expected list), when it is something verify checks;
 * - on another copy the workspace outputs are removed (or the other tag is
 *   asked for) and `pipeline run --json` exits 0, without a stack trace, with
 *   the stages that depended on the bad entry recomputed (`ran`) and every
 *   workspace output byte-identical to the clean run's;
 * - `pipeline cache verify` afterwards is clean (the run quarantined and
 *   re-stored what it found), unless the fault is in something no run reads;
 * - for experiment records: `exp list` and `diff` still work, naming the
 *   skipped file with a line and column.
 *
 * This module does not assert: it returns one `CaseOutcome` per case and the
 * tests decide (so a stress run can count all failures at once).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mulberry32 } from '../../stages/ml/dataset.js';
import { e2eRig, pipelineYaml, statuses, type CliResult, type E2eRig } from '../helpers/rig.js';

/** What `cache verify --json` prints. */
export interface VerifyJson {
  readonly objects: number;
  readonly corrupt: readonly string[];
  readonly missing: readonly { key: string; stageId: string; sha256: string; path: string }[];
  readonly badRecords: readonly string[];
  readonly corruptItems?: readonly string[];
  readonly ok: boolean;
}

/** Which list of `cache verify` must name the fault (`none`: verify does not look there). */
export type VerifyExpect = 'corrupt' | 'missing' | 'badRecords' | 'corruptItems' | 'any' | 'none';

/** The template's cache, seen by a case: where things are. */
export interface CacheMap {
  /** Absolute workspace (= the rig dir). */
  readonly ws: string;
  /** Absolute cache dir. */
  readonly cache: string;
  /** stageId → parsed run record of the key the workspace holds (tag b), and its file. */
  readonly records: ReadonlyMap<string, { file: string; rec: RunRecordJson }>;
  /** The record of `report` for tag a (not in the workspace). */
  readonly reportA: { file: string; rec: RunRecordJson };
  /** Experiment record files, oldest first (tag a, tag b). */
  readonly experiments: readonly string[];
}

/** The parts of a run record the cases use. */
export interface RunRecordJson {
  readonly key: string;
  readonly stageId: string;
  readonly outputs: { files: { path: string; sha256: string; size: number }[] };
  readonly inputListings?: Record<string, string>;
  readonly metrics: Record<string, number>;
}

/** One fault. */
export interface CorruptionCase {
  readonly id: string;
  /** What is damaged, in words (for the figure's detail). */
  readonly what: string;
  /**
   * Damages the cache of a fresh template copy (called twice per case, and
   * must do the same both times); returns a note (the file touched) or the
   * note with expectations that depend on what was hit (random flips).
   */
  inject(map: CacheMap): Promise<string | Injected>;
  /** The list `cache verify` must name it in. */
  readonly verify: VerifyExpect;
  /** Stages the next run must recompute (status `ran`). */
  readonly recompute: readonly string[];
  /** The run asks for tag `a` (restore of keys the workspace does not hold) instead of removing `out/`. */
  readonly switchTag?: boolean;
  /** The fault is in something no run reads (a listing, an unlinked entry): verify stays unclean after the run. */
  readonly untouchedByRun?: boolean;
  /** Also check `exp list` / `diff` (the fault is in an experiment record). */
  readonly experiments?: boolean;
}

/** What a random injection hit, and so what to expect (overrides the case's fields). */
export interface Injected {
  readonly note: string;
  readonly verify?: VerifyExpect;
  readonly experiments?: boolean;
  /** One flip can land where it changes no data (a field's name); then nothing need be reported. */
  readonly mayBeHarmless?: boolean;
}

/** What happened in one case. */
export interface CaseOutcome {
  readonly id: string;
  readonly what: string;
  readonly note: string;
  /** Every check held. */
  readonly ok: boolean;
  /** Nothing reported it, and nothing needed to (outputs clean): a flip that changed no data. */
  readonly harmless: boolean;
  /** The checks that failed, in words. */
  readonly problems: readonly string[];
  /** Statuses of the run after the fault. */
  readonly statuses: Readonly<Record<string, string>>;
  /** Seconds the case took. */
  readonly seconds: number;
}

/** The pipeline: ingest → resize and partition (built-ins), report (`cmd`, depends on partition and the images dir). */
function pipeline(rig: E2eRig, tag: string): string {
  return pipelineYaml({
    name: 'corruption',
    params: { tag },
    stages: {
      ingest: { uses: 'ingest', with: { source: 'images' } },
      resize: { uses: 'resize', with: { size: [8, 8] } },
      partition: { uses: 'partition' },
      report: {
        cmd: rig.step('report', '--in', 'out/partition/counts.json', '--in', 'out/ingest/classes.json', '--text', '${params.tag}', '--out', 'out/report.txt', '--metrics', 'out/metrics.json', '{"classes": 2, "images": 6}'),
        deps: [{ stage: 'partition' }, { stage: 'ingest' }, 'images'],
        outs: ['out/report.txt'],
        metrics: ['out/metrics.json'],
      },
    },
  });
}

/** sha256 of every file under `dir` (relative path → hex), symlinks not followed. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(abs, r);
      else if (e.isSymbolicLink()) out.set(r, `symlink:${fs.readlinkSync(abs)}`);
      else out.set(r, crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

/** Differences between two snapshots, in words (empty when identical). */
export function diffSnapshots(want: ReadonlyMap<string, string>, got: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [p, h] of want) if (!got.has(p)) out.push(`${p} missing`);
    else if (got.get(p) !== h) out.push(`${p} differs`);
  for (const p of got.keys()) if (!want.has(p)) out.push(`${p} unexpected`);
  return out;
}

/** Makes a read-only cache file writable, edits it, and makes it read-only again (root ignores modes, others do not). */
async function editFile(file: string, edit: (b: Buffer) => Buffer, opts: { keepTimes?: boolean } = {}): Promise<void> {
  const st = fs.statSync(file);
  await fsp.chmod(file, 0o644);
  // Write in place (same inode): an item entry and the object sharing its inode both change, as with real bit rot.
  const data = edit(await fsp.readFile(file));
  const fd = fs.openSync(file, 'r+');
  try {
    fs.ftruncateSync(fd, data.length);
    fs.writeSync(fd, data, 0, data.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  await fsp.chmod(file, st.mode & 0o777);
  if (opts.keepTimes) fs.utimesSync(file, st.atime, st.mtime);
}

/** XORs one byte at `offset` (clamped) with a non-zero mask. */
export async function flipByte(file: string, offset: number, mask = 0x20, opts: { keepTimes?: boolean } = {}): Promise<void> {
  await editFile(
    file,
    (b) => {
      const i = Math.max(0, Math.min(b.length - 1, offset));
      b[i] = b[i]! ^ (mask & 0xff || 1);
      return b;
    },
    opts,
  );
}

/** Cuts a file to `fraction` of its length (at least one byte shorter). */
async function truncate(file: string, fraction: number): Promise<void> {
  await editFile(file, (b) => b.subarray(0, Math.min(b.length - 1, Math.floor(b.length * fraction))));
}

function objectFile(map: CacheMap, sha: string): string {
  return path.join(map.cache, 'objects', sha.slice(0, 2), sha);
}

/** The object of `stage`'s output whose path matches `re`. */
function outputObject(map: CacheMap, stage: string, re: RegExp): { file: string; sha: string; path: string } {
  const rec = map.records.get(stage)!.rec;
  const f = rec.outputs.files.find((x) => re.test(x.path) && x.size > 0);
  if (!f) throw new Error(`no output of ${stage} matches ${re}`);
  return { file: objectFile(map, f.sha256), sha: f.sha256, path: f.path };
}

/** Item-cache entries of namespace `ns`, sorted. */
function itemEntries(map: CacheMap, ns: string): string[] {
  const root = path.join(map.cache, 'items', ns);
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((s) => /^[0-9a-zA-Z_-]{2}$/.test(s))
    .flatMap((s) => fs.readdirSync(path.join(root, s)).map((n) => path.join(root, s, n)))
    .sort();
}

/** The fixed cases: each kind of cache file, each kind of damage. */
export const CASES: readonly CorruptionCase[] = [
  {
    id: 'flip-cmd-output',
    what: "a flipped byte in a cmd stage's output object (report.txt)",
    verify: 'corrupt',
    recompute: ['report'],
    async inject(map) {
      const o = outputObject(map, 'report', /report\.txt$/);
      await flipByte(o.file, 0);
      return o.path;
    },
  },
  {
    id: 'flip-builtin-output',
    what: "a flipped byte in a built-in's output object (partition.json)",
    verify: 'corrupt',
    recompute: ['partition'],
    async inject(map) {
      const o = outputObject(map, 'partition', /^partition\.json$/);
      await flipByte(o.file, 10);
      return o.path;
    },
  },
  {
    id: 'flip-dir-manifest-output',
    what: "a flipped byte in ingest's manifest of the image directory (manifest.jsonl object)",
    verify: 'corrupt',
    recompute: ['ingest'],
    async inject(map) {
      const o = outputObject(map, 'ingest', /^manifest\.jsonl$/);
      await flipByte(o.file, 5);
      return o.path;
    },
  },
  {
    id: 'flip-dir-listing',
    what: 'a flipped byte in the stored listing of a directory dependency (report: images/)',
    verify: 'corrupt',
    recompute: [],
    untouchedByRun: true,
    async inject(map) {
      const sha = Object.values(map.records.get('report')!.rec.inputListings ?? {})[0];
      if (!sha) throw new Error('report has no directory listing');
      await flipByte(objectFile(map, sha), 3);
      return `listing ${sha.slice(0, 12)}`;
    },
  },
  {
    id: 'flip-resize-pack',
    what: 'a flipped byte in a resize pack object (shares its inode with the item-cache entry)',
    verify: 'any',
    recompute: ['resize'],
    async inject(map) {
      const o = outputObject(map, 'resize', /\.px$/);
      await flipByte(o.file, 4);
      return o.path;
    },
  },
  {
    id: 'flip-resize-entry-bitrot',
    what: 'a flipped byte in a resize item-cache entry, mtime kept (bit rot)',
    verify: 'any',
    recompute: ['resize'],
    async inject(map) {
      const e = itemEntries(map, 'resize')[1]!;
      await flipByte(e, 2, 0x01, { keepTimes: true });
      return path.relative(map.cache, e);
    },
  },
  {
    id: 'flip-ingest-entry',
    what: 'a flipped byte in an ingest item-cache entry (not linked into any output)',
    verify: 'corruptItems',
    recompute: [],
    untouchedByRun: true,
    async inject(map) {
      const e = itemEntries(map, 'ingest')[0]!;
      await flipByte(e, 1);
      return path.relative(map.cache, e);
    },
  },
  {
    id: 'flip-record-metric',
    what: "a flipped digit in a run record's metrics (still valid JSON, still hashes to its key)",
    verify: 'badRecords',
    recompute: ['report'],
    async inject(map) {
      const { file } = map.records.get('report')!;
      const text = await fsp.readFile(file, 'utf8');
      const i = text.indexOf('"classes":2');
      if (i < 0) throw new Error('metric not found in the record');
      await flipByte(file, i + '"classes":'.length, 0x01); // '2' → '3'
      return `${path.relative(map.cache, file)} metrics.classes 2 → 3`;
    },
  },
  {
    id: 'flip-record-middle',
    what: 'a flipped byte in the middle of a run record',
    verify: 'badRecords',
    recompute: ['partition'],
    async inject(map) {
      const { file } = map.records.get('partition')!;
      await flipByte(file, Math.floor(fs.statSync(file).size / 2), 0x04);
      return path.relative(map.cache, file);
    },
  },
  {
    id: 'truncate-record',
    what: 'a truncated run record',
    verify: 'badRecords',
    recompute: ['resize'],
    async inject(map) {
      const { file } = map.records.get('resize')!;
      await truncate(file, 0.5);
      return path.relative(map.cache, file);
    },
  },
  {
    id: 'truncate-record-other-key',
    what: 'a truncated run record of a key the workspace does not hold (restored by switching params back)',
    verify: 'badRecords',
    recompute: ['report'],
    switchTag: true,
    async inject(map) {
      await truncate(map.reportA.file, 0.3);
      return path.relative(map.cache, map.reportA.file);
    },
  },
  {
    id: 'delete-object',
    what: 'a deleted object that a record names',
    verify: 'missing',
    recompute: ['partition'],
    async inject(map) {
      const o = outputObject(map, 'partition', /^counts\.json$/);
      await fsp.rm(o.file);
      return o.path;
    },
  },
  {
    id: 'delete-object-other-key',
    what: 'a deleted object of the report of a key the workspace does not hold (switching params back)',
    verify: 'missing',
    recompute: ['report'],
    switchTag: true,
    async inject(map) {
      const f = map.reportA.rec.outputs.files[0]!;
      await fsp.rm(objectFile(map, f.sha256));
      return f.path;
    },
  },
  {
    id: 'truncate-object',
    what: 'a truncated object',
    verify: 'corrupt',
    recompute: ['ingest'],
    async inject(map) {
      const o = outputObject(map, 'ingest', /^classes\.json$/);
      await truncate(o.file, 0.5);
      return o.path;
    },
  },
  {
    id: 'object-is-directory',
    what: 'an object replaced by a directory',
    verify: 'any',
    recompute: ['partition'],
    async inject(map) {
      const o = outputObject(map, 'partition', /^partition\.json$/);
      await fsp.rm(o.file);
      await fsp.mkdir(o.file);
      await fsp.writeFile(path.join(o.file, 'x'), 'not an object');
      return o.path;
    },
  },
  {
    id: 'object-is-symlink',
    what: 'an object replaced by a symlink to other bytes of the same size',
    verify: 'corrupt',
    recompute: ['report'],
    async inject(map) {
      const o = outputObject(map, 'report', /report\.txt$/);
      const size = fs.statSync(o.file).size;
      const other = path.join(map.ws, 'elsewhere.bin');
      await fsp.writeFile(other, Buffer.alloc(size, 0x41));
      await fsp.rm(o.file);
      await fsp.symlink(other, o.file);
      return o.path;
    },
  },
  {
    id: 'truncate-experiment',
    what: 'a truncated experiment record (exp list / diff skip it with a located message)',
    verify: 'none',
    recompute: [],
    experiments: true,
    async inject(map) {
      await truncate(map.experiments[0]!, 0.6);
      return path.relative(map.cache, map.experiments[0]!);
    },
  },
  {
    id: 'flip-experiment-metric',
    what: "a flipped digit in an experiment record's metric (checksum mismatch: skipped, not shown)",
    verify: 'none',
    recompute: [],
    experiments: true,
    async inject(map) {
      const file = map.experiments[0]!;
      const text = await fsp.readFile(file, 'utf8');
      const i = text.indexOf('"report.classes":2');
      if (i < 0) throw new Error('metric not found in the experiment record');
      await flipByte(file, i + '"report.classes":'.length, 0x01);
      return path.relative(map.cache, file);
    },
  },
  {
    id: 'truncate-workspace-state',
    what: "a truncated workspace state file (the engine's memory of what it put in the workspace)",
    verify: 'none',
    recompute: [],
    async inject(map) {
      const dir = path.join(map.cache, 'workspaces');
      const file = path.join(dir, fs.readdirSync(dir)[0]!, 'state.json');
      await truncate(file, 0.4);
      return path.relative(map.cache, file);
    },
  },
];

/** A prepared template (see module doc) and the rig the cases run in. */
export interface CorruptionRig extends AsyncDisposable {
  readonly rig: E2eRig;
  /** Outputs of the clean run (tag b), relative to `out/`. */
  readonly clean: ReadonlyMap<string, string>;
  /** Outputs of the clean run with tag a. */
  readonly cleanA: ReadonlyMap<string, string>;
  /** Runs one case from a fresh copy of the template. */
  runCase(c: CorruptionCase): Promise<CaseOutcome>;
}

const STACK = /\n\s+at .*\.[cm]?js:\d+/;

/** Puts the template back into the rig dir (everything else there removed). */
function restoreTemplate(template: string, dir: string): void {
  for (const n of fs.readdirSync(dir)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  const r = spawnSync('cp', ['-a', `${template}/.`, dir]);
  if (r.status !== 0) throw new Error(`cp -a failed: ${r.stderr.toString()}`);
}

function readRecords(cache: string): { file: string; rec: RunRecordJson }[] {
  const dir = path.join(cache, 'records');
  return fs.readdirSync(dir).flatMap((s) =>
    fs.readdirSync(path.join(dir, s)).map((n) => {
      const file = path.join(dir, s, n);
      return { file, rec: JSON.parse(fs.readFileSync(file, 'utf8')) as RunRecordJson };
    }),
  );
}

function cacheMap(ws: string, keysB: ReadonlyMap<string, string>, reportAKey: string): CacheMap {
  const cache = path.join(ws, 'cache');
  const all = readRecords(cache);
  const records = new Map<string, { file: string; rec: RunRecordJson }>();
  for (const [stage, key] of keysB) records.set(stage, all.find((r) => r.rec.key === key)!);
  const reportA = all.find((r) => r.rec.key === reportAKey)!;
  const expDir = path.join(cache, 'experiments');
  const experiments = fs
    .readdirSync(expDir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => path.join(expDir, n))
    .sort((a, b) => (JSON.parse(fs.readFileSync(a, 'utf8')) as { createdAt: string }).createdAt.localeCompare((JSON.parse(fs.readFileSync(b, 'utf8')) as { createdAt: string }).createdAt));
  return { ws, cache, records, reportA, experiments };
}

/** Keys per stage from a `run --json` output. */
function keysOf(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of stdout.split('\n')) {
    if (!l.startsWith('{')) continue;
    const e = JSON.parse(l) as { type: string; stage?: string; key?: string };
    if (e.type === 'stage-end' && e.stage && e.key) out.set(e.stage, e.key);
  }
  return out;
}

/** Builds the template: images, two clean runs (tag a, then b). */
export async function corruptionRig(): Promise<CorruptionRig> {
  const rig = await e2eRig();
  const template = await fsp.mkdtemp(path.join(os.tmpdir(), 'corruption-template-'));
  try {
    for (let i = 0; i < 6; i++) await rig.png(`images/${i % 2 ? 'cat' : 'dog'}/${i}.png`, [40 * i, 90, 200 - 30 * i], [12, 10]);
    await rig.write('pipeline.yaml', pipeline(rig, 'a'));
    const a = await rig.cli(['run', '--json']);
    if (a.code !== 0) throw new Error(`clean run (a) failed:\n${a.stdout}\n${a.stderr}`);
    const cleanA = snapshot(path.join(rig.dir, 'out'));
    const reportAKey = keysOf(a.stdout).get('report')!;
    await rig.write('pipeline.yaml', pipeline(rig, 'b'));
    const b = await rig.cli(['run', '--json']);
    if (b.code !== 0) throw new Error(`clean run (b) failed:\n${b.stdout}\n${b.stderr}`);
    const clean = snapshot(path.join(rig.dir, 'out'));
    const keysB = keysOf(b.stdout);
    await rig.rm('counts');
    await rig.rm('pids');
    const cp = spawnSync('cp', ['-a', `${rig.dir}/.`, template]);
    if (cp.status !== 0) throw new Error(`cp -a failed: ${cp.stderr.toString()}`);

    const runCase = async (c: CorruptionCase): Promise<CaseOutcome> => {
      const t0 = performance.now();
      const problems: string[] = [];
      let note = '';
      const noStack = (what: string, r: CliResult): void => {
        if (STACK.test(r.stdout) || STACK.test(r.stderr)) problems.push(`${what} printed a stack trace: ${r.stderr.slice(0, 400)}`);
      };
      // 1. verify reports it.
      restoreTemplate(template, rig.dir);
      const hit = await c.inject(cacheMap(rig.dir, keysB, reportAKey));
      const inj: Injected = typeof hit === 'string' ? { note: hit } : hit;
      note = inj.note;
      const verifyExpect = inj.verify ?? c.verify;
      const checkExperiments = inj.experiments ?? c.experiments === true;
      let reported = false;
      if (verifyExpect !== 'none') {
        const v = await rig.cli(['cache', 'verify', '--json']);
        noStack('verify', v);
        let rep: VerifyJson | undefined;
        try {
          rep = JSON.parse(v.stdout) as VerifyJson;
        } catch {
          problems.push(`verify printed no JSON (exit ${v.code}): ${v.stdout}${v.stderr}`);
        }
        if (rep) {
          const listed = { corrupt: rep.corrupt.length, missing: rep.missing.length, badRecords: rep.badRecords.length, corruptItems: rep.corruptItems?.length ?? 0 };
          const total = listed.corrupt + listed.missing + listed.badRecords + listed.corruptItems;
          reported = total > 0;
          if (!(inj.mayBeHarmless && !reported)) {
            if (v.code !== 1 || rep.ok) problems.push(`verify exit ${v.code}, ok=${rep.ok}: it did not report the fault`);
            if (verifyExpect === 'any' ? total === 0 : listed[verifyExpect] === 0) problems.push(`verify did not list it under ${verifyExpect}: ${JSON.stringify(listed)}`);
          }
        }
        if (reported) {
          // The report already moved things to quarantine: the text form is checked on a fresh copy.
          restoreTemplate(template, rig.dir);
          await c.inject(cacheMap(rig.dir, keysB, reportAKey));
          const text = await rig.cli(['cache', 'verify']);
          if (!/moved to quarantine|will recompute/.test(text.stdout)) problems.push(`verify's text does not say what it did: ${text.stdout}`);
        }
      }
      // 2. the next run detects it, recomputes, restores nothing bad.
      restoreTemplate(template, rig.dir);
      await c.inject(cacheMap(rig.dir, keysB, reportAKey));
      let want = clean;
      if (c.switchTag) {
        await rig.write('pipeline.yaml', pipeline(rig, 'a'));
        want = cleanA;
      } else {
        await rig.rm('out');
      }
      const r = await rig.cli(['run', '--json']);
      noStack('run', r);
      let st: Record<string, string> = {};
      try {
        st = statuses(r.stdout);
      } catch {
        problems.push(`run printed lines that are not NDJSON: ${r.stdout.slice(0, 300)}`);
      }
      if (r.code !== 0) problems.push(`run exit ${r.code}: ${r.stderr.slice(0, 300)} ${r.stdout.slice(-600)}`);
      for (const s of c.recompute) if (st[s] !== 'ran') problems.push(`${s} was ${st[s] ?? 'not reported'}, not recomputed`);
      for (const [s, v] of Object.entries(st)) if (!['ran', 'restored', 'fresh'].includes(v)) problems.push(`${s} ended ${v}`);
      const diff = diffSnapshots(want, snapshot(path.join(rig.dir, 'out')));
      if (diff.length > 0) problems.push(`outputs differ from a clean run: ${diff.slice(0, 5).join(', ')}`);
      if (!c.untouchedByRun) {
        const after = await rig.cli(['cache', 'verify', '--json']);
        noStack('verify after the run', after);
        if (after.code !== 0) problems.push(`verify after the run is not clean: ${after.stdout}`);
      }
      // 3. experiments: listed without the damaged one, which is named with a location.
      if (checkExperiments) {
        const l = await rig.cli(['exp', 'list', '--json']);
        noStack('exp list', l);
        if (l.code !== 0) problems.push(`exp list exit ${l.code}: ${l.stderr}`);
        reported ||= /experiments\/[0-9a-f]+\.json:\d+:\d+: skipped experiment record: /.test(l.stderr);
        if (!reported && !inj.mayBeHarmless) problems.push(`exp list did not name the skipped record with a location: ${l.stderr}`);
        const d = await rig.cli(['diff', 'HEAD~1', 'HEAD~0']);
        noStack('diff', d);
        if (d.code !== 0) problems.push(`diff exit ${d.code}: ${d.stderr}`);
      }
      const ok = problems.length === 0;
      return { id: c.id, what: c.what, note, ok, harmless: ok && !reported && inj.mayBeHarmless === true, problems, statuses: st, seconds: (performance.now() - t0) / 1000 };
    };

    return {
      rig,
      clean,
      cleanA,
      runCase,
      async [Symbol.asyncDispose]() {
        await rig[Symbol.asyncDispose]();
        await fsp.rm(template, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rig[Symbol.asyncDispose]();
    await fsp.rm(template, { recursive: true, force: true });
    throw e;
  }
}

/**
 * A random byte flip (reproducible from `seed`) in a random non-empty file of
 * the cache (objects, records, item-cache entries, experiment records),
 * outputs removed before the run. Verify (or, for an experiment record,
 * `exp list`) must report it unless it landed where one flip changes no data
 * (the name of a record's `checksum` field); the run must give clean outputs
 * either way. What no run reads (a log, a listing, an unlinked entry) may
 * still be reported by verify after the run.
 */
export function randomFlipCase(seed: number): CorruptionCase {
  return {
    id: `random-flip-${seed}`,
    what: 'a random byte flip in a random cache file',
    verify: 'any',
    recompute: [],
    untouchedByRun: true,
    async inject(map) {
      const rnd = mulberry32(seed);
      const files: string[] = [];
      const walk = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          const abs = path.join(d, e.name);
          if (e.isDirectory()) {
            if (!['stat-memo', 'latest', 'tmp', 'workspaces', 'quarantine'].includes(e.name)) walk(abs);
          } else if (e.isFile() && !['inode-memo', 'item-memo', 'quarantine.stamp'].includes(e.name) && fs.statSync(abs).size > 0) files.push(abs);
          // (The two memos carry a CRC: a flipped one loads empty, so the run only stats and hashes more; nothing for
          // verify to report. test/cache/item-refs.test.ts flips the item memo. The quarantine stamp's content is
          // never read, only its mtime.)
        }
      };
      walk(map.cache);
      files.sort();
      const file = files[Math.floor(rnd() * files.length)]!;
      const size = fs.statSync(file).size;
      const offset = Math.floor(rnd() * size);
      const mask = 1 + Math.floor(rnd() * 255);
      // The one place where a flip changes no data: the name of the checksum field itself.
      const k = fs.readFileSync(file).indexOf('"checksum":');
      const inChecksumName = k >= 0 && offset >= k && offset < k + '"checksum"'.length;
      await flipByte(file, offset, mask);
      const rel = path.relative(map.cache, file);
      const note = `${rel} @${offset} ^0x${mask.toString(16)}${inChecksumName ? ' (in the checksum field name)' : ''}`;
      if (rel.startsWith('experiments/')) return { note, verify: 'none', experiments: true, mayBeHarmless: inChecksumName };
      return { note, mayBeHarmless: inChecksumName };
    },
  };
}
