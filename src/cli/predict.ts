/**
 * `pipeline predict [--model DIR] [--top-k N] [--format bars|json|csv] [--batch N]
 * [--device auto|gpu|cpu] [--backend tensorflow|wasm|cpu] IMAGE|DIR|GLOB…`
 *
 * Classifies images with a trained model: `--model` is a train stage output
 * (a directory with spec.json), or a workspace / directory holding
 * `out/train/` or `train/`; default `out/train` under the current directory.
 * Output goes to stdout: `bars` (default on a terminal; the seed's per-class
 * probability histogram), `json` (default otherwise) or `csv`. An image that
 * cannot be decoded gets its own error line and the others are still
 * predicted; the exit code is then 1.
 *
 * This command does not train, and does not run the pipeline.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CliIO, CommandMain } from './io.js';
import { ExitCode } from './io.js';
import { initBackend, type BackendName, type Device } from '../../stages/ml/backend.js';
import { loadClassifier, SPEC_FILE } from '../../stages/ml/model-io.js';
import { expandImagePaths, histogramBars, predictFiles, predictionsCsv, predictResizeOptions } from '../../stages/ml/predict-core.js';
import type { Tf } from '../../stages/ml/backbones/spec.js';

const USAGE = 'usage: pipeline predict [--model DIR] [--top-k N] [--format bars|json|csv] [--batch N] [--device auto|gpu|cpu] [--backend tensorflow|wasm|cpu] [--cache DIR] IMAGE|DIR|GLOB...';

interface Options {
  model?: string;
  topK: number;
  format?: 'bars' | 'json' | 'csv';
  batch: number;
  device: Device;
  backend?: BackendName;
  cache?: string;
  images: string[];
}

function parse(argv: readonly string[]): Options | string {
  const o: Options = { topK: 3, batch: 32, device: 'auto', images: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--model':
        o.model = value();
        if (o.model === undefined) return '--model needs a directory';
        break;
      case '--top-k': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 1) return '--top-k needs a positive integer';
        o.topK = v;
        break;
      }
      case '--batch': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 1) return '--batch needs a positive integer';
        o.batch = v;
        break;
      }
      case '--format': {
        const v = value();
        if (v !== 'bars' && v !== 'json' && v !== 'csv') return '--format must be bars, json or csv';
        o.format = v;
        break;
      }
      case '--device': {
        const v = value();
        if (v !== 'auto' && v !== 'gpu' && v !== 'cpu') return '--device must be auto, gpu or cpu';
        o.device = v;
        break;
      }
      case '--backend': {
        const v = value();
        if (v !== 'tensorflow' && v !== 'wasm' && v !== 'cpu') return '--backend must be tensorflow, wasm or cpu';
        o.backend = v;
        break;
      }
      case '--cache':
        o.cache = value();
        if (o.cache === undefined) return '--cache needs a directory';
        break;
      default:
        if (a.startsWith('--')) return `unknown option ${a}`;
        o.images.push(a);
    }
  }
  if (o.images.length === 0) return 'give at least one image, directory or glob';
  return o;
}

/** The model directory `--model` (or the default) points at, or an error message. */
export function resolveModelDir(cwd: string, model: string | undefined): { dir: string } | { error: string } {
  const base = path.resolve(cwd, model ?? '.');
  const candidates = model === undefined ? [path.join(base, 'out', 'train')] : [base, path.join(base, 'out', 'train'), path.join(base, 'train')];
  for (const c of candidates) if (fs.existsSync(path.join(c, SPEC_FILE))) return { dir: c };
  return { error: `no trained model at ${candidates.join(' or ')} (run the pipeline first, or pass --model <train output dir>)` };
}

export const main: CommandMain = async (argv: readonly string[], io: CliIO): Promise<number> => {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(`${USAGE}\n`);
    return ExitCode.ok;
  }
  const o = parse(argv);
  if (typeof o === 'string') {
    io.stderr.write(`pipeline predict: ${o}\n${USAGE}\n`);
    return ExitCode.usage;
  }
  const m = resolveModelDir(io.cwd, o.model);
  if ('error' in m) {
    io.stderr.write(`pipeline predict: ${m.error}\n`);
    return ExitCode.usage;
  }
  const be = await initBackend({ device: o.device, ...(o.backend !== undefined ? { backend: o.backend } : {}) });
  if (!be.ok) {
    io.stderr.write(`pipeline predict: ${be.error.message}\n`);
    return ExitCode.stageFailed;
  }
  const tf = be.value.tf as unknown as Tf;
  const cacheDir = path.resolve(io.cwd, o.cache ?? io.env['PIPELINE_CACHE'] ?? 'cache');
  const cl = await loadClassifier(tf, m.dir, { cacheDir, workspace: io.cwd, signal: io.signal });
  if (!cl.ok) {
    io.stderr.write(`pipeline predict: ${cl.error}\n`);
    return ExitCode.stageFailed;
  }
  const note = predictResizeOptions(cl.value.spec).note;
  if (note !== undefined) io.stderr.write(`pipeline predict: ${note}\n`);
  const { files, missing } = expandImagePaths(io.cwd, o.images);
  for (const x of missing) io.stderr.write(`pipeline predict: ${x}: no such file (or the glob matched nothing)\n`);
  const preds = await predictFiles(cl.value, files, {
    topK: o.topK,
    batchSize: o.batch,
    display: (f) => {
      const rel = path.relative(io.cwd, f);
      return rel.startsWith('..') ? f : rel.split(path.sep).join('/');
    },
    signal: io.signal,
  });
  const classes = cl.value.spec.classes;
  cl.value.dispose();
  const format = o.format ?? (io.stdout.isTTY === true ? 'bars' : 'json');
  if (format === 'json') io.stdout.write(JSON.stringify({ model: m.dir, classes, predictions: preds.map(({ probabilities: _, ...r }) => r) }, null, 2) + '\n');
  else if (format === 'csv') io.stdout.write(predictionsCsv(preds, Math.min(o.topK, classes.length)));
  else for (const p of preds) io.stdout.write(histogramBars(p, classes, Math.max(10, Math.min(40, (io.stdout.columns ?? 80) - Math.max(...classes.map((c) => c.length)) - 16))));
  const failed = preds.filter((p) => p.error !== undefined).length + missing.length;
  if (failed > 0) io.stderr.write(`pipeline predict: ${failed} of ${files.length + missing.length} input(s) could not be classified\n`);
  return failed > 0 ? ExitCode.stageFailed : ExitCode.ok;
};
