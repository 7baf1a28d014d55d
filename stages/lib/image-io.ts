/**
 * Decoding and resizing one image to model-ready uint8 pixels with sharp. The
 * core of the `resize` stage, exported so `predict` turns a user's image into
 * exactly the pixels the model was trained on.
 *
 * Steps, in sharp's pipeline order: decode the first frame (lenient on
 * warnings, strict on truncation, refusing more than `maxPixels`), apply the
 * EXIF orientation, convert to sRGB through the embedded ICC profile (CMYK,
 * Adobe RGB, 16-bit all end as 8-bit sRGB), flatten alpha onto `background`,
 * resize with `fit` and `kernel` (padding with `background` for `contain`),
 * then emit `channels` interleaved bands (1 = luminance).
 *
 * Does not cache, hash, or write files.
 */
import fs from 'node:fs/promises';
import type sharp from 'sharp';
import { loadSharp } from './lazy-modules.js';
import { err, ok, type Result } from '../../src/result.js';
import { classifyDecodeError, containerTruncation, DEFAULT_MAX_PIXELS, sharpInputOptions, sniffFormat, type ProbeFailure } from './probe.js';

/** How the image is fitted into `size`. */
export const FITS = ['cover', 'contain', 'fill'] as const;
/**
 * `cover`: scale to fill, centre-crop the overflow (Keras `crop_to_aspect_ratio=True`);
 * `contain`: scale to fit, pad with `background` (Keras `pad_to_aspect_ratio=True`);
 * `fill`: stretch, ignoring aspect ratio (Keras's default).
 */
export type Fit = (typeof FITS)[number];

/** sharp resampling kernels. */
export const KERNELS = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'] as const;
/** One resampling kernel (see `KERNELS`). */
export type Kernel = (typeof KERNELS)[number];

/** Everything that determines the output pixels (all of it goes into the per-image cache key). */
export interface ResizeOptions {
  /** Output `[height, width]`. */
  readonly size: readonly [number, number];
  readonly fit: Fit;
  readonly kernel: Kernel;
  /** 3 = RGB, 1 = luminance. */
  readonly channels: 1 | 3;
  /** `#rgb` or `#rrggbb`: alpha is flattened onto it and `contain` pads with it. */
  readonly background: string;
  /** Pixel-count limit for the decoded source (decompression-bomb guard). */
  readonly maxPixels?: number;
}

/** Resizes one image (bytes or a file path) to `height*width*channels` uint8 pixels, row-major NHWC. */
export async function resizeImage(input: Buffer | string, opts: ResizeOptions): Promise<Result<Uint8Array, ProbeFailure>> {
  if (typeof input === 'string') {
    // Read it ourselves: errors then classify by the bytes, and sharp is faster on buffers here.
    try {
      input = await fs.readFile(input);
    } catch (e) {
      return err({ reason: 'unreadable', detail: `cannot read ${input} (${(e as NodeJS.ErrnoException).code ?? String(e)})` });
    }
  }
  if (input.length === 0) return err({ reason: 'empty', detail: 'file is empty' });
  const cut = containerTruncation(input);
  if (cut !== undefined) return err(cut);
  const bytes = input;
  const [height, width] = opts.size;
  const background = parseHexColour(opts.background);
  const sharp = loadSharp();
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    let pipeline = sharp(input, sharpInputOptions(opts.maxPixels ?? DEFAULT_MAX_PIXELS, sniffFormat(input)))
      .autoOrient()
      .flatten({ background })
      .resize({ width, height, fit: opts.fit, kernel: opts.kernel, position: 'centre', background });
    pipeline = opts.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
    out = await pipeline.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    return err(classifyDecodeError(bytes, e));
  }
  const { info, data } = out;
  if (info.width !== width || info.height !== height || info.channels !== opts.channels) {
    // sharp always honours these for raw output; a mismatch is a bug, not bad input.
    throw new Error(`resize produced ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x${opts.channels}`);
  }
  return ok(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Parses `#rgb` / `#rrggbb` into sharp's colour object (alpha 1). Throws on a bad string: the schema rules those out. */
export function parseHexColour(s: string): { r: number; g: number; b: number; alpha: number } {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(s);
  if (m === null) throw new Error(`invalid colour ${JSON.stringify(s)} (expected #rgb or #rrggbb)`);
  const hex = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
  return { r: parseInt(hex.slice(0, 2), 16), g: parseInt(hex.slice(2, 4), 16), b: parseInt(hex.slice(4, 6), 16), alpha: 1 };
}
