/**
 * `pipeline explain STAGE [file] [--cache DIR] [--json]`: exactly what changed
 * for one stage since its last run in this workspace: each param path
 * (old → new), input path (modified / added / removed), upstream stage whose
 * outputs changed, command or built-in version, env variable and runtime
 * fact; then what the next run will do with it.
 *
 * When an upstream stage has to run first, the stage's own changes are still
 * listed (upstream outputs are taken as unchanged until they rerun).
 * Read-only apart from the hash memo. No lock.
 */
import type { CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { parseArgs } from './args.js';
import { loadOrReport, pipelineFileFrom, usageError, useColor } from './common.js';
import type { StageId } from '../pipeline.js';
import type { FingerprintChange } from '../fingerprint.js';
import { pairWithEcho } from '../change-echo.js';

const HELP = `usage: pipeline explain STAGE [file | -f FILE] [--cache DIR] [--json]\n`;

export const main: CommandMain = async (argv, io) => {
  const p = parseArgs(argv, { cache: { type: 'string' }, json: { type: 'boolean' }, file: { type: 'string', short: 'f' }, help: { type: 'boolean', short: 'h' } });
  if (!p.ok) return usageError(io, 'explain', p.error);
  if (p.value.flags.help) {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  const [stageArg, fileArg, ...extra] = p.value.positionals;
  if (stageArg === undefined) return usageError(io, 'explain', 'which stage? e.g. pipeline explain train');
  if (extra.length > 0) return usageError(io, 'explain', `unexpected arguments: ${extra.join(' ')}`);
  const file = pipelineFileFrom(io, fileArg, p.value.flags.file);
  if (!file.ok) return usageError(io, 'explain', file.error);
  const loaded = await loadOrReport(io, file.file);
  if (!loaded.ok) return loaded.code;
  const graph = loaded.graph;
  const [{ openEngine, resolveCacheDir }, plan, { makeStyle }] = await Promise.all([import('../runner.js'), import('../plan.js'), import('../log/human.js')]);
  const sel = plan.selectStages(graph, [stageArg]);
  if (!sel.ok) return usageError(io, 'explain', sel.error.join('\n'));
  if (!graph.stages.has(stageArg as StageId)) return usageError(io, 'explain', `"${stageArg}" expands to several stages (${sel.value.filter((s) => s.startsWith(`${stageArg}@`)).join(', ')}); name one`);
  const id = stageArg as StageId;
  const eng = await openEngine(graph, resolveCacheDir(graph, p.value.flags.cache as string | undefined, io.env, io.cwd));
  const entries = await plan.planStages(eng.deps, sel.value, new Set());
  const entry = entries.find((e) => e.stage === id)!;

  // For a stage waiting on upstream runs, diff its own fingerprint with upstream outputs as last recorded.
  let changes: readonly FingerprintChange[] = entry.changes;
  const lastKey = eng.state.get(id)?.key;
  const lastRec = lastKey ? await eng.store.readRecord(lastKey, { checkObjects: false }) : undefined;
  if (entry.action === 'unknown' && lastRec) {
    const known = new Map<StageId, string>();
    const overlay: import('../plan.js').OutputOverlay = new Map();
    for (const e of entries) {
      if (e.record) known.set(e.stage, e.record.outputs.hash);
      if (e.action === 'restore' && e.record) plan.addToOverlay(overlay, graph.stages.get(e.stage)!, e.record);
    }
    const node = graph.stages.get(id)!;
    for (const u of node.needs) if (!known.has(u)) known.set(u, lastRec.fingerprint.upstream[u] ?? 'unknown');
    const { diffFingerprints } = await import('../fingerprint.js');
    changes = diffFingerprints(lastRec.fingerprint, await plan.fingerprintStage(node, eng.deps, known, overlay));
  }
  await eng.hasher.save().catch(() => {});
  changes = plan.sortChanges(changes);

  const verdict =
    entry.action === 'fresh'
      ? 'fresh: nothing changed since its last run'
      : entry.action === 'restore'
        ? 'restorable: the next run restores its outputs from the cache'
        : entry.action === 'run'
          ? 'stale: the next run executes it'
          : `will run after ${entry.waitingFor!.join(', ')} (its key depends on their new outputs)`;
  if (p.value.flags.json) {
    io.stdout.write(`${JSON.stringify({ stage: id, action: entry.action, verdict, ...(entry.key ? { key: entry.key } : {}), ...(lastKey ? { lastKey } : {}), ...(lastRec ? { lastRunAt: lastRec.startedAt } : {}), changes: changes.map((c) => ({ ...c, text: plan.describeChange(c) })) })}\n`);
    return ExitCode.ok;
  }
  const st = makeStyle(useColor(io, io.stdout));
  const lines = [`${st.bold(id)}: ${verdict}`];
  if (!lastKey) lines.push('  never run in this workspace');
  else if (!lastRec) lines.push(`  its last run (key ${lastKey.slice(0, 12)}) is no longer in the cache; changes cannot be listed`);
  else {
    lines.push(`  last run ${lastRec.startedAt} (key ${lastKey.slice(0, 12)})`);
    if (changes.length === 0 && entry.action !== 'fresh') {
      lines.push(entry.action === 'unknown' ? '  nothing of its own changed; only upstream stages will rerun' : '  its inputs are unchanged; its outputs in the workspace were modified or removed');
    }
    for (const { change: c, seenAs } of pairWithEcho(changes)) {
      lines.push(`  ${plan.describeChange(c)}`);
      if (seenAs.length > 0) lines.push(`    (the stage sees it as ${seenAs.join(', ')})`);
      if (c.kind === 'input') for (const l of await filesChanged(eng, lastRec, c.path)) lines.push(`    ${l}`);
    }
  }
  if (entry.action === 'unknown') for (const u of entry.waitingFor ?? []) lines.push(`  upstream stage ${u} will run first`);
  io.stdout.write(`${lines.join('\n')}\n`);
  return ExitCode.ok;
};

/** For a directory/glob dependency: which files inside it changed since the recorded run (at most 10 per kind). */
async function filesChanged(eng: import('../runner.js').EngineHandles, rec: import('../cache/store.js').RunRecord, dep: string): Promise<string[]> {
  const sha = rec.inputListings?.[dep];
  if (!sha) return [];
  let before: [string, string][];
  try {
    const { readFile } = await import('node:fs/promises');
    before = JSON.parse(await readFile(eng.store.objectPath(sha), 'utf8')) as [string, string][];
  } catch {
    return [];
  }
  const now = await eng.hasher.listDep(eng.deps.graph.workspace, dep);
  const { diffListings } = await import('../hash/file-hasher.js');
  const d = diffListings(before, now.entries);
  const show = (label: string, xs: readonly string[]): string[] =>
    xs.length === 0 ? [] : [`${label}: ${xs.slice(0, 10).join(', ')}${xs.length > 10 ? ` (and ${xs.length - 10} more)` : ''}`];
  return [...show('modified', d.modified), ...show('added', d.added), ...show('removed', d.removed)];
}
