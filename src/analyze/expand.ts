/**
 * `foreach:` / `matrix:` expansion: one stage definition → one instance per
 * item, with ids `name@value` (scalar foreach), `name@<index>` (foreach of
 * mappings or lists) or `name@k1=v1,k2=v2` (matrix: cartesian product in file
 * order, last key varying fastest). Does not interpolate the stage body.
 */
import type { JsonObject, JsonValue, StageId } from '../pipeline.js';
import { locate, locateKey } from '../config/source.js';
import { interpolateString } from './interp.js';
import { report, isObject, type AnalyzeContext } from './context.js';

/** One concrete stage to analyse. */
export interface StageInstance {
  readonly id: StageId;
  /** The key under `stages:` this instance comes from. */
  readonly base: string;
  /** The (raw) definition; shared by all instances of one base. */
  readonly def: JsonObject;
  /** The item, for expanded stages. */
  readonly item?: { readonly value: JsonValue };
  /** Position among all instances (file order). */
  readonly order: number;
  /** Its foreach/matrix was unusable (already reported): the stage exists for references but is not analysed further. */
  readonly broken?: boolean;
}

const stageNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Most stage instances one pipeline may expand to. A three-axis matrix of a
 * thousand values each is a few lines of YAML but a billion stages: without a
 * bound, analysis runs out of memory instead of reporting it.
 */
export const maxStageInstances = 10_000;

/** Expands every stage; reports bad names and bad foreach/matrix values. `groups` maps each expanded base to its ids. */
export function expandStages(ctx: AnalyzeContext, stages: JsonObject): { instances: StageInstance[]; groups: Map<string, StageId[]> } {
  const instances: StageInstance[] = [];
  const groups = new Map<string, StageId[]>();
  for (const [base, def] of Object.entries(stages)) {
    if (!stageNamePattern.test(base)) {
      report(ctx, 'invalid-value', `invalid stage name '${base}': use letters, digits, '_', '.', '-' (and no '@', which marks foreach/matrix expansions)`, locateKey(ctx.source, ['stages', base]));
      continue;
    }
    if (!isObject(def)) continue; // schema reported it
    const items = expansionItems(ctx, base, def, maxStageInstances - instances.length);
    if (items === undefined) {
      const broken = def.foreach !== undefined || def.matrix !== undefined;
      instances.push({ id: base as StageId, base, def, order: instances.length, ...(broken ? { broken } : {}) });
      continue;
    }
    const ids: StageId[] = [];
    const seen = new Map<string, number>();
    for (const { suffix, value } of items) {
      const id = `${base}@${suffix}` as StageId;
      if (seen.has(id)) {
        report(ctx, 'duplicate-stage', `stage '${base}' expands to '${id}' twice; foreach/matrix values must be unique`, locateKey(ctx.source, ['stages', base, 'foreach' in def ? 'foreach' : 'matrix']));
        continue;
      }
      seen.set(id, 1);
      ids.push(id);
      instances.push({ id, base, def, item: { value }, order: instances.length });
    }
    groups.set(base, ids);
  }
  return { instances, groups };
}

function scalarText(v: JsonValue): string | undefined {
  if (v === null || typeof v === 'object') return undefined;
  return String(v);
}

/** The items of a foreach/matrix stage, or undefined for a plain stage (or when the values are unusable). */
function expansionItems(ctx: AnalyzeContext, base: string, def: JsonObject, room: number): { suffix: string; value: JsonValue }[] | undefined {
  const hasForeach = def.foreach !== undefined;
  const hasMatrix = def.matrix !== undefined;
  if (hasForeach && hasMatrix) {
    report(ctx, 'invalid-value', `stage '${base}' has both foreach: and matrix:; use one`, locateKey(ctx.source, ['stages', base, 'foreach']));
    return undefined; // marked broken by the caller
  }
  if (hasForeach) {
    const list = listValue(ctx, def.foreach, ['stages', base, 'foreach']);
    if (!list) return undefined;
    if (list.length > room) return tooMany(ctx, base, 'foreach', list.length);
    const allScalar = list.every((v) => scalarText(v) !== undefined);
    return list.map((value, i) => ({ suffix: allScalar ? scalarText(value)! : String(i), value }));
  }
  if (hasMatrix) {
    if (!isObject(def.matrix)) return undefined; // schema reported it
    const axes: { key: string; values: JsonValue[] }[] = [];
    for (const [key, raw] of Object.entries(def.matrix)) {
      const values = listValue(ctx, raw, ['stages', base, 'matrix', key]);
      if (!values) return undefined;
      axes.push({ key, values });
    }
    if (axes.length === 0) return undefined;
    const total = axes.reduce((n, a) => n * a.values.length, 1);
    if (total > room) return tooMany(ctx, base, 'matrix', total);
    let combos: { parts: string[]; value: JsonObject }[] = [{ parts: [], value: {} }];
    for (const { key, values } of axes) {
      const next: typeof combos = [];
      for (const c of combos) {
        values.forEach((v, i) => next.push({ parts: [...c.parts, `${key}=${scalarText(v) ?? String(i)}`], value: { ...c.value, [key]: v } }));
      }
      combos = next;
    }
    return combos.map((c) => ({ suffix: c.parts.join(','), value: c.value }));
  }
  return undefined;
}

/** Reports an expansion past `maxStageInstances`; undefined (the stage is then marked broken). */
function tooMany(ctx: AnalyzeContext, base: string, key: 'foreach' | 'matrix', n: number): undefined {
  report(ctx, 'invalid-value', `stage '${base}' expands to ${n.toLocaleString('en-US')} stages by ${key}:; a pipeline may have at most ${maxStageInstances.toLocaleString('en-US')}`, locateKey(ctx.source, ['stages', base, key]));
  return undefined;
}

/** A non-empty list, given literally or as one `${params...}` reference to a list. */
function listValue(ctx: AnalyzeContext, raw: JsonValue | undefined, path: (string | number)[]): JsonValue[] | undefined {
  if (Array.isArray(raw)) return raw.length > 0 ? raw : undefined; // empty: schema reported it
  if (typeof raw !== 'string') return undefined;
  const v = interpolateString(ctx, raw, path, { field: 'foreach/matrix', onParam: () => {} });
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0) {
    report(ctx, 'invalid-value', `${path.join('.')} must resolve to a non-empty list, got ${JSON.stringify(v)}`, locate(ctx.source, path));
    return undefined;
  }
  return v;
}
