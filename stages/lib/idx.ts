/**
 * A small reader for the IDX format used by MNIST and Fashion-MNIST
 * (`*-idx3-ubyte.gz` images, `*-idx1-ubyte.gz` labels), gzipped or not.
 * Layout: two zero bytes, a type byte (0x08 = uint8), a dimension count, then
 * that many big-endian uint32 sizes and the row-major data.
 *
 * Only uint8 data is supported (all MNIST-family files). Does not write IDX and
 * does not know class names; see `FASHION_MNIST_CLASSES`.
 */
import fs from 'node:fs/promises';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { err, ok, type Result } from '../../src/result.js';

const gunzip = promisify(zlib.gunzip);

/** A decoded IDX tensor of uint8 values. */
export interface IdxArray {
  /** Dimension sizes, e.g. `[60000, 28, 28]` for images or `[60000]` for labels. */
  readonly dims: readonly number[];
  /** Row-major values (a view into the decompressed file). */
  readonly data: Uint8Array;
}

/** Fashion-MNIST class names by label index, spelled to be safe folder names. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt_top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle_boot',
] as const;

/** Parses an IDX buffer (already decompressed). `name` is used in messages. */
export function parseIdx(buf: Uint8Array, name: string): Result<IdxArray, string> {
  if (buf.length < 4) return err(`${name}: not an IDX file (only ${buf.length} bytes)`);
  if (buf[0] !== 0 || buf[1] !== 0) return err(`${name}: not an IDX file (magic starts with 0x${hex(buf[0]!)}${hex(buf[1]!)}, expected 0x0000)`);
  if (buf[2] !== 0x08) return err(`${name}: unsupported IDX data type 0x${hex(buf[2]!)} (only 0x08 = uint8 is supported)`);
  const ndim = buf[3]!;
  if (ndim === 0) return err(`${name}: IDX file declares 0 dimensions`);
  const headerBytes = 4 + 4 * ndim;
  if (buf.length < headerBytes) return err(`${name}: truncated IDX header (${buf.length} bytes, need ${headerBytes})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const have = buf.length - headerBytes;
  if (have !== count) {
    return err(`${name}: IDX dims [${dims.join(', ')}] need ${count} data bytes but the file has ${have}${have < count ? ' (truncated?)' : ''}`);
  }
  return ok({ dims, data: buf.subarray(headerBytes) });
}

/** Reads an IDX file from disk, gunzipping when it starts with the gzip magic. */
export async function readIdxFile(file: string): Promise<Result<IdxArray, string>> {
  let raw: Buffer;
  try {
    raw = await fs.readFile(file);
  } catch (e) {
    return err(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = await gunzip(raw);
    } catch (e) {
      return err(`${file}: gzip data is corrupt (${(e as Error).message})`);
    }
  }
  return parseIdx(raw, file);
}

/** A labelled image set read from an images file plus a labels file. */
export interface IdxImageSet {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** `count * height * width` grayscale pixels, row-major. */
  readonly pixels: Uint8Array;
  /** `count` labels. */
  readonly labels: Uint8Array;
}

/** Reads and cross-checks an IDX3 images file and an IDX1 labels file. */
export async function readIdxImageSet(imagesFile: string, labelsFile: string, classCount: number): Promise<Result<IdxImageSet, string>> {
  const [images, labels] = await Promise.all([readIdxFile(imagesFile), readIdxFile(labelsFile)]);
  if (!images.ok) return images;
  if (!labels.ok) return labels;
  if (images.value.dims.length !== 3) return err(`${imagesFile}: expected a 3-dimensional IDX (images), got dims [${images.value.dims.join(', ')}]`);
  if (labels.value.dims.length !== 1) return err(`${labelsFile}: expected a 1-dimensional IDX (labels), got dims [${labels.value.dims.join(', ')}]`);
  const [count, height, width] = images.value.dims as [number, number, number];
  if (labels.value.dims[0] !== count) return err(`${labelsFile}: ${labels.value.dims[0]} labels but ${imagesFile} has ${count} images`);
  const bad = labels.value.data.findIndex((l) => l >= classCount);
  if (bad !== -1) return err(`${labelsFile}: label ${labels.value.data[bad]} at index ${bad} is out of range (${classCount} classes)`);
  return ok({ count, height, width, pixels: images.value.data, labels: labels.value.data });
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
