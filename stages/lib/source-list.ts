/**
 * Listing ingest's candidate files: walking a class-per-folder directory, or
 * parsing a user's CSV / JSONL manifest of `path,label[,split]`. Produces
 * candidates (absolute path, display path, label, optional predefined split)
 * and, for manifests, every syntax error with `file:line:col`.
 *
 * Does not read or probe image bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { err, ok, type Result } from '../../src/result.js';
import { SPLITS, type Split } from './splits.js';
import type { PathFilter } from './globs.js';
import type { DepFiles } from '../types.js';

/** One file ingest will look at. */
export interface Candidate {
  /** Absolute path. */
  readonly abs: string;
  /** `/`-separated path relative to the source root (or manifest directory); used for display and sorting. */
  readonly rel: string;
  readonly label: string;
  readonly split?: Split;
}

/** Result of walking a source directory. */
export interface DirListing {
  readonly candidates: Candidate[];
  /** Files directly under the root (no class folder). */
  readonly unlabelled: string[];
  /** Symlinks skipped because `follow_symlinks` is false. */
  readonly skippedSymlinks: string[];
  /**
   * The root's real path (symlinks resolved) plus a separator: `realRoot + rel` names the same
   * file as a candidate's `abs`, for stats that need not resolve a symlinked root again each
   * time (a workspace `data -> /mnt/images` link costs every stat a longer path walk).
   */
  readonly realRoot: string;
}

/**
 * Walks `root` (sorted, deterministic); the first path segment is the class.
 * Synchronous underneath (`readdirSync` withFileTypes, as the engine's hasher
 * walks): a 10k-file tree lists in a few ms, several times faster than one
 * promise per directory entry. Absolute paths are built by concatenation from
 * the normalised root, giving the strings `path.join` would.
 */
export async function listClassFolders(root: string, filter: PathFilter, followSymlinks: boolean): Promise<DirListing> {
  const candidates: Candidate[] = [];
  const unlabelled: string[] = [];
  const skippedSymlinks: string[] = [];
  const realRoot = fs.realpathSync.native(root);
  const seenDirs = new Set<string>([realRoot]);
  const walk = (dirPrefix: string, relDir: string): void => {
    const entries = fs.readdirSync(dirPrefix, { withFileTypes: true });
    entries.sort((a, b) => compareCodeUnits(a.name, b.name));
    for (const e of entries) {
      const abs = dirPrefix + e.name;
      const rel = relDir === '' ? e.name : `${relDir}/${e.name}`;
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        if (!followSymlinks) {
          skippedSymlinks.push(rel);
          continue;
        }
        try {
          const st = fs.statSync(abs);
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          isFile = true; // a dangling link: let the probe report it as unreadable
        }
      }
      if (isDir) {
        const real = fs.realpathSync.native(abs);
        if (seenDirs.has(real)) continue; // symlink cycle
        seenDirs.add(real);
        walk(abs + path.sep, rel);
      } else if (isFile) {
        if (!filter.accepts(rel)) continue;
        if (relDir === '') unlabelled.push(rel);
        else candidates.push({ abs, rel, label: rel.slice(0, rel.indexOf('/')) });
      }
    }
  };
  const base = path.normalize(root);
  walk(base.endsWith(path.sep) ? base : base + path.sep, '');
  return { candidates, unlabelled, skippedSymlinks, realRoot: realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep };
}

/** `DirListing` plus what the engine knew of each candidate (`classFoldersFromListing`). */
export interface KnownDirListing extends DirListing {
  /** Content sha256 and byte size of each candidate, parallel to `candidates`. */
  readonly known: readonly { readonly sha256: string; readonly size: number }[];
}

/**
 * What `listClassFolders(root, filter, …)` returns, made from the engine's
 * listing of `root` (`StageContext.depListings`) instead of walking: the same
 * candidates in the same order, with their hashes and sizes. Only for a plain
 * listing (no symbolic links), so `skippedSymlinks` is empty whatever
 * `follow_symlinks` says. Reads no file (one realpath of the root).
 */
export function classFoldersFromListing(root: string, listing: DepFiles, filter: PathFilter): KnownDirListing {
  const candidates: Candidate[] = [];
  const known: { sha256: string; size: number }[] = [];
  const unlabelled: string[] = [];
  const base = path.normalize(root);
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  const { rels, sha256, sizes } = listing;
  for (let i = 0; i < rels.length; i++) {
    const rel = rels[i]!;
    if (!filter.accepts(rel)) continue;
    const slash = rel.indexOf('/');
    if (slash === -1) {
      unlabelled.push(rel);
      continue;
    }
    candidates.push({ abs: prefix + (path.sep === '/' ? rel : rel.replaceAll('/', path.sep)), rel, label: rel.slice(0, slash) });
    known.push({ sha256: sha256[i]!, size: sizes[i]! });
  }
  const realRoot = fs.realpathSync.native(root);
  return { candidates, unlabelled, skippedSymlinks: [], realRoot: realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep, known };
}

/** Parses a CSV (`.csv`, `.tsv` is not supported) or JSONL (`.jsonl`, `.ndjson`) manifest. Errors carry `file:line:col`. */
export function parseSourceManifest(file: string, text: string, filter: PathFilter): Result<Candidate[], string[]> {
  const base = path.dirname(file);
  const rows: { line: number; col: (field: string) => number; path: unknown; label: unknown; split: unknown }[] = [];
  const errors: string[] = [];
  if (/\.(jsonl|ndjson)$/i.test(file)) {
    text.split('\n').forEach((raw, i) => {
      if (raw.trim() === '') return;
      let obj: unknown;
      try {
        obj = JSON.parse(raw);
      } catch (e) {
        errors.push(`${file}:${i + 1}:1 invalid JSON: ${(e as Error).message}`);
        return;
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
        errors.push(`${file}:${i + 1}:1 expected an object {"path", "label", "split"?}`);
        return;
      }
      const o = obj as Record<string, unknown>;
      rows.push({ line: i + 1, col: (f) => Math.max(1, raw.indexOf(`"${f}"`) + 1), path: o['path'], label: o['label'], split: o['split'] });
    });
  } else {
    const records = parseCsv(text);
    let columns = { path: 0, label: 1, split: 2 as number | undefined };
    let start = 0;
    const first = records[0];
    if (first !== undefined && first.cells[0]?.value.trim().toLowerCase() === 'path') {
      const names = first.cells.map((c) => c.value.trim().toLowerCase());
      const li = names.indexOf('label');
      if (li === -1) errors.push(`${file}:1:1 header has no "label" column`);
      const si = names.indexOf('split');
      columns = { path: 0, label: li, split: si === -1 ? undefined : si };
      start = 1;
    }
    for (const rec of records.slice(start)) {
      if (rec.cells.length === 1 && rec.cells[0]!.value.trim() === '') continue;
      const cell = (i: number | undefined) => (i === undefined ? undefined : rec.cells[i]?.value);
      const colOf = (i: number | undefined) => (i === undefined ? 1 : rec.cells[i]?.col ?? rec.cells[rec.cells.length - 1]!.col);
      rows.push({
        line: rec.line,
        col: (f) => colOf(f === 'path' ? columns.path : f === 'label' ? columns.label : columns.split),
        path: cell(columns.path),
        label: cell(columns.label),
        split: cell(columns.split),
      });
    }
  }
  const candidates: Candidate[] = [];
  for (const row of rows) {
    const where = (f: string) => `${file}:${row.line}:${row.col(f)}`;
    if (typeof row.path !== 'string' || row.path.trim() === '') {
      errors.push(`${where('path')} missing path`);
      continue;
    }
    if (typeof row.label !== 'string' || row.label.trim() === '') {
      errors.push(`${where('label')} missing label for ${row.path}`);
      continue;
    }
    let split: Split | undefined;
    if (row.split !== undefined && row.split !== null && String(row.split).trim() !== '') {
      const s = String(row.split).trim();
      if (!(SPLITS as readonly string[]).includes(s)) {
        errors.push(`${where('split')} unknown split ${JSON.stringify(s)} (expected one of ${SPLITS.join(', ')})`);
        continue;
      }
      split = s as Split;
    }
    const relRaw = row.path.trim().replace(/\\/g, '/');
    const abs = path.resolve(base, relRaw);
    const rel = path.isAbsolute(relRaw) ? relRaw : path.posix.normalize(relRaw);
    if (!filter.accepts(rel)) continue;
    candidates.push(split === undefined ? { abs, rel, label: row.label.trim() } : { abs, rel, label: row.label.trim(), split });
  }
  if (errors.length > 0) return err(errors);
  return ok(candidates);
}

/** One CSV record: cells with their 1-based start columns. */
interface CsvRecord {
  readonly line: number;
  readonly cells: { value: string; col: number }[];
}

/** RFC 4180 CSV (quotes, doubled quotes, CRLF); records keep their line and column numbers. */
export function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let line = 1;
  let col = 1;
  let cells: { value: string; col: number }[] = [];
  let value = '';
  let cellCol = 1;
  let recLine = 1;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        value += '"';
        i++;
        col += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else value += c;
      if (c === '\n') {
        line++;
        col = 1;
      } else col++;
      continue;
    }
    if (c === '"' && value === '') {
      quoted = true;
      col++;
    } else if (c === ',') {
      cells.push({ value, col: cellCol });
      value = '';
      col++;
      cellCol = col;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      cells.push({ value, col: cellCol });
      records.push({ line: recLine, cells });
      cells = [];
      value = '';
      line++;
      col = 1;
      cellCol = 1;
      recLine = line;
    } else {
      value += c;
      col++;
    }
  }
  if (value !== '' || cells.length > 0) {
    cells.push({ value, col: cellCol });
    records.push({ line: recLine, cells });
  }
  return records;
}

/** Plain code-unit string order: locale-independent, so the class list never reorders between machines. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
