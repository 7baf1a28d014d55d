/**
 * The human reporter. On a TTY it keeps a live block at the bottom of the
 * screen, one line per working stage with elapsed time and a progress bar
 * (items/s, ETA), redrawn in place, while finished stages and stage output
 * scroll above it. Off a TTY it writes plain lines only (progress at most
 * every 10% per stage). Colour only when asked (`NO_COLOR` is the CLI's call).
 *
 * It consumes run events and renders text; it does not decide anything about
 * the run. Besides the reporter it exports the pure formatting helpers the
 * `status`/`explain`/`--dry` outputs share.
 */
import type { Writable } from 'node:stream';
import type { EventSink, PlannedAction, RunEvent, StageStatus } from '../events.js';
import { unreachable } from '../result.js';
import { formatDuration, formatProgress, updateProgress, type ProgressState } from './progress.js';

/** ANSI styling that degrades to identity without colour. */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

/** Builds a style; `color` false gives plain text. */
export function makeStyle(color: boolean): Style {
  const wrap = (open: number, close: number) => (s: string) => (color ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) };
}

/** Options for the human reporter. */
export interface HumanReporterOptions {
  /** Where everything goes (stdout). */
  readonly out: Writable;
  /** Live redraw in place (only when `out` is a terminal). */
  readonly tty: boolean;
  readonly color: boolean;
  /** Terminal width for truncating live lines. */
  readonly columns?: number;
  /** Clock (ms), for tests. */
  readonly now?: () => number;
  /** Live redraw interval in ms (TTY only). Default 100. */
  readonly redrawMs?: number;
}

/** A reporter: feed it events, close it when the run is over. */
export interface Reporter {
  readonly sink: EventSink;
  /** Stops the redraw timer and removes the live block. */
  close(): void;
}

/** Spinner frames for working stages on a TTY (one per 100 ms). */
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'] as const;

const statusMark: Record<StageStatus, string> = {
  ran: '✓',
  restored: '↺',
  fresh: '·',
  failed: '✗',
  cancelled: '⊘',
  'skipped-upstream-failed': '-',
};

/** The line printed when a stage ends, e.g. `✓ train  ran in 3.2s  accuracy=0.91`. */
export function formatStageEnd(e: Extract<RunEvent, { type: 'stage-end' }>, st: Style): string {
  const mark = statusMark[e.status];
  const name = st.bold(e.stage);
  switch (e.status) {
    case 'ran': {
      const metrics = e.metrics && Object.keys(e.metrics).length > 0 ? `  ${Object.entries(e.metrics).map(([k, v]) => `${k}=${formatNumber(v)}`).join(' ')}` : '';
      const summary = e.summary ? `  ${e.summary}` : '';
      return `${st.green(mark)} ${name} ran in ${formatDuration(e.durationMs)}${summary}${metrics}`;
    }
    case 'restored':
      return `${st.cyan(mark)} ${name} restored from cache in ${formatDuration(e.durationMs)}`;
    case 'fresh':
      return `${st.dim(mark)} ${name} ${st.dim('fresh')}`;
    case 'failed':
      return `${st.red(mark)} ${name} ${st.red(e.error ?? `stage ${e.stage} failed`)}`;
    case 'cancelled':
      return `${st.yellow(mark)} ${name} ${st.yellow('cancelled')}${e.error ? st.dim(` (${e.error})`) : ''}`;
    case 'skipped-upstream-failed':
      return `${st.yellow(mark)} ${name} ${st.yellow('skipped')}${e.error ? st.dim(` (${e.error})`) : ''}`;
    default:
      return unreachable(e.status);
  }
}

/** The line printed when a sweep variant ends, e.g. `■ experiment 2 [lr=0.1] succeeded in 3.2s, recorded as 1a2b3c4  train.acc=0.9`. */
export function formatVariantEnd(e: Extract<RunEvent, { type: 'variant-end' }>, st: Style): string {
  const head = `experiment ${e.index} ${st.dim(`[${e.variant}]`)}`;
  const metrics = Object.entries(e.metrics).map(([k, v]) => `${k}=${formatNumber(v)}`).join(' ');
  const rec = e.experiment !== undefined ? `, recorded as ${e.experiment}` : e.status === 'cancelled' ? ', not recorded' : '';
  const tail = `${formatDuration(e.durationMs)}${rec}${metrics ? `  ${metrics}` : ''}`;
  switch (e.status) {
    case 'succeeded':
      return `${st.green('■')} ${head} succeeded in ${tail}`;
    case 'failed':
      return `${st.red('■')} ${head} ${st.red('failed')} after ${tail}`;
    case 'cancelled':
      return `${st.yellow('■')} ${head} ${st.yellow('cancelled')} after ${tail}`;
    default:
      return unreachable(e.status);
  }
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
}

/** One line of a plan (`--dry`), e.g. `run      train  param train.lr changed: 0.01 → 0.001`. */
export function formatPlanLine(stage: string, action: PlannedAction, reason: string | undefined, st: Style): string {
  const label: Record<PlannedAction, string> = { fresh: st.dim('fresh   '), restore: st.cyan('restore '), run: st.green('run     '), unknown: st.yellow('run?    ') };
  return `${label[action]} ${st.bold(stage)}${reason ? `  ${st.dim(reason)}` : ''}`;
}

/** The closing summary line. */
export function formatRunEnd(e: Extract<RunEvent, { type: 'run-end' }>, st: Style): string {
  const c = e.counts;
  const total = Object.values(c).reduce((a, b) => a + (b ?? 0), 0);
  const time = formatDuration(e.durationMs);
  if (e.ok && (c.ran ?? 0) === 0 && (c.restored ?? 0) === 0) return st.dim(`nothing to do: ${total} stage${total === 1 ? '' : 's'} up to date (${time})`);
  const order: StageStatus[] = ['ran', 'restored', 'fresh', 'failed', 'cancelled', 'skipped-upstream-failed'];
  const parts = order.filter((s) => (c[s] ?? 0) > 0).map((s) => `${c[s]} ${s === 'skipped-upstream-failed' ? 'skipped' : s}`);
  const text = `${parts.join(', ')} in ${time}`;
  return e.cancelled ? st.yellow(`cancelled: ${text}`) : e.ok ? st.green(text) : st.red(text);
}

/** Creates the reporter (see module doc). */
export function humanReporter(opts: HumanReporterOptions): Reporter {
  const st = makeStyle(opts.color);
  const now = opts.now ?? Date.now;
  const out = opts.out;
  const width = Math.max(40, opts.columns ?? 100);
  /** Working stages, in start order. */
  const live = new Map<string, { startedAt: number; action: 'run' | 'restore'; progress?: ProgressState; lastPlainPct?: number }>();
  let drawnLines = 0;
  let lastDraw = 0;
  let dry = false;
  let timer: NodeJS.Timeout | undefined;

  const clearLive = (): string => {
    if (!opts.tty || drawnLines === 0) return '';
    const s = `\x1b[${drawnLines}A\x1b[J`;
    drawnLines = 0;
    return s;
  };
  const renderLive = (): string => {
    if (!opts.tty || live.size === 0) return '';
    const t = now();
    const lines = [...live].map(([stage, w]) => {
      const head = `${st.cyan(SPINNER[Math.floor(t / 100) % SPINNER.length])} ${st.bold(stage)} ${w.action === 'restore' ? 'restoring' : 'running'} ${formatDuration(t - w.startedAt)}`;
      const line = w.progress ? `${head}  ${formatProgress(w.progress)}` : head;
      return truncate(line, width - 1);
    });
    drawnLines = lines.length;
    lastDraw = t;
    return `${lines.join('\n')}\n`;
  };
  /** Prints permanent lines above the live block. */
  const print = (...lines: string[]): void => {
    out.write(`${clearLive()}${lines.map((l) => `${l}\n`).join('')}${renderLive()}`);
  };
  const redraw = (): void => {
    if (drawnLines === 0 && live.size === 0) return;
    out.write(`${clearLive()}${renderLive()}`);
  };

  const sink: EventSink = (raw) => {
    // In a sweep, a stage is named with its variant: `train [train.lr=0.1]`.
    const e = raw.variant !== undefined && 'stage' in raw ? ({ ...raw, stage: `${raw.stage} ${st.dim(`[${raw.variant}]`)}` } as RunEvent) : raw;
    /** `[stage]` or, in a sweep, `[stage variant]`: the prefix of output and plain progress lines. */
    const linePrefix = (): string => ('stage' in raw ? (raw.variant !== undefined ? `[${raw.stage} ${raw.variant}]` : `[${raw.stage}]`) : '');
    switch (e.type) {
      case 'run-start':
        dry = e.dry;
        if (opts.tty && !dry && timer === undefined) {
          timer = setInterval(redraw, opts.redrawMs ?? 100);
          timer.unref();
        }
        if (dry) print(st.bold(`plan for ${e.pipeline} (${e.stages.length} stage${e.stages.length === 1 ? '' : 's'}, dry run):`));
        return;
      case 'stage-plan':
        if (dry) print(formatPlanLine(e.stage, e.action, e.reason, st));
        return;
      case 'stage-start':
        live.set(e.stage, { startedAt: e.time, action: e.action });
        if (opts.tty) redraw();
        else print(`${st.cyan('>')} ${st.bold(e.stage)} ${e.action === 'restore' ? 'restoring from cache' : 'running'}${e.reason ? st.dim(` (${e.reason})`) : ''}`);
        return;
      case 'stage-output': {
        const prefix = linePrefix();
        const text = e.stream === 'stderr' || e.stream === 'warn' ? st.yellow(e.line) : e.line;
        print(`${st.dim(prefix)} ${text}`);
        return;
      }
      case 'stage-progress': {
        const w = live.get(e.stage);
        if (!w) return;
        w.progress = updateProgress(w.progress, e.done, e.total, e.label, e.time);
        if (opts.tty) {
          if (now() - lastDraw >= 50) redraw();
        } else {
          const pct = e.total > 0 ? Math.floor((e.done / e.total) * 10) : 0;
          if (w.lastPlainPct === undefined || pct > w.lastPlainPct) {
            w.lastPlainPct = pct;
            print(`${st.dim(linePrefix())} ${formatProgress(w.progress)}`);
          }
        }
        return;
      }
      case 'stage-end':
        live.delete(e.stage);
        print(formatStageEnd(e, st));
        return;
      case 'run-end':
        if (timer) clearInterval(timer);
        timer = undefined;
        live.clear();
        if (dry) return print(st.dim('dry run: nothing was executed'));
        print(formatRunEnd(e, st));
        return;
      case 'sweep-start':
        print(st.bold(`sweep ${e.sweep}: ${e.variants.length} experiments`) + st.dim(e.shared.length > 0 ? ` (shared, run once: ${e.shared.join(', ')})` : ''));
        for (const v of e.variants) print(st.dim(`  ${v.index}. ${v.label}`));
        return;
      case 'variant-end':
        print(formatVariantEnd(e, st));
        return;
      case 'sweep-apply':
        print(`${st.cyan('↺')} workspace holds experiment ${e.index} ${st.dim(`[${e.variant}]`)}`);
        for (const p of e.problems) print(`  ${st.yellow(p)}`);
        return;
      default:
        return unreachable(e);
    }
  };
  return {
    sink,
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (drawnLines > 0) out.write(clearLive());
    },
  };
}

/** Cuts a line to `max` visible characters (ANSI sequences don't count). */
function truncate(line: string, max: number): string {
  let visible = 0;
  let outStr = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const m = /^\x1b\[[0-9;]*m/.exec(line.slice(i));
      if (m) {
        outStr += m[0];
        i += m[0].length - 1;
        continue;
      }
    }
    if (visible >= max) continue;
    outStr += line[i];
    visible++;
  }
  return outStr;
}
