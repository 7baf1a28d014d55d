/**
 * Probing one image file's bytes: what it is (format, dimensions) or exactly
 * why it cannot be used (a `ProbeFailureReason`). Used by `ingest` for every
 * file and by `resize` / `predict` to classify decode errors the same way.
 *
 * The probe reads the header with sharp, checks the pixel count against a limit
 * BEFORE decoding (so a decompression bomb never allocates its pixels), and for
 * formats decoded a whole frame at a time (GIF, interlaced PNG, HEIF/AVIF,
 * progressive JPEG) the
 * frame's bytes against the same number (`wholeFrameBytesPerPixel`), then
 * decodes once at a tiny size with `failOn: 'truncated'` to catch truncated or
 * corrupt data (JPEG uses shrink-on-load, so this costs ~1/8 of a full decode).
 * WebP and TIFF containers are also checked for truncation from their headers
 * (`containerTruncation`), which their decoders miss or misreport.
 *
 * Does not hash, read files, or decide labels.
 */
import type sharp from 'sharp';
import { loadSharp } from './lazy-modules.js';
import { err, ok, type Result } from '../../src/result.js';

/** Why bytes are not a usable image. Kebab-case; every switch over it ends in `unreachable`. */
export const PROBE_FAILURE_REASONS = [
  /** 0-byte file. */
  'empty',
  /** A recognised image whose data ends early. */
  'truncated',
  /** No known image signature (e.g. a text file named `.jpg`). */
  'not-an-image',
  /** A real image format this build cannot or will not decode (BMP, ICO, PSD, HEIC, SVG, PDF, ...). */
  'unsupported-format',
  /** More pixels than the configured `max_pixels` limit (decompression-bomb guard); never decoded. */
  'too-many-pixels',
  /** A recognised format whose data the decoder rejects for a reason other than truncation. */
  'corrupt',
  /** The file could not be read (permissions, missing, a directory, ...). */
  'unreadable',
] as const;
/** One probe failure reason (see `PROBE_FAILURE_REASONS`). */
export type ProbeFailureReason = (typeof PROBE_FAILURE_REASONS)[number];

/** A probe failure: the reason plus the decoder's message (for the rejects file). */
export interface ProbeFailure {
  readonly reason: ProbeFailureReason;
  readonly detail: string;
}

/** What a successful probe learned. */
export interface ProbeInfo {
  /** Width after EXIF orientation. */
  readonly width: number;
  /** Height after EXIF orientation. */
  readonly height: number;
  /** sharp's format id: one of `ACCEPTED_FORMATS`. */
  readonly format: AcceptedFormat;
}

/**
 * Formats the data stages accept. SVG is refused on purpose: it is a vector
 * format whose pixels depend on a rasterisation density, and it can reference
 * external resources. `heif` covers AVIF (the prebuilt libvips has no HEVC decoder,
 * so HEIC photos fail as `unsupported-format`).
 */
export const ACCEPTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'] as const;
/** One accepted format id. */
export type AcceptedFormat = (typeof ACCEPTED_FORMATS)[number];

/** Default pixel limit: sharp's own default `limitInputPixels` (0x3FFF × 0x3FFF). */
export const DEFAULT_MAX_PIXELS = 268402689;

/** Up to this many pixels a non-JPEG is decoded whole by the probe (at most a few MB). */
const SMALL_IMAGE_PIXELS = 1 << 20;

/** Recognisable signatures of image formats sharp may not decode, for telling `unsupported-format` from `not-an-image`. */
const SIGNATURES: readonly { readonly name: string; readonly test: (b: Uint8Array) => boolean }[] = [
  { name: 'bmp', test: (b) => b[0] === 0x42 && b[1] === 0x4d },
  { name: 'ico', test: (b) => b[0] === 0 && b[1] === 0 && (b[2] === 1 || b[2] === 2) && b[3] === 0 },
  { name: 'psd', test: (b) => ascii(b, 0, 4) === '8BPS' },
  { name: 'pdf', test: (b) => ascii(b, 0, 5) === '%PDF-' },
  { name: 'jxl', test: (b) => (b[0] === 0xff && b[1] === 0x0a) || ascii(b, 4, 8) === 'JXL ' },
  { name: 'jp2', test: (b) => ascii(b, 4, 8) === 'jP  ' || (b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51) },
  { name: 'heif', test: (b) => ascii(b, 4, 8) === 'ftyp' && /^(heic|heix|hevc|hevx|mif1|msf1|avif|avis)$/.test(ascii(b, 8, 12)) },
  { name: 'exr', test: (b) => b[0] === 0x76 && b[1] === 0x2f && b[2] === 0x31 && b[3] === 0x01 },
  { name: 'qoi', test: (b) => ascii(b, 0, 4) === 'qoif' },
  { name: 'jpeg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { name: 'png', test: (b) => b[0] === 0x89 && ascii(b, 1, 4) === 'PNG' },
  { name: 'gif', test: (b) => ascii(b, 0, 4) === 'GIF8' },
  { name: 'webp', test: (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP' },
  { name: 'tiff', test: (b) => ascii(b, 0, 4) === 'II*\u0000' || ascii(b, 0, 4) === 'MM\u0000*' },
];

/** The image format a buffer's signature claims, if any (independent of sharp). */
export function sniffFormat(buf: Uint8Array): string | undefined {
  return SIGNATURES.find((s) => s.test(buf))?.name;
}

/** Maps a sharp/libvips error message on `buf` to a failure reason. */
export function classifyDecodeError(buf: Uint8Array, e: unknown): ProbeFailure {
  const detail = e instanceof Error ? e.message : String(e);
  if (buf.length === 0) return { reason: 'empty', detail: 'file is empty' };
  if (/pixel limit/i.test(detail)) return { reason: 'too-many-pixels', detail };
  if (/premature end|end of stream|truncat|unexpected end|not enough data|short read|out of data|read error|EOF/i.test(detail)) {
    return { reason: 'truncated', detail };
  }
  if (/unsupported image format/i.test(detail)) {
    const sniffed = sniffFormat(buf);
    if (sniffed === undefined) return { reason: 'not-an-image', detail: 'no known image signature' };
    // A format we do decode (e.g. TIFF) that libvips cannot even identify is damaged, not unsupported.
    if (sniffed !== 'heif' && (ACCEPTED_FORMATS as readonly string[]).includes(sniffed)) {
      return { reason: 'corrupt', detail: `${sniffed} signature, but its header cannot be read (${detail})` };
    }
    return { reason: 'unsupported-format', detail: `${sniffed} signature, but no decoder for it (${detail})` };
  }
  if (/no decoding plugin|unsupported (codec|compression|feature)|not supported|compression format/i.test(detail)) {
    return { reason: 'unsupported-format', detail };
  }
  return { reason: 'corrupt', detail };
}

/**
 * The sharp input options every data stage uses for one file (first frame
 * only, lenient on warnings). TIFF fails on errors too: libtiff reports a
 * damaged strip (e.g. a JPEG-in-TIFF missing its tables) as an error and
 * libvips then returns black pixels instead of failing.
 */
export function sharpInputOptions(maxPixels: number, format?: string): sharp.SharpOptions {
  return { failOn: format === 'tiff' ? 'error' : 'truncated', limitInputPixels: maxPixels, pages: 1, page: 0 };
}

/**
 * Container-level truncation that the decoders miss or misreport, checked from
 * the bytes alone: a WebP whose RIFF header declares more bytes than the file
 * has (libwebp says only "unable to parse image"), and a TIFF whose first
 * directory or strip/tile data lies past the end of the file (libvips reports
 * "unsupported image format", or decodes the missing strips as black).
 * Returns the failure, or undefined when the container is whole or unknown.
 */
export function containerTruncation(buf: Uint8Array): ProbeFailure | undefined {
  const format = sniffFormat(buf);
  if (format === 'webp') {
    const declared = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(4, true) + 8;
    return declared > buf.length ? { reason: 'truncated', detail: `WebP header declares ${declared} bytes but the file has ${buf.length}` } : undefined;
  }
  if (format === 'tiff') return tiffTruncation(buf);
  return undefined;
}

/** Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ..., LONG8, SLONG8, IFD8). */
const TIFF_TYPE_BYTES: Readonly<Record<number, number>> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };
/** TIFF tags naming where the first image's data lies. */
const TIFF_STRIP_OFFSETS = 273;
const TIFF_STRIP_BYTE_COUNTS = 279;
const TIFF_TILE_OFFSETS = 324;
const TIFF_TILE_BYTE_COUNTS = 325;

/** See `containerTruncation`: classic TIFF and BigTIFF, first directory only (the page the stages decode). */
function tiffTruncation(buf: Uint8Array): ProbeFailure | undefined {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = buf[0] === 0x49;
  const big = v.byteLength >= 4 && v.getUint16(2, le) === 43;
  const truncated = (what: string, end: number): ProbeFailure => ({ reason: 'truncated', detail: `TIFF ${what} ends at byte ${end} but the file has ${buf.length}` });
  const offsetBytes = big ? 8 : 4;
  const readOffset = (at: number): number => (big ? Number(v.getBigUint64(at, le)) : v.getUint32(at, le));
  const headerEnd = big ? 16 : 8;
  if (buf.length < headerEnd) return truncated('header', headerEnd);
  const ifd = readOffset(big ? 8 : 4);
  const countBytes = big ? 8 : 2;
  if (ifd + countBytes > buf.length) return truncated('first directory', ifd + countBytes);
  const entries = big ? Number(v.getBigUint64(ifd, le)) : v.getUint16(ifd, le);
  const entryBytes = big ? 20 : 12;
  const ifdEnd = ifd + countBytes + entries * entryBytes;
  if (ifdEnd > buf.length) return truncated('first directory', ifdEnd);
  const arrays = new Map<number, number[] | undefined>();
  for (let i = 0; i < entries; i++) {
    const at = ifd + countBytes + i * entryBytes;
    const tag = v.getUint16(at, le);
    const type = v.getUint16(at + 2, le);
    const count = big ? Number(v.getBigUint64(at + 4, le)) : v.getUint32(at + 4, le);
    const size = TIFF_TYPE_BYTES[type] ?? 0;
    const valueAt = at + 4 + (big ? 8 : 4);
    // Any tag's out-of-line value past the end (e.g. JPEGTables: libtiff then decodes black) means truncation.
    const start = size * count <= offsetBytes ? valueAt : readOffset(valueAt);
    if (size > 0 && start + size * count > buf.length) return truncated(`value of tag ${tag}`, start + size * count);
    if (tag !== TIFF_STRIP_OFFSETS && tag !== TIFF_STRIP_BYTE_COUNTS && tag !== TIFF_TILE_OFFSETS && tag !== TIFF_TILE_BYTE_COUNTS) continue;
    if ((size !== 2 && size !== 4 && size !== 8) || count > 1 << 24) {
      arrays.set(tag, undefined); // an odd type or count: leave it to the decoder
      continue;
    }
    const values: number[] = [];
    for (let k = 0; k < count; k++) {
      const p = start + k * size;
      values.push(size === 2 ? v.getUint16(p, le) : size === 4 ? v.getUint32(p, le) : Number(v.getBigUint64(p, le)));
    }
    arrays.set(tag, values);
  }
  for (const [offTag, lenTag] of [
    [TIFF_STRIP_OFFSETS, TIFF_STRIP_BYTE_COUNTS],
    [TIFF_TILE_OFFSETS, TIFF_TILE_BYTE_COUNTS],
  ] as const) {
    const offs = arrays.get(offTag);
    const lens = arrays.get(lenTag);
    if (offs === undefined || lens === undefined || offs.length !== lens.length) continue;
    let end = 0;
    for (let k = 0; k < offs.length; k++) end = Math.max(end, offs[k]! + lens[k]!);
    if (end > buf.length) return truncated('image data', end);
  }
  return undefined;
}

/**
 * Bytes per pixel of the frame a decoder holds whole before anything can
 * shrink it, or undefined for decoders that stream rows or shrink on load
 * (baseline JPEG, non-interlaced PNG, TIFF strips and tiles, WebP: a
 * 16000x16000 PNG, TIFF or WebP probes in under 135 MiB of RSS). Measured here
 * (sharp 0.34, libvips 8.17), peak RSS above node's own: GIF ~4 (an RGBA frame;
 * a 174 KB 16000x16000 GIF took 1 GiB and 5 s), interlaced PNG = channels x
 * bytes per sample, HEIF/AVIF ~18 (libheif's planes plus the RGB copy; a
 * 786-byte 6000x6000 AVIF took 620 MiB and 4 s), progressive JPEG = 2 bytes
 * per DCT coefficient (3 per pixel at 4:2:0; an 8000x8000 one took 185 MiB).
 * Such files may use at most `max_pixels` bytes, so the pixel limit bounds
 * their memory as well.
 */
export function wholeFrameBytesPerPixel(meta: sharp.Metadata): number | undefined {
  const sampleBytes = meta.depth === 'ushort' || (meta.bitsPerSample ?? 8) > 8 ? 2 : 1;
  switch (meta.format as string | undefined) {
    case 'gif':
      return 4;
    case 'png':
      return meta.isProgressive === true ? (meta.channels ?? 4) * sampleBytes : undefined;
    case 'heif':
      return 18;
    case 'jpeg': {
      // libjpeg keeps every 2-byte DCT coefficient of a progressive JPEG until its last scan.
      if (meta.isProgressive !== true) return undefined;
      const sub = meta.chromaSubsampling ?? '';
      const colour = (meta.channels ?? 3) === 1 ? 1 : /^4:(2:0|1:1)/.test(sub) ? 1.5 : /^4:(2:2|4:0)/.test(sub) ? 2 : 3;
      return 2 * (colour + ((meta.channels ?? 3) === 4 ? 1 : 0));
    }
    default:
      return undefined;
  }
}

/** Probes one image's bytes (see module doc). */
export async function probeImage(buf: Buffer, maxPixels: number = DEFAULT_MAX_PIXELS): Promise<Result<ProbeInfo, ProbeFailure>> {
  if (buf.length === 0) return err({ reason: 'empty', detail: 'file is empty' });
  const cut = containerTruncation(buf);
  if (cut !== undefined) return err(cut);
  const sharp = loadSharp();
  let meta: sharp.Metadata;
  try {
    // No pixel limit for the header read: we want the real dimensions to report.
    meta = await sharp(buf, { limitInputPixels: false, failOn: 'truncated' }).metadata();
  } catch (e) {
    return err(classifyDecodeError(buf, e));
  }
  const format = meta.format as string | undefined;
  if (format === undefined || !(ACCEPTED_FORMATS as readonly string[]).includes(format)) {
    return err({ reason: 'unsupported-format', detail: `${format ?? 'unknown'} images are not accepted (accepted: ${ACCEPTED_FORMATS.join(', ')})` });
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width <= 0 || height <= 0) return err({ reason: 'corrupt', detail: `header declares ${width}x${height} pixels` });
  if (width * height > maxPixels) {
    return err({ reason: 'too-many-pixels', detail: `${width}x${height} = ${width * height} pixels exceeds max_pixels ${maxPixels}` });
  }
  const perPixel = wholeFrameBytesPerPixel(meta);
  if (perPixel !== undefined && width * height * perPixel > maxPixels) {
    const bytes = width * height * perPixel;
    return err({
      reason: 'too-many-pixels',
      detail: `${width}x${height} ${format} is decoded whole, about ${Math.round(bytes / 2 ** 20)} MiB (${perPixel} bytes per pixel); formats decoded whole may use at most max_pixels (${maxPixels}) bytes`,
    });
  }
  try {
    // Cheapest full check (measured, bench/data.bench.ts): JPEG shrinks on load (1/8 scale, every
    // entropy-coded byte still read); small images decode whole (sharp's per-call cost dominates);
    // large non-JPEGs stream through a tiny resize so their pixels are never all in memory.
    const decode = sharp(buf, sharpInputOptions(maxPixels, format));
    if (format === 'jpeg' || width * height > SMALL_IMAGE_PIXELS) await decode.resize(8, 8, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer();
    else await decode.raw().toBuffer();
  } catch (e) {
    return err(classifyDecodeError(buf, e));
  }
  const oriented = meta.autoOrient ?? { width, height };
  return ok({ width: oriented.width, height: oriented.height, format: format as AcceptedFormat });
}

function ascii(b: Uint8Array, start: number, end: number): string {
  if (b.length < end) return '';
  return String.fromCharCode(...b.subarray(start, end));
}
