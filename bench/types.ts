/**
 * The benchmark harness contract. Each `bench/<area>.bench.ts` default-exports
 * a `BenchSuite`; `bench/main.ts` runs them all and writes
 * `bench/results/latest.json` and `BENCHMARKS.md`.
 */

/** One measured figure. */
export interface BenchResult {
  /** Stable id, e.g. `noop-run.10k-files.wall`. */
  readonly name: string;
  readonly value: number;
  /** Unit, e.g. `s`, `MiB`, `img/s`, `ratio`. */
  readonly unit: string;
  /** The goal for this figure, as text (e.g. `<= 0.3 s`). */
  readonly goal?: string;
  /** Whether the goal was met, when there is one. */
  readonly met?: boolean;
  /** Any context (sizes, peer figures, notes). */
  readonly detail?: string;
}

/** A group of benchmarks for one area. */
export interface BenchSuite {
  readonly name: string;
  run(opts: { quick: boolean; log: (line: string) => void }): Promise<BenchResult[]>;
}
