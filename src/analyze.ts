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
import type { Diagnostic, SourceLocation } from './diagnostic.js';
import type { DepSpec, JsonObject, JsonValue, PipelineGraph, StageId, StageNode } from './pipeline.js';
import { locate, locateKey, type YamlSource } from './config/source.js';
import type { SchemaValidator } from './config/schema-cache.js';
import { ok, err, type Result } from './result.js';
import { dedupeDiagnostics, isObject, report, type AnalyzeContext } from './analyze/context.js';
import { expandStages, type StageInstance } from './analyze/expand.js';
import { buildBuiltin, buildCmd, collectOutputs, type BuildEnv, type EdgeInfo, type PartialNode, type StageOutputs, type StageRegistry } from './analyze/stages.js';
import { depTouchesOutput, isInside } from './analyze/paths.js';
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

/** Analyses the pipeline; all diagnostics found, or the graph. */
export function analyzePipeline(input: AnalyzeInput): Result<PipelineGraph, Diagnostic[]> {
  const ctx: AnalyzeContext = { source: input.source, params: input.params, diagnostics: [] };
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
  const stageLocs = new Map(instances.map((i) => [i.id, locateKey(ctx.source, ['stages', i.base])]));
  for (const cycle of findCycles(dag)) reportCycle(ctx, cycle, env.edges, stageLocs);

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

/** Two stages writing the same path, or one writing inside the other's output, is an error. */
function checkOverlappingOutputs(ctx: AnalyzeContext, instances: readonly StageInstance[], outputs: ReadonlyMap<StageId, StageOutputs>): void {
  const all = instances.flatMap((i) => ownedOutputs(ctx, i, outputs.get(i.id)!));
  for (let j = 0; j < all.length; j++) {
    for (let i = 0; i < j; i++) {
      const a = all[i];
      const b = all[j];
      if (a.stage === b.stage) continue;
      if (a.path === b.path) {
        report(ctx, 'duplicate-output', `stage '${b.stage}' declares output '${b.path}', which stage '${a.stage}' already declares`, b.loc, [{ message: `'${a.path}' first declared by stage '${a.stage}' here`, location: a.loc }]);
      } else if (isInside(b.path, a.path) || isInside(a.path, b.path)) {
        const [outer, inner] = isInside(b.path, a.path) ? [a, b] : [b, a];
        report(ctx, 'duplicate-output', `output '${b.path}' of stage '${b.stage}' overlaps output '${a.path}' of stage '${a.stage}' ('${inner.path}' is inside '${outer.path}')`, b.loc, [{ message: `stage '${a.stage}' declares '${a.path}' here`, location: a.loc }]);
      }
    }
  }
}

/** DVC-style: a path dep inside (or containing) another stage's output makes that stage upstream. */
function inferPathEdges(env: BuildEnv, partial: ReadonlyMap<StageId, PartialNode>): void {
  const owned = [...env.instances.values()].flatMap((i) => ownedOutputs(env.ctx, i, env.outputs.get(i.id)!));
  for (const node of partial.values()) {
    for (const d of node.deps as readonly DepSpec[]) {
      if (d.kind !== 'path') continue;
      for (const o of owned) {
        if (o.stage === node.id || !depTouchesOutput(d.path, o.path)) continue;
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
