/**
 * `DepFiles` (a directory dependency's listing, `StageContext.depListings`)
 * to and from the file the engine hands a stage host (`RunRequest.depListingsFile`),
 * in the form `EncodedDepFiles`. A file rather than the request itself: a
 * 10k-file listing is about a megabyte, and a pipe takes 64 KiB at a time,
 * each further piece waiting for the engine's event loop, which is busy just
 * then. Decoding checks the shape (parallel lengths, 64-hex hashes) and
 * throws on a mismatch: the engine wrote it, so a bad one is a bug. Does not
 * walk or hash anything.
 */
import fs from 'node:fs';
import type { DepFiles } from '../../stages/types.js';
import type { EncodedDepFiles } from './protocol.js';

/** Writes `listings` (directory → files) to `file` for a stage host; plain write (a temp file read once, soon). */
export function writeDepListings(file: string, listings: Readonly<Record<string, DepFiles>>): void {
  const encoded: Record<string, EncodedDepFiles> = {};
  for (const [dir, files] of Object.entries(listings)) encoded[dir] = encodeDepFiles(files);
  fs.writeFileSync(file, JSON.stringify(encoded));
}

/** Reads what `writeDepListings` wrote. */
export function readDepListings(file: string): Record<string, DepFiles> {
  const encoded = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, EncodedDepFiles>;
  const out: Record<string, DepFiles> = {};
  for (const [dir, e] of Object.entries(encoded)) out[dir] = decodeDepFiles(e);
  return out;
}

const HEX64 = /^[0-9a-f]*$/;

/** The pipe form of `files`. Throws for a path containing NUL (no file system allows one). */
export function encodeDepFiles(files: DepFiles): EncodedDepFiles {
  if (files.rels.length !== files.sha256.length || files.rels.length !== files.sizes.length) throw new Error('dep listing: rels, sha256 and sizes differ in length');
  for (const r of files.rels) if (r.includes('\0')) throw new Error(`dep listing: path with NUL: ${JSON.stringify(r)}`);
  return { rels: files.rels.join('\0'), sha256: files.sha256.join(''), sizes: files.sizes };
}

/** The `DepFiles` `encodeDepFiles` made. */
export function decodeDepFiles(e: EncodedDepFiles): DepFiles {
  const n = e.sizes.length;
  const rels = n === 0 ? [] : e.rels.split('\0');
  if (rels.length !== n || e.sha256.length !== 64 * n || !HEX64.test(e.sha256)) throw new Error(`dep listing: malformed (${rels.length} paths, ${e.sha256.length / 64} hashes, ${n} sizes)`);
  const sha256 = new Array<string>(n);
  for (let i = 0; i < n; i++) sha256[i] = e.sha256.slice(64 * i, 64 * i + 64);
  return { rels, sha256, sizes: e.sizes };
}
