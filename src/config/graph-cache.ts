/**
 * The analysed-graph cache: lets a no-op `pipeline run` skip the YAML parser,
 * schema validation, analysis and, above all, importing the built-in stage
 * modules (which may pull in tfjs/sharp).
 *
 * An entry is keyed by (pipeline path, overrides, workspace, schema dirs) and
 * stores the graph plus what it was derived from: the sha256 of every config
 * and schema file read, and digests of the code that shapes a graph (the
 * analyser's modules and every built-in stage module): by size+mtime, falling
 * back to content when a rebuild touched the files. A hit requires all of
 * these to match, so an edit to any of them is a miss.
 * Only successful loads are stored; writes are atomic; a corrupt or
 * unreadable entry is a miss. Does not parse YAML or analyse anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { PipelineGraph, StageId, StageNode } from '../pipeline.js';

/** Bump when the entry format or the meaning of a graph field changes. */
const FORMAT = 3; // 3: graphs carry `external`

interface Entry {
  readonly format: number;
  /** `codeDigest()` at write time. */
  readonly code: { readonly stat: string; readonly content: string };
  readonly inputs: readonly { readonly file: string; readonly sha256: string }[];
  readonly graph: Omit<PipelineGraph, 'stages'> & { readonly stages: readonly (readonly [StageId, StageNode])[] };
}

const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Code whose changes can change an analysed graph: the config front end and all stage modules. */
function codeRoots(): string[] {
  const src = path.join(distRoot, 'src');
  return [
    path.join(src, 'config'),
    path.join(src, 'analyze'),
    path.join(src, 'graph'),
    path.join(src, 'analyze.js'),
    path.join(src, 'interpolate.js'),
    path.join(distRoot, 'stages'),
  ];
}

/** sha256 hex of a string or buffer. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The .js files under the code roots, sorted. */
function codeFiles(roots: readonly string[]): string[] {
  const out: string[] = [];
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p).sort()) if (name.endsWith('.js') || !name.includes('.')) visit(path.join(p, name));
    } else if (p.endsWith('.js')) out.push(p);
  };
  for (const r of roots) visit(r);
  return out;
}

/**
 * Two digests of the code: a cheap one over (path, size, mtime) and, when that
 * differs (e.g. a rebuild rewrote identical files), one over the contents.
 */
export function codeDigest(roots: readonly string[] = codeRoots()): { stat: string; content: () => string } {
  const files = codeFiles(roots);
  const h = createHash('sha256');
  for (const f of files) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    h.update(`${f}\0${st?.size}\0${st?.mtimeMs}\n`);
  }
  let content: string | undefined;
  return {
    stat: h.digest('hex'),
    content: () => {
      if (content === undefined) {
        const c = createHash('sha256');
        for (const f of files) {
          c.update(`${f}\0`);
          try {
            c.update(fs.readFileSync(f));
          } catch {
            c.update('\0missing');
          }
        }
        content = c.digest('hex');
      }
      return content;
    },
  };
}

/** The entry file for a cache key. */
export function entryFile(dir: string, keyParts: unknown): string {
  return path.join(dir, `${sha256(JSON.stringify([FORMAT, keyParts])).slice(0, 40)}.json`);
}

/**
 * The cached graph if every recorded input still has the same content and the
 * code digest matches; `pipelineText` is the pipeline file's current content
 * (already read by the caller).
 */
export function readCachedGraph(file: string, pipelinePath: string, pipelineText: string): PipelineGraph | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(fs.readFileSync(file, 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  if (entry.format !== FORMAT) return undefined;
  for (const input of entry.inputs) {
    let text: string | Buffer;
    if (input.file === pipelinePath) text = pipelineText;
    else {
      try {
        text = fs.readFileSync(input.file);
      } catch {
        return undefined;
      }
    }
    if (sha256(text) !== input.sha256) return undefined;
  }
  const code = codeDigest();
  if (entry.code?.stat !== code.stat && entry.code?.content !== code.content()) return undefined;
  return { ...entry.graph, stages: new Map(entry.graph.stages) };
}

/** Stores a graph with the files it was derived from; failures are ignored (the cache is an optimisation). */
export function writeCachedGraph(file: string, graph: PipelineGraph, inputFiles: readonly string[], pipelinePath: string, pipelineText: string): void {
  try {
    const inputs = [...new Set(inputFiles)].map((f) => ({ file: f, sha256: sha256(f === pipelinePath ? pipelineText : fs.readFileSync(f)) }));
    const code = codeDigest();
    const entry: Entry = { format: FORMAT, code: { stat: code.stat, content: code.content() }, inputs, graph: { ...graph, stages: [...graph.stages] } };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry));
    fs.renameSync(tmp, file);
    prune(path.dirname(file));
  } catch {
    // Read-only install, full disk, a file vanished meanwhile: just don't cache.
  }
}

/** Entries kept per cache directory; beyond that the least recently written half is removed (on writes only). */
const MAX_ENTRIES = 512;

function prune(dir: string): void {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  if (names.length <= MAX_ENTRIES) return;
  const aged = names
    .map((n) => ({ n, t: fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, aged.length - MAX_ENTRIES / 2)) fs.rmSync(path.join(dir, n), { force: true });
}
