/**
 * Prediction on image files, shared by the `predict` stage and the
 * `pipeline predict` command: expands files / directories / globs, resizes each
 * image exactly as the model's training pixels were made (resizeImage with the
 * size, channels, fit, kernel and background recorded in spec.json; see
 * {@link predictResizeOptions}), classifies in batches, and formats the results as JSON,
 * CSV or terminal bars (the seed's per-class probability histogram). A file
 * that cannot be decoded gets an entry with its own error; the others are
 * still predicted.
 *
 * This module does not choose a backend or locate models.
 */
import fs from 'node:fs';
import path from 'node:path';
import { resizeImage, RESIZE_DEFAULTS, type ResizeOptions } from '../resize.js';
import { globToRegExp } from '../lib/globs.js';
import { topIndices } from './metrics.js';
import type { Classifier, ModelSpec } from './model-io.js';

/** One file's result. */
export interface Prediction {
  /** The path as listed (absolute, or relative to the base directory the caller chose). */
  readonly file: string;
  /** Top classes, most probable first; absent when `error` is set. */
  readonly top?: readonly { readonly class: string; readonly p: number }[];
  /** Every class's probability, in class order (absent on error). */
  readonly probabilities?: readonly number[];
  /** Why the file could not be classified (e.g. `unsupported-format: ...`). */
  readonly error?: string;
}

/** Expands paths, directories (recursively, hidden entries skipped) and globs (`*`, `**`, `?`) under `base`. */
export function expandImagePaths(base: string, patterns: readonly string[]): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  const walk = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => !d.name.startsWith('.'))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : d.isFile() ? [path.join(dir, d.name)] : []));
  for (const pat of patterns) {
    const abs = path.resolve(base, pat);
    if (/[*?[]/.test(pat)) {
      const parts = pat.split('/');
      const staticParts: string[] = [];
      for (const part of parts) {
        if (/[*?[]/.test(part)) break;
        staticParts.push(part);
      }
      const root = path.resolve(base, staticParts.join('/') || '.');
      const re = globToRegExp(parts.slice(staticParts.length).join('/'));
      const hits = fs.existsSync(root) ? walk(root).filter((f) => re.test(path.relative(root, f).split(path.sep).join('/'))) : [];
      if (hits.length === 0) missing.push(pat);
      files.push(...hits);
    } else if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) {
      files.push(...walk(abs));
    } else if (fs.existsSync(abs)) {
      files.push(abs);
    } else {
      missing.push(pat);
    }
  }
  return { files: [...new Set(files)], missing };
}

/**
 * The resize options that turn a new image into the pixels `spec`'s model was trained on: its input size and
 * channels, and the fit / kernel / background the training `resize` stage used. A spec without them (written
 * before they were recorded, or trained on pixels from elsewhere) gets the resize defaults, and `note` says so.
 */
export function predictResizeOptions(spec: ModelSpec): { readonly options: ResizeOptions; readonly note?: string } {
  const r = spec.resize;
  const options: ResizeOptions = {
    size: [spec.inputSize[0], spec.inputSize[1]],
    fit: r?.fit ?? RESIZE_DEFAULTS.fit,
    kernel: r?.kernel ?? RESIZE_DEFAULTS.kernel,
    channels: spec.channels as 1 | 3,
    background: r?.background ?? RESIZE_DEFAULTS.background,
    maxPixels: RESIZE_DEFAULTS.max_pixels,
  };
  if (r !== undefined) return { options };
  return {
    options,
    note: `the model does not record how its training images were resized; using fit ${options.fit}, kernel ${options.kernel}, background ${options.background} (retrain with the current build-model/train to record them)`,
  };
}

/** Classifies `files` in batches of `batchSize`; failures become per-file errors. */
export async function predictFiles(
  classifier: Classifier,
  files: readonly string[],
  opts: { topK: number; batchSize: number; display?: (file: string) => string; progress?: (done: number, total: number) => void; signal?: AbortSignal },
): Promise<Prediction[]> {
  const { spec } = classifier;
  const [h, w] = spec.inputSize;
  const len = h * w * spec.channels;
  const show = opts.display ?? ((f: string) => f);
  const results: Prediction[] = new Array(files.length);
  const k = Math.min(opts.topK, spec.classes.length);
  const resizeOptions = predictResizeOptions(spec).options;
  for (let s = 0; s < files.length; s += opts.batchSize) {
    if (opts.signal?.aborted) throw new Error('cancelled');
    const chunk = files.slice(s, s + opts.batchSize);
    const decoded = await Promise.all(chunk.map((f) => resizeImage(f, resizeOptions)));
    const good: number[] = [];
    decoded.forEach((r, i) => {
      if (r.ok) good.push(i);
      else results[s + i] = { file: show(chunk[i]!), error: `${r.error.reason}: ${r.error.detail}` };
    });
    if (good.length > 0) {
      const batch = new Uint8Array(good.length * len);
      good.forEach((i, j) => batch.set((decoded[i] as { ok: true; value: Uint8Array }).value, j * len));
      const probs = await classifier.predict(batch, good.length);
      const c = spec.classes.length;
      good.forEach((i, j) => {
        const row = Array.from(probs.subarray(j * c, (j + 1) * c));
        results[s + i] = { file: show(chunk[i]!), top: topIndices(row, k).map((t) => ({ class: spec.classes[t]!, p: row[t]! })), probabilities: row };
      });
    }
    opts.progress?.(Math.min(files.length, s + opts.batchSize), files.length);
  }
  return results;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV: file, then class/probability pairs for each rank, then error. */
export function predictionsCsv(preds: readonly Prediction[], topK: number): string {
  const head = ['file', ...Array.from({ length: topK }, (_, r) => [`class_${r + 1}`, `p_${r + 1}`]).flat(), 'error'];
  const rows = preds.map((p) => {
    const cells = [csvField(p.file)];
    for (let r = 0; r < topK; r++) {
      const t = p.top?.[r];
      cells.push(t ? csvField(t.class) : '', t ? t.p.toFixed(6) : '');
    }
    cells.push(p.error !== undefined ? csvField(p.error) : '');
    return cells.join(',');
  });
  return [head.join(','), ...rows].join('\n') + '\n';
}

/** The seed's per-class probability histogram, as text bars (one line per class, most probable marked). */
export function histogramBars(p: Prediction, classes: readonly string[], width = 40): string {
  if (p.error !== undefined || p.probabilities === undefined) return `${p.file}\n  error: ${p.error ?? 'no prediction'}\n`;
  const nameW = Math.max(...classes.map((c) => c.length));
  const best = p.top?.[0]?.class;
  const lines = [`${p.file}  →  ${best} (${((p.top?.[0]?.p ?? 0) * 100).toFixed(1)}%)`];
  p.probabilities.forEach((v, i) => {
    const n = Math.round(v * width);
    lines.push(`  ${classes[i]!.padEnd(nameW)} ${'█'.repeat(n)}${'·'.repeat(width - n)} ${(v * 100).toFixed(1).padStart(5)}%${classes[i] === best ? '  ◀' : ''}`);
  });
  return lines.join('\n') + '\n';
}
