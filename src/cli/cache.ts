/**
 * `pipeline cache verify` and `pipeline cache gc [--keep-last N]`.
 *
 * verify: re-hashes every object; corrupt ones are quarantined (so they are
 * never restored: their stages recompute), records pointing at missing objects
 * are listed; downloaded weights files that no longer match their sha256 are
 * removed (downloaded again when needed). Exit 1 when anything was wrong, 0
 * when clean.
 *
 * gc: deletes records and objects not referenced by any workspace state in
 * the cache, nor by the last N experiments (default 10), nor by backups;
 * objects younger than `--grace` seconds (default 1 h) stay. Then prunes the
 * per-item caches (`cache/items/`, see cache/item-gc.ts): entries no cache
 * object shares and nothing used for `--items-max-age` days (default 30).
 *
 * The cache dir: `--cache`, else PIPELINE_CACHE, else the pipeline file's
 * `cache:` (when `[file]` or ./pipeline.yaml exists), else ./cache.
 * It takes no workspace lock (gc takes the cache's own gc lock).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CliIO, CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { parseArgs } from './args.js';
import { loadOrReport, pipelineFileFrom, usageError } from './common.js';

const HELP = `usage: pipeline cache verify [file | -f FILE] [--cache DIR] [--json]
       pipeline cache gc [file | -f FILE] [--keep-last N] [--grace SECONDS] [--items-max-age DAYS] [--cache DIR] [--json]

verify  re-hash every cached object; quarantine corrupt ones (exit 1 if any problem)
gc      delete what no workspace and none of the last N experiments (default 10) reference;
        objects written in the last --grace seconds (default 3600) are kept even so, and
        whatever a run in progress wrote since it started, whatever --grace says (it may be
        about to reference it);
        per-image cache entries (cache/items/) go when no cached output shares them and
        nothing wrote, read or linked them for --items-max-age days (default 30)
`;

/** Default `--grace`: unreferenced objects younger than this are kept (a concurrent run may be about to reference them). */
const DEFAULT_GRACE_S = 3600;

const flagSpec = {
  cache: { type: 'string' },
  'keep-last': { type: 'number', min: 0 },
  grace: { type: 'number', min: 0 },
  'items-max-age': { type: 'number', min: 0 },
  file: { type: 'string', short: 'f' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function cacheDirFor(io: CliIO, flag: string | undefined, file: string | undefined): Promise<{ ok: true; dir: string } | { ok: false; code: number }> {
  if (flag) return { ok: true, dir: path.resolve(io.cwd, flag) };
  if (io.env.PIPELINE_CACHE) return { ok: true, dir: path.resolve(io.cwd, io.env.PIPELINE_CACHE) };
  const pf = path.resolve(io.cwd, file ?? 'pipeline.yaml');
  if (file !== undefined || fs.existsSync(pf)) {
    const loaded = await loadOrReport(io, pf);
    if (!loaded.ok) return loaded;
    const { resolveCacheDir } = await import('../runner.js');
    return { ok: true, dir: resolveCacheDir(loaded.graph, undefined, io.env, io.cwd) };
  }
  return { ok: true, dir: path.resolve(io.cwd, 'cache') };
}

export const main: CommandMain = async (argv, io) => {
  const p = parseArgs(argv, flagSpec);
  if (!p.ok) return usageError(io, 'cache', p.error);
  const [sub, file, ...extra] = p.value.positionals;
  if (p.value.flags.help || sub === undefined) {
    (sub === undefined && !p.value.flags.help ? io.stderr : io.stdout).write(HELP);
    return sub === undefined && !p.value.flags.help ? ExitCode.usage : ExitCode.ok;
  }
  if (extra.length > 0) return usageError(io, 'cache', `unexpected arguments: ${extra.join(' ')}`);
  if (sub !== 'verify' && sub !== 'gc') return usageError(io, 'cache', `unknown subcommand "${sub}" (expected verify or gc)`);
  const picked = pipelineFileFrom(io, file, p.value.flags.file);
  if (!picked.ok) return usageError(io, 'cache', picked.error);
  const where = await cacheDirFor(io, p.value.flags.cache as string | undefined, file ?? (p.value.flags.file as string | undefined));
  if (!where.ok) return where.code;
  if (!fs.existsSync(where.dir)) {
    io.stderr.write(`pipeline cache: no cache at ${where.dir}\n`);
    return ExitCode.ok;
  }
  const { CacheStore, liveRunGraceMs } = await import('../cache/store.js');
  const store = await CacheStore.open(where.dir);
  const json = p.value.flags.json === true;
  if (sub === 'verify') {
    const r = await store.verify();
    const corruptItems = r.corruptItems ?? [];
    // Downloaded backbone weights (`<cache>/weights/<sha256>/<file>`) are cache content too.
    const { verifyWeightsCache } = await import('../../stages/ml/weights/download.js');
    const weights = await verifyWeightsCache(where.dir);
    const bad = r.corrupt.length + r.missing.length + r.badRecords.length + corruptItems.length + weights.removed.length;
    if (json) io.stdout.write(`${JSON.stringify({ cache: where.dir, ...r, weights: { checked: weights.good.length + weights.removed.length, removed: weights.removed }, ok: bad === 0 })}\n`);
    else {
      const lines = [`verified ${r.objects} object${r.objects === 1 ? '' : 's'} in ${where.dir}`];
      for (const c of r.corrupt) lines.push(`corrupt object ${c} (moved to quarantine; stages using it will recompute)`);
      for (const m of r.missing) lines.push(`record ${m.key.slice(0, 12)} of stage ${m.stageId} is missing object ${m.sha256.slice(0, 12)} for ${m.path} (the stage will recompute)`);
      for (const b of r.badRecords) lines.push(`unreadable record ${b} (moved to quarantine)`);
      for (const i of corruptItems) lines.push(`corrupt item-cache entry ${i} (moved to quarantine; that image will be recomputed)`);
      for (const w of weights.removed) lines.push(`corrupt weights file ${path.relative(where.dir, w)} (removed; it is downloaded again when next needed)`);
      lines.push(bad === 0 ? 'cache is clean' : `${bad} problem${bad === 1 ? '' : 's'} found`);
      io.stdout.write(`${lines.join('\n')}\n`);
    }
    return bad === 0 ? ExitCode.ok : ExitCode.stageFailed;
  }
  const [{ gcKeepKeys }, { gcItems, DEFAULT_ITEMS_MAX_AGE_DAYS }] = await Promise.all([import('../run/gc.js'), import('../cache/item-gc.js')]);
  const keepLast = typeof p.value.flags['keep-last'] === 'number' ? p.value.flags['keep-last'] : 10;
  const keep = await gcKeepKeys(where.dir, { keepLast });
  const graceS = typeof p.value.flags.grace === 'number' ? p.value.flags.grace : DEFAULT_GRACE_S;
  const r = await store.gc(keep, { graceMs: graceS * 1000 });
  // After the objects: an entry whose last sharing object just went is unshared now (its age restarts; module doc).
  const itemsDays = typeof p.value.flags['items-max-age'] === 'number' ? p.value.flags['items-max-age'] : DEFAULT_ITEMS_MAX_AGE_DAYS;
  // Item entries a run in progress wrote are kept as its objects are (store.gc): whatever the grace.
  const items = await gcItems(where.dir, { maxAgeMs: itemsDays * 86_400_000, graceMs: Math.max(graceS * 1000, (await liveRunGraceMs(where.dir)).graceMs) });
  if (json) io.stdout.write(`${JSON.stringify({ cache: where.dir, kept: keep.size, graceSeconds: graceS, ...r, items: { maxAgeDays: itemsDays, ...items } })}\n`);
  else {
    const lines = [`removed ${r.removedRecords} record${r.removedRecords === 1 ? '' : 's'} and ${r.removedObjects} object${r.removedObjects === 1 ? '' : 's'} (${(r.freedBytes / 2 ** 20).toFixed(1)} MiB); kept ${keep.size} key${keep.size === 1 ? '' : 's'}`];
    const gone = items.removedEntries + items.removedTemp;
    const kept = items.keptShared + items.keptRecent;
    // Only a cache that has item caches (built-in stages ran) gets the line.
    if (items.entries + items.removedTemp > 0) {
      const unused = `unused for ${itemsDays} day${itemsDays === 1 ? '' : 's'}`;
      lines.push(`removed ${gone} item-cache entr${gone === 1 ? 'y' : 'ies'} (${(items.freedBytes / 2 ** 20).toFixed(1)} MiB) ${unused}; kept ${kept} (${items.keptShared} shared with cached outputs, ${items.keptRecent} used recently)`);
    }
    // Records went but their objects may have stayed for the grace period: say so, or the freed space looks wrong.
    if (r.liveRuns > 0) lines.push(`${r.liveRuns} run${r.liveRuns === 1 ? '' : 's'} in progress in this cache: what ${r.liveRuns === 1 ? 'it' : 'they'} wrote since starting is kept, whatever --grace says`);
    if (r.removedRecords > 0 && graceS > 0) lines.push(`objects written in the last ${graceS >= 3600 && graceS % 3600 === 0 ? `${graceS / 3600} h` : `${graceS} s`} are kept until a later gc (a run may be using them); --grace 0 removes them now`);
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return ExitCode.ok;
};
