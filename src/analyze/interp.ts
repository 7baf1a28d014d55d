/**
 * Interpolates `${...}` across a JSON subtree of a stage definition, turning
 * every problem (bad syntax, unknown param, `${item}` outside an expanded
 * stage, unknown stage) into a diagnostic located at the reference itself.
 * Does not decide which stage fields are interpolated (the stage builders do).
 */
import type { SourceLocation } from '../diagnostic.js';
import type { JsonValue } from '../pipeline.js';
import { parseTemplate, renderTemplate, hasTemplate, type TemplatePart } from '../interpolate.js';
import { getParam, setOwn } from '../config/params.js';
import { locateWithin, type TreePath } from '../config/source.js';
import { didYouMean } from '../did-you-mean.js';
import { report, isObject, type AnalyzeContext } from './context.js';

/** What references may resolve to in one place. */
export interface Scope {
  /** The foreach/matrix item, when the stage is an expansion. */
  readonly item?: { readonly value: JsonValue };
  /** Resolves `${stages.<id>.out}`; absent where such references are not allowed (then it is an error). */
  readonly stageOut?: (id: string, loc: SourceLocation) => string | undefined;
  /** Called for every param read, to record the stage's ParamReads. */
  readonly onParam: (path: string, value: JsonValue) => void;
  /** Names the field for "not allowed here" messages, e.g. `outs`. */
  readonly field: string;
}

/**
 * Interpolates a whole subtree; undefined when any reference failed
 * (diagnostics recorded). With `failedPaths`, a failed string is kept as
 * written and its path recorded instead, so the rest can still be validated.
 */
export function interpolateTree(ctx: AnalyzeContext, value: JsonValue, path: TreePath, scope: Scope, failedPaths?: TreePath[]): JsonValue | undefined {
  if (typeof value === 'string') {
    const r = interpolateString(ctx, value, path, scope);
    if (r === undefined && failedPaths) {
      failedPaths.push(path);
      return value;
    }
    return r;
  }
  if (Array.isArray(value)) {
    let failed = false;
    const out = value.map((v, i) => {
      const r = interpolateTree(ctx, v, [...path, i], scope, failedPaths);
      if (r === undefined) failed = true;
      return r ?? null;
    });
    return failed ? undefined : out;
  }
  if (isObject(value)) {
    let failed = false;
    const out: { [k: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(value)) {
      const r = interpolateTree(ctx, v, [...path, k], scope, failedPaths);
      if (r === undefined) failed = true;
      setOwn(out, k, r ?? null); // `out[k] =` would turn a `__proto__` key into the prototype
    }
    return failed ? undefined : out;
  }
  return value;
}

/** Interpolates one string (a lone reference keeps its type). */
export function interpolateString(ctx: AnalyzeContext, s: string, path: TreePath, scope: Scope): JsonValue | undefined {
  if (!hasTemplate(s)) return s;
  const parsed = parseTemplate(s);
  if (!parsed.ok) {
    const needle = s.slice(parsed.error.offset, parsed.error.offset + parsed.error.length);
    report(ctx, 'bad-reference', parsed.error.message, locateWithin(ctx.source, path, needle, occurrenceBefore(s, needle, parsed.error.offset)));
    return undefined;
  }
  return renderTemplate(parsed.value, (part) => resolvePart(ctx, s, part, path, scope));
}

function occurrenceBefore(s: string, needle: string, offset: number): number {
  let n = 0;
  for (let i = s.indexOf(needle); i >= 0 && i < offset; i = s.indexOf(needle, i + 1)) n++;
  return n;
}

function resolvePart(ctx: AnalyzeContext, s: string, part: Extract<TemplatePart, { kind: 'ref' }>, path: TreePath, scope: Scope): JsonValue | undefined {
  // Located lazily: most references resolve fine and need no location.
  const loc = (): SourceLocation => locateWithin(ctx.source, path, part.raw, occurrenceBefore(s, part.raw, part.offset));
  const ref = part.ref;
  switch (ref.kind) {
    case 'params': {
      const r = getParam(ctx.params, ref.path);
      if (!r.found) {
        const where = r.existing === '' ? 'params' : `params.${r.existing}`;
        const hint = r.suggestion ? `; did you mean 'params.${r.suggestion}'?` : '';
        report(ctx, 'unknown-param', `unknown param 'params.${ref.path}': ${where} has no key '${r.missing}'${hint}`, loc());
        return undefined;
      }
      scope.onParam(ref.path, r.value);
      return r.value;
    }
    case 'item': {
      if (!scope.item) {
        report(ctx, 'bad-reference', `'${part.raw}' is only available in a stage with foreach: or matrix:`, loc());
        return undefined;
      }
      let cur: JsonValue = scope.item.value;
      for (let i = 0; i < ref.path.length; i++) {
        const seg = ref.path[i];
        if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, seg)) {
          const prefix = ['item', ...ref.path.slice(0, i)].join('.');
          const hint = isObject(cur) ? (didYouMean(seg, Object.keys(cur)) ?? '') : '';
          const why = isObject(cur) ? `${prefix} has no key '${seg}'${hint ? `; did you mean '${prefix}.${hint}'?` : ''}` : `${prefix} is ${JSON.stringify(cur)}, not a mapping`;
          report(ctx, 'bad-reference', `cannot resolve '${part.raw}': ${why}`, loc());
          return undefined;
        }
        cur = cur[seg];
      }
      return cur;
    }
    case 'stages': {
      if (!scope.stageOut) {
        report(ctx, 'bad-reference', `'${part.raw}' cannot be used in ${scope.field}`, loc());
        return undefined;
      }
      return scope.stageOut(ref.stage, loc());
    }
  }
}
