/**
 * Semantic analysis: a schema-checked pipeline config → `PipelineGraph`.
 *
 * Expands foreach/matrix, interpolates `${...}`, validates built-in `with:`
 * blocks, resolves every stage reference (needs, deps, inputs,
 * `${stages.x.out}`), infers edges from paths read inside other stages'
 * outputs, rejects overlapping outputs and cycles, and orders the stages
 * topologically (ties by file order). Every problem found is reported, each
 * located; analysis keeps going past errors.
 *
 * It does not read files (the loader passes the parsed source, the params and
 * the registry), validate the pipeline schema, or decide freshness.
 */
import path from 'node:path';
import type { Diagnostic, SourceLocation } from './diagnostic.js';
import type { DepSpec, JsonObject, JsonValue, PipelineGraph, StageId, StageNode } from './pipeline.js';
import { locate, locateKey, type YamlSource } from './config/source.js';
import type { SchemaValidator } from './config/schema-cache.js';
import { ok, err, type Result } from './result.js';
import { dedupeDiagnostics, isObject, report, shown, type AnalyzeContext } from './analyze/context.js';
import { expandStages, type StageInstance } from './analyze/expand.js';
import { buildBuiltin, buildCmd, collectOutputs, type BuildEnv, type EdgeInfo, type PartialNode, type StageOutputs, type StageRegistry } from './analyze/stages.js';
import { depTouchesOutput, escapesWorkspace, isGlob, isInside, normalizeRel, unusablePath } from './analyze/paths.js';
import { interpolateString } from './analyze/interp.js';
import { dagFromEdges } from './graph/dag.js';
import { findCycles } from './graph/cycles.js';
import { topoSort } from './graph/topo.js';

export type { StageRegistry } from './analyze/stages.js';

/** What `analyzePipeline` needs; all of it already loaded. */
export interface AnalyzeInput {
  readonly source: YamlSource;
  /** The pipeline document as JSON (schema errors, if any, were already reported; analysis is defensive). */
  readonly config: JsonObject;
  /** Merged params (inline, params files, overrides). */
  readonly params: JsonObject;
  readonly workspace: string;
  readonly configFiles: readonly string[];
  readonly cacheDir?: string;
  /** Built-ins; called only if some stage `uses:` one (importing stage modules can be slow). */
  readonly registry: () => StageRegistry;
  /** The params-schema validator of a built-in, by name. */
  readonly stageSchema: (name: string) => Result<SchemaValidator, string>;
}

/**
 * The `external:` folders: interpolated with params (so `-S source=/data/x` can move a
 * dataset and its folder together), normalised; a folder inside the workspace or one
 * that cannot name a path is reported.
 */
function externalRoots(ctx: AnalyzeContext, raw: JsonValue | undefined): string[] {
  if (!Array.isArray(raw)) return [];
  const roots: string[] = [];
  raw.forEach((item, i) => {
    if (typeof item !== 'string') return; // the schema reported it
    const at = ['external', i];
    const v = interpolateString(ctx, item, at, { onParam: () => {}, field: 'external' });
    if (typeof v !== 'string') return;
    const bad = unusablePath(v);
    const p = normalizeRel(v);
    if (bad !== undefined || !escapesWorkspace(p)) {
      const why = bad !== undefined ? `it ${bad}` : 'it is inside the workspace, where every dependency is allowed anyway';
      report(ctx, 'invalid-value', `external[${i}] must name a folder outside the workspace, got '${shown(v)}' (${why})`, locate(ctx.source, at));
      return;
    }
    roots.push(path.resolve(ctx.workspace, p));
  });
  return roots;
}

/** Analyses the pipeline; all diagnostics found, or the graph. */
export function analyzePipeline(input: AnalyzeInput): Result<PipelineGraph, Diagnostic[]> {
  const ctx: AnalyzeContext = { source: input.source, params: input.params, diagnostics: [], workspace: input.workspace, external: [] };
  (ctx.external as string[]).push(...externalRoots(ctx, input.config.external));
  const stagesRaw = isObject(input.config.stages) ? input.config.stages : {};
  const { instances, groups } = expandStages(ctx, stagesRaw);
  const byId = new Map<StageId, StageInstance>(instances.map((i) => [i.id, i]));

  const reads = new Map<StageId, Map<string, JsonValue>>(instances.map((i) => [i.id, new Map()]));
  const outputs = new Map<StageId, StageOutputs>();
  for (const inst of instances) outputs.set(inst.id, inst.broken ? { kind: inst.def.uses !== undefined ? 'builtin' : 'cmd', outs: [], metrics: [] } : collectOutputs(ctx, inst, reads.get(inst.id)!));
  checkOverlappingOutputs(ctx, instances, outputs);

  const env: BuildEnv = { ctx, instances: byId, groups, outputs, registry: memo(input.registry), stageSchema: input.stageSchema, edges: new Map() };
  const partial = new Map<StageId, PartialNode>();
  for (const inst of instances) {
    if (inst.broken) continue;
    const node = inst.def.uses !== undefined ? buildBuiltin(env, inst, reads.get(inst.id)!) : buildCmd(env, inst, reads.get(inst.id)!);
    if (node) partial.set(inst.id, node);
  }
  inferPathEdges(env, partial);

  const dag = dagFromEdges(
    [...env.edges].flatMap(([from, tos]) => [...tos.keys()].map((to) => [from, to] as const)),
    instances.map((i) => i.id),
  );
  const cycles = findCycles(dag);
  if (cycles.length > 0) {
    const stageLocs = new Map(instances.map((i) => [i.id, locateKey(ctx.source, ['stages', i.base])]));
    for (const cycle of cycles) reportCycle(ctx, cycle, env.edges, stageLocs);
  }

  if (ctx.diagnostics.length > 0) return err(dedupeDiagnostics(ctx.diagnostics));
  const order = topoSort(dag);
  if (!order) throw new Error('analyzePipeline: cycle not reported'); // findCycles reports every cycle
  const stages = new Map<StageId, StageNode>();
  for (const id of order) {
    const node = partial.get(id)!;
    const needs = [...(env.edges.get(id)?.keys() ?? [])].sort();
    stages.set(id, { ...node, needs } as StageNode);
  }
  return ok({
    name: typeof input.config.name === 'string' ? input.config.name : '',
    file: input.source.file,
    workspace: input.workspace,
    ...(ctx.external.length > 0 ? { external: ctx.external } : {}),
    params: input.params,
    stages,
    configFiles: input.configFiles,
    ...(input.cacheDir !== undefined ? { cacheDir: input.cacheDir } : {}),
  });
}

function memo<T>(f: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: f() }).value;
}

interface OwnedOutput {
  readonly path: string;
  readonly stage: StageId;
  readonly loc: SourceLocation;
}

function ownedOutputs(ctx: AnalyzeContext, inst: StageInstance, o: StageOutputs): OwnedOutput[] {
  if (o.kind === 'builtin') {
    if (o.outDir === undefined) return [];
    const path: (string | number)[] = typeof inst.def.out === 'string' ? ['stages', inst.base, 'out'] : ['stages', inst.base, 'uses'];
    return [{ path: o.outDir!, stage: inst.id, loc: locate(ctx.source, path) }];
  }
  return [...o.outs.map((x) => ({ path: x.path, stage: inst.id, loc: x.loc! })), ...o.metrics.map((m) => ({ path: m.path, stage: inst.id, loc: m.loc }))];
}

/** Sort key that puts `a/b` right after `a` (and before `a-b`), so nested paths are contiguous. */
function nestedOrderKey(p: string): string {
  return p.split('/').join('\u0000');
}

/**
 * Two stages writing the same path, or one writing inside the other's output,
 * is an error (reported at the later declaration). Sorted sweep with a stack
 * of enclosing outputs: O(n log n) plus the overlaps found.
 */
function checkOverlappingOutputs(ctx: AnalyzeContext, instances: readonly StageInstance[], outputs: ReadonlyMap<StageId, StageOutputs>): void {
  const all = instances.flatMap((i) => ownedOutputs(ctx, i, outputs.get(i.id)!)).map((o, order) => ({ ...o, order, key: nestedOrderKey(o.path) }));
  all.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.order - y.order));
  // The stack holds distinct enclosing paths only (a repeated path keeps its first
  // declaration), and each output is reported once, against the innermost other
  // stage's enclosing output: n stages writing one path give n-1 diagnostics, not n².
  const stack: typeof all = [];
  for (const cur of all) {
    while (stack.length > 0 && !isInside(cur.path, stack[stack.length - 1].path)) stack.pop();
    let enclosing: (typeof all)[number] | undefined;
    for (let i = stack.length - 1; i >= 0 && !enclosing; i--) if (stack[i].stage !== cur.stage) enclosing = stack[i];
    if (enclosing) {
      const [a, b] = enclosing.order < cur.order ? [enclosing, cur] : [cur, enclosing];
      if (a.path === b.path) {
        report(ctx, 'duplicate-output', `stage '${b.stage}' declares output '${b.path}', which stage '${a.stage}' already declares`, b.loc, [{ message: `'${a.path}' first declared by stage '${a.stage}' here`, location: a.loc }]);
      } else {
        const [outer, inner] = isInside(b.path, a.path) ? [a, b] : [b, a];
        report(ctx, 'duplicate-output', `output '${b.path}' of stage '${b.stage}' overlaps output '${a.path}' of stage '${a.stage}' ('${inner.path}' is inside '${outer.path}')`, b.loc, [{ message: `stage '${a.stage}' declares '${a.path}' here`, location: a.loc }]);
      }
    }
    if (stack.length === 0 || stack[stack.length - 1].path !== cur.path) stack.push(cur);
  }
}

/**
 * DVC-style: a path dep inside (or containing) another stage's output makes
 * that stage upstream. Results are memoised per distinct dep path (expanded
 * stages share theirs); plain paths use a prefix index, globs a scan.
 */
function inferPathEdges(env: BuildEnv, partial: ReadonlyMap<StageId, PartialNode>): void {
  const owned = [...env.instances.values()].flatMap((i) => ownedOutputs(env.ctx, i, env.outputs.get(i.id)!));
  const byPath = new Map<string, OwnedOutput[]>();
  for (const o of owned) byPath.set(o.path, [...(byPath.get(o.path) ?? []), o]);
  const sorted = [...owned].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  const memo = new Map<string, readonly OwnedOutput[]>();
  const touching = (dep: string): readonly OwnedOutput[] => {
    let hit = memo.get(dep);
    if (hit) return hit;
    if (isGlob(dep) || dep === '.' || escapesWorkspace(dep)) {
      hit = owned.filter((o) => depTouchesOutput(dep, o.path));
    } else {
      const found: OwnedOutput[] = [];
      // Outputs that contain the dep (or equal it): each ancestor of the dep path.
      const segs = dep.split('/');
      for (let n = 1; n <= segs.length; n++) found.push(...(byPath.get(segs.slice(0, n).join('/')) ?? []));
      // Outputs inside the dep: the sorted range starting with `dep/`.
      const prefix = `${dep}/`;
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid].path < prefix) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < sorted.length && sorted[i].path.startsWith(prefix); i++) found.push(sorted[i]);
      hit = found;
    }
    memo.set(dep, hit);
    return hit;
  };
  for (const node of partial.values()) {
    for (const d of node.deps as readonly DepSpec[]) {
      if (d.kind !== 'path') continue;
      for (const o of touching(d.path)) {
        if (o.stage === node.id) continue;
        let m = env.edges.get(node.id);
        if (!m) env.edges.set(node.id, (m = new Map()));
        if (!m.has(o.stage)) m.set(o.stage, { loc: d.loc ?? node.loc, via: `reads '${d.path}', an output of '${o.stage}'` });
      }
    }
  }
}

function reportCycle(ctx: AnalyzeContext, cycle: readonly StageId[], edges: ReadonlyMap<StageId, ReadonlyMap<StageId, EdgeInfo>>, stageLocs: ReadonlyMap<StageId, SourceLocation>): void {
  const related: { message: string; location: SourceLocation }[] = [];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const info = edges.get(cycle[i])!.get(cycle[i + 1])!;
    related.push({ message: `'${cycle[i]}' needs '${cycle[i + 1]}' (${info.via})`, location: info.loc });
  }
  report(ctx, 'cycle', `dependency cycle: ${cycle.join(' -> ')}`, stageLocs.get(cycle[0]) ?? related[0].location, related);
}
