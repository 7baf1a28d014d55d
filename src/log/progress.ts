/**
 * Progress arithmetic and text for long stages: items/s, ETA and a bar.
 * Pure: callers pass the clock in. It does not print; `human.ts` does.
 */

/** A stage's progress over time. */
export interface ProgressState {
  readonly done: number;
  readonly total: number;
  readonly label?: string;
  /** Time of the first progress report (ms). */
  readonly firstAt: number;
  /** `done` at the first report, so rate counts only work seen. */
  readonly firstDone: number;
  /** Time of the latest report (ms). */
  readonly lastAt: number;
}

/** Folds one report into the state. */
export function updateProgress(prev: ProgressState | undefined, done: number, total: number, label: string | undefined, now: number): ProgressState {
  if (!prev || done < prev.done) return { done, total, firstAt: now, firstDone: done, lastAt: now, ...(label !== undefined ? { label } : {}) };
  return { ...prev, done, total, lastAt: now, ...(label !== undefined ? { label } : {}) };
}

/** Items per second since the first report, or undefined before there is a measurable interval. */
export function itemsPerSecond(p: ProgressState): number | undefined {
  const dt = (p.lastAt - p.firstAt) / 1000;
  if (dt < 0.2 || p.done <= p.firstDone) return undefined;
  return (p.done - p.firstDone) / dt;
}

/** Seconds left at the current rate, or undefined if unknown. */
export function etaSeconds(p: ProgressState): number | undefined {
  const r = itemsPerSecond(p);
  if (r === undefined || r <= 0) return undefined;
  return Math.max(0, (p.total - p.done) / r);
}

/** `1.2s`, `42s`, `3m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m - h * 60).padStart(2, '0')}m`;
}

/** A fixed-width bar, e.g. `[#####.....]`. */
export function formatBar(done: number, total: number, width: number): string {
  const inner = Math.max(1, width - 2);
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const full = Math.round(frac * inner);
  return `[${'#'.repeat(full)}${'.'.repeat(inner - full)}]`;
}

function formatRate(r: number): string {
  return r >= 100 ? `${Math.round(r)}` : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

/** `[####......] 340/1000 45.2 it/s ETA 15s (label)` */
export function formatProgress(p: ProgressState, barWidth = 20): string {
  const parts = [formatBar(p.done, p.total, barWidth), `${p.done}/${p.total}`];
  const r = itemsPerSecond(p);
  if (r !== undefined) parts.push(`${formatRate(r)} it/s`);
  const eta = etaSeconds(p);
  if (eta !== undefined && p.done < p.total) parts.push(`ETA ${formatDuration(eta * 1000)}`);
  if (p.label) parts.push(p.label);
  return parts.join(' ');
}
