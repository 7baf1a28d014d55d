/**
 * Figures of the stress suite (`npm run test:stress`). A stress test calls
 * `recordFigure` once per figure; `scripts/run-stress.mjs` collects them from
 * STRESS_FIGURES_DIR, prints a table and writes `bench/results/stress.json`.
 * Outside that runner (no STRESS_FIGURES_DIR), a figure is only printed.
 *
 * This module does not judge a figure: the test that records it asserts its goal.
 */
import fs from 'node:fs';
import path from 'node:path';

/** One measured figure, e.g. crash-kill survival 50 of 50. */
export interface StressFigure {
  /** Stable id, also the file name: `crash-kill`, `fuzz-yaml`, `bomb-rss`. */
  readonly id: string;
  /** What was measured, in words: "crash-kill survival (next run completes, outputs identical, verify clean)". */
  readonly label: string;
  /** The count that passed, or the measured amount. */
  readonly value: number;
  /** For a count: out of how many (`value`/`of`). */
  readonly of?: number;
  /** For an amount: its unit (`MiB`, `ms`). */
  readonly unit?: string;
  /** Anything worth reading next to the figure: failures by kind, seeds, timings. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** Records a figure for the stress runner (and prints it). */
export function recordFigure(figure: StressFigure): void {
  const shown = figure.of !== undefined ? `${figure.value}/${figure.of}` : `${figure.value}${figure.unit ? ' ' + figure.unit : ''}`;
  console.log(`# figure ${figure.id}: ${shown} (${figure.label})`);
  const dir = process.env['STRESS_FIGURES_DIR'];
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${figure.id}.json`), JSON.stringify({ ...figure, at: new Date().toISOString() }, null, 2) + '\n');
}
