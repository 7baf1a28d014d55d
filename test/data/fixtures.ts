/**
 * Image fixtures for the data-stage tests, made with real sharp (and, for the
 * formats sharp cannot write, by hand): good images of every accepted kind and
 * one file of every bad kind ingest must reject.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';

/** A deterministic RGB test pattern (no Math.random): `w*h*3` bytes. */
export function pattern(w: number, h: number, seed = 1): Buffer {
  const b = Buffer.alloc(w * h * 3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = (s >>> 24) & 0xff;
  }
  return b;
}

/** A distinct small PNG per `seed`. */
export function pngOf(seed: number, w = 12, h = 10): Promise<Buffer> {
  return sharp(pattern(w, h, seed), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

/** A distinct noisy JPEG per `seed`. */
export function jpegOf(seed: number, w = 64, h = 48, quality = 90): Promise<Buffer> {
  return sharp(pattern(w, h, seed), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality }).toBuffer();
}

/** A valid 2x2 24-bit BMP (a real image format this sharp build cannot decode). */
export function bmp2x2(): Buffer {
  const rowBytes = 8; // 2 px * 3 bytes, padded to 4
  const data = Buffer.alloc(rowBytes * 2, 0x7f);
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(54 + data.length, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(2, 18);
  header.writeInt32LE(2, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  header.writeUInt32LE(data.length, 34);
  return Buffer.concat([header, data]);
}

/**
 * A valid, fully-decodable 1-bit grayscale PNG of `w`x`h` (all black), built by
 * streaming rows through deflate so neither this process nor the file is large
 * (30000x30000 is ~110 KB on disk, ~0.9 Gpx when decoded).
 */
export async function hugeBlankPng(file: string, w: number, h: number): Promise<void> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // grayscale
  const deflate = zlib.createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    deflate.on('end', resolve);
    deflate.on('error', reject);
  });
  const row = Buffer.alloc(1 + Math.ceil(w / 8)); // filter byte 0 + zero bits
  const rowsPerWrite = 256;
  const block = Buffer.concat(Array.from({ length: rowsPerWrite }, () => row));
  for (let y = 0; y < h; y += rowsPerWrite) {
    const n = Math.min(rowsPerWrite, h - y);
    if (!deflate.write(n === rowsPerWrite ? block : block.subarray(0, n * row.length))) {
      await new Promise((r) => deflate.once('drain', r));
    }
  }
  deflate.end();
  await done;
  const idat = Buffer.concat(chunks);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
  await fs.writeFile(file, png);
}

/** One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** Writes `files` (relative path → bytes) under `root`, creating folders. */
export async function writeTree(root: string, files: Record<string, Uint8Array | string>): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    const abs = path.join(root, rel);
    await fs.mkdir(path.dirname(abs), { recursive: true });
    await fs.writeFile(abs, data);
  }
}

/** The files `ingest` writes into its out dir. */
const INGEST_OUTPUT_FILES = ['manifest.jsonl', 'classes.json', 'rejects.jsonl', 'counts.json', 'conflicts.jsonl', 'duplicates.jsonl'];

/** Every file ingest wrote in `dir`, name → text: for byte-for-byte comparisons of two runs. */
export async function ingestOutputs(dir: string): Promise<Record<string, string>> {
  return Object.fromEntries(await Promise.all(INGEST_OUTPUT_FILES.map(async (f) => [f, await fs.readFile(path.join(dir, f), 'utf8')] as const)));
}

/**
 * A class tree (`writeTree` form) with one of each case ingest must settle:
 * a duplicate within a class (collapsed), the same bytes under two labels
 * (both rejected), a file that is no image, an empty file, and a hidden file
 * the default globs exclude. PNGs are drawn from seeds `seed`..`seed + 3`.
 */
export async function ingestEdgeCases(seed: number): Promise<Record<string, Buffer | string>> {
  const dup = await pngOf(seed);
  const shared = await pngOf(seed + 1);
  return {
    'cat/1.png': dup,
    'cat/2.png': dup,
    'cat/3.png': shared,
    'dog/4.png': shared,
    'dog/5.png': await pngOf(seed + 2),
    'dog/notes.png': 'not an image',
    'dog/empty.png': '',
    'dog/.hidden.png': await pngOf(seed + 3),
  };
}

/**
 * `count` PNGs in class folders `c0`..`c<classes-1>` (image i in class i mod
 * `classes`), named by i zero-padded to the width of the largest index so
 * path order is numeric order; pixels from seeds `seed + i`.
 */
export async function classPngs(count: number, classes: number, seed: number, w = 12, h = 10): Promise<Record<string, Buffer>> {
  const width = String(count - 1).length;
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < count; i++) files[`c${i % classes}/${String(i).padStart(width, '0')}.png`] = await pngOf(seed + i, w, h);
  return files;
}
