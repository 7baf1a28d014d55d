/**
 * Classification metrics from predicted probabilities: accuracy, top-k,
 * the confusion matrix, per-class precision / recall / F1 and their macro and
 * support-weighted averages (scikit-learn's definitions; a class with no
 * predictions has precision 0, one with no support has recall 0).
 *
 * Pure functions over plain arrays: no tfjs, no files, no formatting.
 */

/** Per-class scores. */
export interface ClassScores {
  readonly name: string;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  /** Number of true samples of this class. */
  readonly support: number;
}

/** Everything `evaluate` reports. */
export interface ClassificationReport {
  readonly samples: number;
  readonly accuracy: number;
  /** k → fraction of samples whose true class is among the k most probable (k ≤ number of classes). */
  readonly topK: Readonly<Record<string, number>>;
  /** `matrix[true][predicted]` counts. */
  readonly confusion: readonly (readonly number[])[];
  readonly perClass: readonly ClassScores[];
  readonly macro: { readonly precision: number; readonly recall: number; readonly f1: number };
  readonly weighted: { readonly precision: number; readonly recall: number; readonly f1: number };
  /** Mean categorical cross-entropy (natural log, probabilities clipped to 1e-7). */
  readonly loss: number;
}

/** Indices of the `k` largest values of `row` (ties: lower index first). */
export function topIndices(row: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => row[b]! - row[a]! || a - b);
  return idx.slice(0, k);
}

/**
 * Builds the report from `probs` (row-major [n, classes]) and true labels.
 * `ks` lists the top-k values to compute (those above the class count are skipped).
 */
export function classificationReport(probs: Float32Array | readonly number[], labels: ArrayLike<number>, classes: readonly string[], ks: readonly number[] = [1, 3, 5]): ClassificationReport {
  const c = classes.length;
  const n = labels.length;
  if (probs.length !== n * c) throw new Error(`probabilities have ${probs.length} values, expected ${n}x${c}`);
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  const topHits = new Map<number, number>(ks.filter((k) => k <= c).map((k) => [k, 0]));
  const maxK = Math.max(1, ...topHits.keys());
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.prototype.slice.call(probs, i * c, (i + 1) * c) as number[];
    const top = topIndices(row, maxK);
    const y = labels[i]!;
    confusion[y]![top[0]!]!++;
    for (const k of topHits.keys()) if (top.slice(0, k).includes(y)) topHits.set(k, topHits.get(k)! + 1);
    loss -= Math.log(Math.min(1, Math.max(1e-7, row[y]!)));
  }
  const perClass = classes.map((name, k) => {
    const tp = confusion[k]![k]!;
    const support = confusion[k]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + r[k]!, 0);
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { name, precision, recall, f1, support };
  });
  const avg = (f: (s: ClassScores) => number, weighted: boolean): number => {
    const total = weighted ? n : c;
    if (total === 0) return 0;
    return perClass.reduce((a, s) => a + f(s) * (weighted ? s.support : 1), 0) / total;
  };
  const correct = confusion.reduce((a, r, k) => a + r[k]!, 0);
  return {
    samples: n,
    accuracy: n === 0 ? 0 : correct / n,
    topK: Object.fromEntries([...topHits].map(([k, hits]) => [String(k), n === 0 ? 0 : hits / n])),
    confusion,
    perClass,
    macro: { precision: avg((s) => s.precision, false), recall: avg((s) => s.recall, false), f1: avg((s) => s.f1, false) },
    weighted: { precision: avg((s) => s.precision, true), recall: avg((s) => s.recall, true), f1: avg((s) => s.f1, true) },
    loss: n === 0 ? 0 : loss / n,
  };
}
