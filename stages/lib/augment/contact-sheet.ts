/**
 * The preview contact sheet: one row per previewed image (the original, then
 * its variants), rows grouped by class with the class name in a left strip.
 * Tiles are box-downscaled by an integer factor so the longest side is at
 * most `MAX_TILE` pixels, or enlarged by an integer factor (nearest
 * neighbour) when the images are smaller than `MIN_TILE`, e.g. 28x28 MNIST;
 * the sheet is always RGB.
 *
 * This module lays out and encodes (sharp); it does not choose which images
 * to show or compute variants.
 */
import { loadSharp } from '../lazy-modules.js';
import type { ImageShape } from './warp.js';

/** Longest tile side in the sheet. */
export const MAX_TILE = 128;
/** Images whose longest side is below this are enlarged (nearest neighbour, integer factor) toward `MAX_TILE`. */
export const MIN_TILE = 64;
/** Gap between tiles and around the sheet, in pixels. */
export const SHEET_PAD = 4;
/** Width of the label strip on the left. */
export const LABEL_WIDTH = 120;
/** Minimum row height, so a label fits even for tiny images. */
export const MIN_ROW_HEIGHT = 16;
const BACKGROUND = 40;

/** One row of the sheet. */
export interface SheetRow {
  /** Text in the label strip (the class name). */
  readonly label: string;
  /** Original first, then variants; each HWC uint8 of the sheet's image shape. */
  readonly tiles: readonly Uint8Array[];
}

/** Pixel geometry of a sheet. */
export interface SheetGeometry {
  readonly tileHeight: number;
  readonly tileWidth: number;
  /** Integer downscale factor from image to tile (1 = none). */
  readonly factor: number;
  /** Integer enlargement factor from image to tile (1 = none). */
  readonly upscale: number;
  readonly rowHeight: number;
  readonly width: number;
  readonly height: number;
}

/** Geometry for `rows` rows of at most `columns` tiles of images of `shape`. */
export function sheetGeometry(shape: ImageShape, rows: number, columns: number): SheetGeometry {
  const longest = Math.max(shape.height, shape.width);
  const factor = Math.max(1, Math.ceil(longest / MAX_TILE));
  const upscale = longest < MIN_TILE ? Math.max(1, Math.floor(MAX_TILE / longest)) : 1;
  const tileHeight = upscale > 1 ? shape.height * upscale : Math.max(1, Math.floor(shape.height / factor));
  const tileWidth = upscale > 1 ? shape.width * upscale : Math.max(1, Math.floor(shape.width / factor));
  const rowHeight = Math.max(tileHeight, MIN_ROW_HEIGHT);
  return {
    tileHeight,
    tileWidth,
    factor,
    upscale,
    rowHeight,
    width: LABEL_WIDTH + SHEET_PAD + columns * (tileWidth + SHEET_PAD),
    height: SHEET_PAD + rows * (rowHeight + SHEET_PAD),
  };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch]!);
}

/** Renders the sheet as a PNG. Throws on an empty `rows` (nothing to show is the caller's case). */
export async function renderContactSheet(shape: ImageShape, rows: readonly SheetRow[]): Promise<{ png: Buffer; geometry: SheetGeometry }> {
  if (rows.length === 0) throw new Error('contact sheet needs at least one row');
  const columns = Math.max(...rows.map((r) => r.tiles.length));
  const g = sheetGeometry(shape, rows.length, columns);
  const canvas = Buffer.alloc(g.width * g.height * 3, BACKGROUND);
  const { height: h, width: w, channels: ch } = shape;
  rows.forEach((row, ri) => {
    const top = SHEET_PAD + ri * (g.rowHeight + SHEET_PAD) + Math.floor((g.rowHeight - g.tileHeight) / 2);
    row.tiles.forEach((tile, ci) => {
      const left = LABEL_WIDTH + SHEET_PAD + ci * (g.tileWidth + SHEET_PAD);
      for (let ty = 0; ty < g.tileHeight; ty++) {
        const y0 = Math.floor(ty / g.upscale) * g.factor;
        const y1 = Math.min(h, y0 + g.factor);
        for (let tx = 0; tx < g.tileWidth; tx++) {
          const x0 = Math.floor(tx / g.upscale) * g.factor;
          const x1 = Math.min(w, x0 + g.factor);
          const o = ((top + ty) * g.width + left + tx) * 3;
          for (let k = 0; k < 3; k++) {
            const kk = ch === 1 ? 0 : k;
            let sum = 0;
            for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += tile[(y * w + x) * ch + kk]!;
            canvas[o + k] = Math.round(sum / ((y1 - y0) * (x1 - x0)));
          }
        }
      }
    });
  });
  const fontSize = Math.min(14, g.rowHeight - 2);
  const labels = rows
    .map((row, ri) => {
      const y = SHEET_PAD + ri * (g.rowHeight + SHEET_PAD) + Math.floor(g.rowHeight / 2) + Math.floor(fontSize / 3);
      return `<text x="${SHEET_PAD}" y="${y}" font-family="sans-serif" font-size="${fontSize}" fill="#e0e0e0">${escapeXml(row.label.slice(0, 18))}</text>`;
    })
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${LABEL_WIDTH}" height="${g.height}">${labels}</svg>`;
  const sharp = loadSharp();
  // Composite to raw first: the SVG brings an alpha channel, which the sheet does not need.
  const composed = await sharp(canvas, { raw: { width: g.width, height: g.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }])
    .raw()
    .toBuffer({ resolveWithObject: true });
  const png = await sharp(composed.data, { raw: { width: g.width, height: g.height, channels: composed.info.channels } })
    .removeAlpha()
    .png()
    .toBuffer();
  return { png, geometry: g };
}
