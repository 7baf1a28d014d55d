/**
 * The params tree: dotted-path lookup, deep merge (params files) and
 * overrides (`-S`). Pure functions over JSON; no files, no diagnostics.
 */
import type { JsonObject, JsonValue } from '../pipeline.js';
import { didYouMean } from '../did-you-mean.js';

/** Result of looking up a dotted path. */
export type ParamLookup =
  | { readonly found: true; readonly value: JsonValue }
  /** `existing` is the longest prefix that exists; `suggestion` a close sibling of the first missing segment. */
  | { readonly found: false; readonly existing: string; readonly missing: string; readonly suggestion?: string };

/** Splits a dotted param path (`train.lr`, `layers.0.units`). */
export function splitParamPath(p: string): string[] {
  return p.split('.');
}

/** Looks `dotted` up in `tree`; numeric segments index into lists. */
export function getParam(tree: JsonValue, dotted: string): ParamLookup {
  let cur: JsonValue = tree;
  const segs = splitParamPath(dotted);
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    let next: JsonValue | undefined;
    let candidates: string[] = [];
    if (Array.isArray(cur)) {
      next = /^\d+$/.test(seg) ? cur[Number(seg)] : undefined;
    } else if (cur !== null && typeof cur === 'object') {
      next = Object.prototype.hasOwnProperty.call(cur, seg) ? cur[seg] : undefined;
      candidates = Object.keys(cur);
    }
    if (next === undefined) {
      const existing = segs.slice(0, i).join('.');
      const s = didYouMean(seg, candidates);
      return { found: false, existing, missing: seg, suggestion: s === undefined ? undefined : [...segs.slice(0, i), s].join('.') };
    }
    cur = next;
  }
  return { found: true, value: cur };
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sets an own enumerable property, even for keys such as `__proto__`. */
export function setOwn(o: JsonObject, k: string, v: JsonValue): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** `over` merged into `base`: mappings merge recursively, everything else (lists included) replaces. New objects; inputs untouched. */
export function deepMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined;
    // defineProperty, not `out[k] =`: a param named `__proto__` must stay a key, not replace the prototype.
    setOwn(out, k, isObject(b) && isObject(v) ? deepMerge(b, v) : v);
  }
  return out;
}

/**
 * A copy of `tree` with the value at `dotted` replaced. The path must already
 * exist (so a typo in `-S` is an error, not a silently unused param); the
 * lookup result says what is missing otherwise.
 */
export function setParam(tree: JsonObject, dotted: string, value: JsonValue): { ok: true; value: JsonObject } | { ok: false; lookup: Extract<ParamLookup, { found: false }> } {
  const lookup = getParam(tree, dotted);
  if (!lookup.found) return { ok: false, lookup };
  const segs = splitParamPath(dotted);
  const set = (node: JsonValue, i: number): JsonValue => {
    if (i === segs.length) return value;
    const seg = segs[i];
    if (Array.isArray(node)) {
      const copy = [...node];
      copy[Number(seg)] = set(node[Number(seg)], i + 1);
      return copy;
    }
    const obj = node as JsonObject;
    return { ...obj, [seg]: set(obj[seg], i + 1) };
  };
  return { ok: true, value: set(tree, 0) as JsonObject };
}
