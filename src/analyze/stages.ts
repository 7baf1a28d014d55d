/**
 * Builds one `StageNode` from one expanded stage instance: interpolates its
 * fields, validates a built-in's `with:` against the stage's params schema
 * (defaults applied), wires input slots, resolves stage references and
 * records which params it reads. Every upstream edge is recorded with the
 * location that caused it (for cycle reports). Does not order stages, infer
 * edges from paths or check outputs across stages (`analyze.ts` does).
 */
import path from 'node:path';
import type { SourceLocation } from '../diagnostic.js';
import type { BuiltinStageNode, CmdStageNode, DepSpec, JsonObject, JsonValue, OutSpec, ParamRead, StageId } from '../pipeline.js';
import type { BuiltinStage } from '../../stages/types.js';
import type { SchemaValidator } from '../config/schema-cache.js';
import type { Result } from '../result.js';
import { locate, locateKey, locateWithin, pathToString, type TreePath } from '../config/source.js';
import { validateValue } from '../config/validate.js';
import { getParam } from '../config/params.js';
import { tokenizeCommand, shellOperators } from '../config/tokenize.js';
import { stringifyValue } from '../interpolate.js';
import { didYouMean } from '../did-you-mean.js';
import { report, isObject, shown, type AnalyzeContext } from './context.js';
import { interpolateString, interpolateTree, type Scope } from './interp.js';
import { escapesWorkspace, isInsideAbs, normalizeRel, unusablePath } from './paths.js';
import type { StageInstance } from './expand.js';

/** Built-in stage definitions by `uses:` name. */
export type StageRegistry = ReadonlyMap<string, BuiltinStage<any>>;

/** Why one stage waits for another, for cycle reports. */
export interface EdgeInfo {
  readonly loc: SourceLocation;
  /** e.g. `needs`, `deps`, `input 'images'`, `${stages.x.out}`, `reads out/x`. */
  readonly via: string;
}

/** What phase 1 learnt about a stage's outputs (needed before any stage references another). */
export interface StageOutputs {
  readonly kind: 'builtin' | 'cmd';
  /** Built-ins: the output directory. */
  readonly outDir?: string;
  /** Cmd stages: declared outs and metrics. */
  readonly outs: readonly OutSpec[];
  readonly metrics: readonly { readonly path: string; readonly loc: SourceLocation }[];
  /** What `${stages.<id>.out}` gives: outDir, or the first out. */
  readonly primaryOut?: string;
}

/** Everything the builders share across stages. */
export interface BuildEnv {
  readonly ctx: AnalyzeContext;
  readonly instances: ReadonlyMap<StageId, StageInstance>;
  readonly groups: ReadonlyMap<string, readonly StageId[]>;
  readonly outputs: ReadonlyMap<StageId, StageOutputs>;
  readonly registry: () => StageRegistry;
  readonly stageSchema: (name: string) => Result<SchemaValidator, string>;
  /** from → to → why. */
  readonly edges: Map<StageId, Map<StageId, EdgeInfo>>;
}

/** Per-instance accumulator of param reads. */
type Reads = Map<string, JsonValue>;

function scopeFor(inst: StageInstance, reads: Reads, field: string, stageOut?: Scope['stageOut']): Scope {
  return { item: inst.item, field, stageOut, onParam: (p, v) => void reads.set(p, v) };
}

function stagePath(inst: StageInstance, ...rest: (string | number)[]): TreePath {
  return ['stages', inst.base, ...rest];
}

/** Phase 1: output locations (interpolated with params and item only). */
export function collectOutputs(ctx: AnalyzeContext, inst: StageInstance, reads: Reads): StageOutputs {
  const def = inst.def;
  if (def.uses !== undefined) {
    let outDir = `out/${inst.id}`;
    if (typeof def.out === 'string') {
      const v = interpolateString(ctx, def.out, stagePath(inst, 'out'), scopeFor(inst, reads, 'out'));
      const p = typeof v === 'string' ? checkOutPath(ctx, v, stagePath(inst, 'out')) : undefined;
      if (p !== undefined) outDir = p;
    }
    return { kind: 'builtin', outDir, outs: [], metrics: [], primaryOut: outDir };
  }
  const outs: OutSpec[] = [];
  (Array.isArray(def.outs) ? def.outs : []).forEach((o, i) => {
    const raw = typeof o === 'string' ? o : isObject(o) && typeof o.path === 'string' ? o.path : undefined;
    if (raw === undefined) return;
    const at = typeof o === 'string' ? stagePath(inst, 'outs', i) : stagePath(inst, 'outs', i, 'path');
    const v = interpolateString(ctx, raw, at, scopeFor(inst, reads, 'outs'));
    const p = typeof v === 'string' ? checkOutPath(ctx, v, at) : undefined;
    if (p === undefined) return;
    const cache = isObject(o) && typeof o.cache === 'boolean' ? o.cache : true;
    outs.push({ path: p, cache, loc: locate(ctx.source, at) });
  });
  const metrics: { path: string; loc: SourceLocation }[] = [];
  (Array.isArray(def.metrics) ? def.metrics : []).forEach((m, i) => {
    if (typeof m !== 'string') return;
    const at = stagePath(inst, 'metrics', i);
    const v = interpolateString(ctx, m, at, scopeFor(inst, reads, 'metrics'));
    const p = typeof v === 'string' ? checkOutPath(ctx, v, at) : undefined;
    if (p !== undefined) metrics.push({ path: p, loc: locate(ctx.source, at) });
  });
  return { kind: 'cmd', outs, metrics, primaryOut: outs[0]?.path };
}

/** `raw` normalised, or undefined (reported) when it cannot name a file at all (`unusablePath`). */
function usablePath(ctx: AnalyzeContext, raw: string, at: TreePath): string | undefined {
  const bad = unusablePath(raw);
  if (bad === undefined) return normalizeRel(raw);
  report(ctx, 'invalid-value', `${pathToString(at)} ${bad}: '${shown(raw)}'`, locate(ctx.source, at));
  return undefined;
}

function checkOutPath(ctx: AnalyzeContext, raw: string, at: TreePath): string | undefined {
  const p = usablePath(ctx, raw, at);
  if (p === undefined) return undefined;
  if (p === '.' || escapesWorkspace(p)) {
    report(ctx, 'invalid-value', `${pathToString(at)} must be a path inside the workspace, got '${shown(raw)}'`, locate(ctx.source, at));
    return undefined;
  }
  return p;
}

/**
 * A dependency path, normalised; undefined (reported) when it cannot name a
 * file. A path outside the workspace must lie in a folder the pipeline lists
 * under `external:` (a dataset elsewhere, `../scripts`): reading outside is a
 * decision the file states, not something a typo or a pasted stage does.
 */
function checkDepPath(ctx: AnalyzeContext, raw: string, at: TreePath): string | undefined {
  const p = usablePath(ctx, raw, at);
  if (p === undefined) return undefined;
  if (escapesWorkspace(p) && !ctx.external.some((root) => isInsideAbs(path.resolve(ctx.workspace, p), root))) {
    const listed = ctx.external.length > 0 ? ` (listed: ${ctx.external.map((r) => `'${r}'`).join(', ')})` : '';
    report(ctx, 'invalid-value', `${pathToString(at)} '${shown(raw)}' is outside the workspace; list its folder under \`external:\` to read it${listed}`, locate(ctx.source, at));
    return undefined;
  }
  return p;
}

/**
 * Resolves a stage name to ids: an exact id, or (when `allowGroup`) every
 * expansion of a foreach/matrix stage. Reports unknown or ambiguous names.
 */
export function resolveStageRef(env: BuildEnv, name: string, loc: SourceLocation, allowGroup: boolean, what: string): StageId[] | undefined {
  if (env.instances.has(name as StageId)) return [name as StageId];
  const group = env.groups.get(name);
  if (group) {
    if (allowGroup) return [...group];
    const shown = group.slice(0, 3).join("', '");
    report(env.ctx, 'unknown-stage', `${what} '${name}' is ambiguous: it expands to ${group.length} stages ('${shown}'${group.length > 3 ? ', …' : ''}); name one of them`, loc);
    return undefined;
  }
  const candidates = [...env.instances.keys(), ...env.groups.keys()];
  const s = didYouMean(name, candidates);
  report(env.ctx, 'unknown-stage', `${what} '${name}' is not a stage in this pipeline${s ? `; did you mean '${s}'?` : ''}`, loc);
  return undefined;
}

function addEdge(env: BuildEnv, from: StageId, to: StageId, info: EdgeInfo): void {
  let m = env.edges.get(from);
  if (!m) env.edges.set(from, (m = new Map()));
  if (!m.has(to)) m.set(to, info);
}

function stageOutResolver(env: BuildEnv, inst: StageInstance): Scope['stageOut'] {
  return (name, loc) => {
    const ids = resolveStageRef(env, name, loc, false, 'stage');
    if (!ids) return undefined;
    const target = ids[0];
    const out = env.outputs.get(target)?.primaryOut;
    if (out === undefined) {
      report(env.ctx, 'unknown-output', `'\${stages.${name}.out}': stage '${name}' declares no outs`, loc);
      return undefined;
    }
    addEdge(env, inst.id, target, { loc, via: `\${stages.${name}.out}` });
    return out;
  };
}

/** Fields both kinds share: needs, env, resources, interrupt, description. */
function commonFields(env: BuildEnv, inst: StageInstance, reads: Reads) {
  const { ctx } = env;
  const def = inst.def;
  (Array.isArray(def.needs) ? def.needs : []).forEach((n, i) => {
    if (typeof n !== 'string') return;
    const at = stagePath(inst, 'needs', i);
    const v = interpolateString(ctx, n, at, scopeFor(inst, reads, 'needs'));
    if (typeof v !== 'string') return;
    const loc = locate(ctx.source, at);
    for (const id of resolveStageRef(env, v, loc, true, 'needs:') ?? []) addEdge(env, inst.id, id, { loc, via: 'needs' });
  });
  const envVars: Record<string, string> = {};
  if (isObject(def.env)) {
    for (const [k, raw] of Object.entries(def.env)) {
      const v = interpolateTree(ctx, raw, stagePath(inst, 'env', k), scopeFor(inst, reads, 'env', stageOutResolver(env, inst)));
      if (v !== undefined) envVars[k] = stringifyValue(v);
    }
  }
  const resources: Record<string, number> = {};
  if (isObject(def.resources)) for (const [k, v] of Object.entries(def.resources)) if (typeof v === 'number') resources[k] = v;
  return {
    env: envVars,
    resources,
    interrupt: typeof def.interrupt === 'boolean' ? def.interrupt : true,
    ...(typeof def.description === 'string' ? { description: def.description } : {}),
  };
}

function finishReads(reads: Reads): ParamRead[] {
  return [...reads].map(([path, value]) => ({ path, value })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A node without `needs` (filled once all edges are known). */
export type PartialNode = Omit<BuiltinStageNode, 'needs'> | Omit<CmdStageNode, 'needs'>;

/** Phase 2 for a built-in stage. Returns undefined when the stage is unusable (diagnostics recorded). */
export function buildBuiltin(env: BuildEnv, inst: StageInstance, reads: Reads): PartialNode | undefined {
  const { ctx } = env;
  const def = inst.def;
  if (typeof def.uses !== 'string') return undefined; // schema reported it
  const usesLoc = locate(ctx.source, stagePath(inst, 'uses'));
  const common = commonFields(env, inst, reads);
  const registry = env.registry();
  const stage = registry.get(def.uses);
  if (!stage) {
    const s = didYouMean(def.uses, registry.keys());
    report(ctx, 'unknown-builtin', `unknown built-in stage '${def.uses}'${s ? `; did you mean '${s}'?` : ` (built-ins: ${[...registry.keys()].sort().join(', ')})`}`, usesLoc);
    return undefined;
  }
  // with: interpolate first (types preserved), then validate with defaults applied.
  // Failed references keep their text so the rest of with: is still checked (unknown keys, types).
  const withRaw = def.with === undefined ? {} : def.with;
  const withPath = stagePath(inst, 'with');
  const failedRefs: TreePath[] = [];
  const interpolated = interpolateTree(ctx, withRaw, withPath, scopeFor(inst, reads, 'with', stageOutResolver(env, inst)), failedRefs);
  let withValue: JsonObject | undefined;
  if (interpolated !== undefined && isObject(interpolated)) {
    const validator = env.stageSchema(stage.name);
    if (!validator.ok) {
      report(ctx, 'invalid-value', `built-in stage '${stage.name}' has an unusable params schema: ${validator.error}`, usesLoc);
    } else {
      const data = structuredClone(interpolated);
      const ignore = failedRefs.map((p) => p.slice(withPath.length));
      const ds = validateValue(validator.value, data, { source: ctx.source, basePath: withPath, rootName: `stages.${inst.base}.with` }, ignore);
      if (ds.length === 0 && failedRefs.length === 0) withValue = data;
      else ctx.diagnostics.push(...ds);
    }
  }
  // Input slots.
  const inputs: Record<string, StageId> = {};
  const known = [...stage.inputs, ...(stage.optionalInputs ?? [])];
  const explicit = isObject(def.inputs) ? def.inputs : {};
  for (const [slot, raw] of Object.entries(explicit)) {
    if (!known.includes(slot)) {
      const s = didYouMean(slot, known);
      const list = known.length > 0 ? ` (its slots: ${known.join(', ')})` : ' (it takes no inputs)';
      report(ctx, 'unknown-key', `built-in '${stage.name}' has no input slot '${slot}'${s ? `; did you mean '${s}'?` : list}`, locateKey(ctx.source, stagePath(inst, 'inputs', slot)));
      continue;
    }
    if (typeof raw !== 'string') continue;
    const at = stagePath(inst, 'inputs', slot);
    const v = interpolateString(ctx, raw, at, scopeFor(inst, reads, 'inputs'));
    if (typeof v !== 'string') continue;
    const loc = locate(ctx.source, at);
    const ids = resolveStageRef(env, v, loc, false, `input '${slot}':`);
    if (!ids) continue;
    inputs[slot] = ids[0];
    addEdge(env, inst.id, ids[0], { loc, via: `input '${slot}'` });
  }
  for (const slot of stage.inputs) {
    if (slot in explicit) continue;
    if (env.instances.has(slot as StageId) && slot !== inst.id) {
      inputs[slot] = slot as StageId;
      addEdge(env, inst.id, slot as StageId, { loc: usesLoc, via: `input '${slot}' (default)` });
    } else if (env.groups.has(slot)) {
      report(ctx, 'missing-input', `built-in '${stage.name}' needs input '${slot}', and stage '${slot}' expands to several stages; map one with inputs: {${slot}: <stage id>}`, usesLoc);
    } else {
      const near = didYouMean(slot, [...env.instances.keys(), ...env.groups.keys()].filter((id) => id !== inst.id));
      const fix = near ? `map it with inputs: {${slot}: ${near}}?` : `add one or map it with inputs: {${slot}: <stage>}`;
      report(ctx, 'missing-input', `built-in '${stage.name}' needs input '${slot}', but there is no stage named '${slot}'; ${fix}`, usesLoc);
    }
  }
  for (const slot of stage.optionalInputs ?? []) {
    if (slot in explicit || slot === inst.id || !env.instances.has(slot as StageId)) continue;
    inputs[slot] = slot as StageId;
    addEdge(env, inst.id, slot as StageId, { loc: usesLoc, via: `input '${slot}' (default)` });
  }
  if (withValue === undefined) return undefined;
  const fileDeps = stage.fileDeps?.(withValue) ?? [];
  const unusable = fileDeps.find((p) => unusablePath(p) !== undefined);
  if (unusable !== undefined) {
    report(ctx, 'invalid-value', `stages.${inst.base}.with names a file path that ${unusablePath(unusable)}: '${shown(unusable)}'`, locate(ctx.source, withPath));
    return undefined;
  }
  const deps: DepSpec[] = fileDeps.map((p) => ({ kind: 'path', path: normalizeRel(p), loc: usesLoc }));
  const resources = { ...(stage.resources?.(withValue) ?? {}), ...common.resources };
  return {
    kind: 'builtin',
    id: inst.id,
    loc: locateKey(ctx.source, ['stages', inst.base]),
    uses: stage.name,
    version: stage.version,
    with: withValue,
    inputs,
    outDir: env.outputs.get(inst.id)!.outDir!,
    deps,
    params: finishReads(reads),
    env: common.env,
    resources,
    interrupt: common.interrupt,
    ...(common.description !== undefined ? { description: common.description } : {}),
  };
}

/** Phase 2 for a command stage. */
export function buildCmd(env: BuildEnv, inst: StageInstance, reads: Reads): PartialNode | undefined {
  const { ctx } = env;
  const def = inst.def;
  const common = commonFields(env, inst, reads);
  const stageOut = stageOutResolver(env, inst);
  let failed = false;
  // argv: a string is split into tokens BEFORE interpolation, so values never split or inject.
  const argv: string[] = [];
  if (typeof def.cmd === 'string') {
    const at = stagePath(inst, 'cmd');
    const toks = tokenizeCommand(def.cmd);
    if (!toks.ok) {
      report(ctx, 'invalid-value', toks.error.message, locateWithin(ctx.source, at, def.cmd.slice(toks.error.offset)));
      failed = true;
    } else {
      for (const t of toks.value) {
        if (!t.quoted && shellOperators.has(t.text)) {
          report(ctx, 'invalid-value', `'${t.text}' in cmd: commands run without a shell, so it would be passed as an argument; quote it to mean that, or use cmd: [sh, -c, '...']`, locateWithin(ctx.source, at, t.text));
          failed = true;
          continue;
        }
        const v = interpolateString(ctx, t.text, at, scopeFor(inst, reads, 'cmd', stageOut));
        if (v === undefined) failed = true;
        else argv.push(stringifyValue(v));
      }
      if (toks.value.length === 0 && def.cmd !== '') {
        report(ctx, 'invalid-value', `stages.${inst.base}.cmd is empty`, locate(ctx.source, at));
        failed = true;
      }
    }
  } else if (Array.isArray(def.cmd)) {
    def.cmd.forEach((a, i) => {
      if (typeof a !== 'string') {
        if (a !== null && typeof a !== 'object') argv.push(String(a));
        return;
      }
      const v = interpolateString(ctx, a, stagePath(inst, 'cmd', i), scopeFor(inst, reads, 'cmd', stageOut));
      if (v === undefined) failed = true;
      else argv.push(stringifyValue(v));
    });
  } else return undefined; // schema reported it
  let cwd = '.';
  if (typeof def.cwd === 'string') {
    const at = stagePath(inst, 'cwd');
    const v = interpolateString(ctx, def.cwd, at, scopeFor(inst, reads, 'cwd'));
    if (typeof v === 'string') {
      const bad = unusablePath(v);
      cwd = normalizeRel(v);
      if (bad !== undefined || escapesWorkspace(cwd)) {
        report(ctx, 'invalid-value', `${pathToString(at)} must be a directory inside the workspace, got '${shown(v)}'${bad !== undefined ? ` (it ${bad})` : ''}`, locate(ctx.source, at));
        failed = true;
      }
    }
  }
  // deps
  const deps: DepSpec[] = [];
  (Array.isArray(def.deps) ? def.deps : []).forEach((d, i) => {
    if (typeof d === 'string') {
      const at = stagePath(inst, 'deps', i);
      const v = interpolateString(ctx, d, at, scopeFor(inst, reads, 'deps', stageOut));
      const p = typeof v === 'string' ? checkDepPath(ctx, v, at) : undefined;
      if (p !== undefined) deps.push({ kind: 'path', path: p, loc: locate(ctx.source, at) });
      return;
    }
    if (!isObject(d) || typeof d.stage !== 'string') return;
    const at = stagePath(inst, 'deps', i, 'stage');
    const name = interpolateString(ctx, d.stage, at, scopeFor(inst, reads, 'deps'));
    if (typeof name !== 'string') return;
    const loc = locate(ctx.source, at);
    const ids = resolveStageRef(env, name, loc, typeof d.output !== 'string', 'dep');
    if (!ids) return;
    for (const id of ids) {
      let output: string | undefined;
      if (typeof d.output === 'string') {
        output = checkOutput(env, id, d.output, stagePath(inst, 'deps', i, 'output'));
        if (output === undefined) continue;
      }
      deps.push({ kind: 'stage', stage: id, ...(output !== undefined ? { output } : {}), loc });
      addEdge(env, inst.id, id, { loc, via: 'deps' });
    }
  });
  // params: listed paths must exist.
  (Array.isArray(def.params) ? def.params : []).forEach((p, i) => {
    if (typeof p !== 'string') return;
    const r = getParam(ctx.params, p);
    if (r.found) reads.set(p, r.value);
    else {
      const where = r.existing === '' ? 'params' : `params.${r.existing}`;
      report(ctx, 'unknown-param', `unknown param '${p}': ${where} has no key '${r.missing}'${r.suggestion ? `; did you mean '${r.suggestion}'?` : ''}`, locate(ctx.source, stagePath(inst, 'params', i)));
    }
  });
  if (failed) return undefined;
  const o = env.outputs.get(inst.id)!;
  return {
    kind: 'cmd',
    id: inst.id,
    loc: locateKey(ctx.source, ['stages', inst.base]),
    argv,
    cwd,
    outs: o.outs,
    metrics: o.metrics.map((m) => m.path),
    deps,
    params: finishReads(reads),
    env: common.env,
    resources: common.resources,
    interrupt: common.interrupt,
    ...(common.description !== undefined ? { description: common.description } : {}),
  };
}

/** Checks `{stage, output}`: for a cmd stage the output must be one of its outs/metrics (or inside an out). */
function checkOutput(env: BuildEnv, id: StageId, raw: string, at: TreePath): string | undefined {
  const out = normalizeRel(raw);
  const o = env.outputs.get(id);
  if (!o || o.kind === 'builtin') return out; // built-in outputs are files inside its outDir; not known statically
  const declared = [...o.outs.map((x) => x.path), ...o.metrics.map((m) => m.path)];
  if (declared.some((d) => out === d || out.startsWith(`${d}/`))) return out;
  const s = didYouMean(out, declared);
  const list = declared.length > 0 ? ` (its outputs: ${declared.join(', ')})` : ' (it declares no outs)';
  report(env.ctx, 'unknown-output', `stage '${id}' has no output '${raw}'${s ? `; did you mean '${s}'?` : list}`, locate(env.ctx.source, at));
  return undefined;
}
