/**
 * Folding the `with.*` echoes of a params edit (a built-in stage fingerprints
 * both `params.train.lr` and the `with.lr` it resolves to, so one edit is two
 * changes). Used by `pipeline explain` and the plan's one-line reasons.
 *
 * This module does not compute or describe changes (see `fingerprint.ts` and
 * `plan.ts`).
 */
import type { FingerprintChange } from './fingerprint.js';

/** A change to print, with the `with.*` paths that only echo it (see `pairWithEcho`). */
export interface ExplainLine {
  readonly change: FingerprintChange;
  readonly seenAs: readonly string[];
}

/**
 * A built-in stage's resolved `with:` values are fingerprinted too, so editing
 * `params.train.lr` read as `lr: ${params.train.lr}` shows up twice: as
 * `param train.lr` and as `param with.lr`, with the same old and new values.
 * This folds each such `with.*` echo under the params change it repeats, so
 * the reader sees one edit. A `with.*` change that matches no params change
 * (the `with:` value itself was edited) stays its own line.
 */
export function pairWithEcho(changes: readonly FingerprintChange[]): ExplainLine[] {
  const same = (a: FingerprintChange, b: FingerprintChange): boolean =>
    a.kind === 'param' && b.kind === 'param' && JSON.stringify(a.old) === JSON.stringify(b.old) && JSON.stringify(a.new) === JSON.stringify(b.new);
  const isWith = (c: FingerprintChange): boolean => c.kind === 'param' && c.path.startsWith('with.');
  const last = (c: FingerprintChange): string => (c.kind === 'param' ? c.path.slice(c.path.lastIndexOf('.') + 1) : '');
  const out = new Map<FingerprintChange, string[]>();
  const folded = new Set<FingerprintChange>();
  const sources = changes.filter((c) => c.kind === 'param' && !isWith(c));
  // First the echoes named like their param (with.lr ← train.lr), then any other echo by value alone.
  for (const byName of [true, false]) {
    for (const c of sources) {
      const echoes = changes.filter((w) => isWith(w) && !folded.has(w) && same(w, c) && (!byName || last(w) === last(c)));
      for (const w of echoes) folded.add(w);
      out.set(c, [...(out.get(c) ?? []), ...echoes.map((w) => (w.kind === 'param' ? w.path : ''))]);
    }
  }
  // The given order, without the folded echoes.
  return changes.filter((c) => !folded.has(c)).map((c) => ({ change: c, seenAs: out.get(c) ?? [] }));
}
