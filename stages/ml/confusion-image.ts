/**
 * Renders a confusion matrix as SVG (cells shaded by the row-normalised
 * rate, with counts) and rasterises it to PNG with sharp, and builds the
 * misclassified-images HTML gallery (pixels embedded as data-URI PNGs).
 *
 * This module computes no metrics and reads no stage inputs.
 */
import { loadSharp } from '../lib/lazy-modules.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** SVG of `matrix[true][predicted]` with class labels. */
export function confusionSvg(matrix: readonly (readonly number[])[], classes: readonly string[]): string {
  const n = classes.length;
  const cell = n <= 12 ? 44 : n <= 30 ? 26 : 14;
  const label = Math.min(160, 8 + 7 * Math.max(...classes.map((c) => c.length)));
  const w = label + n * cell + 20;
  const h = label + n * cell + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${w}" height="${h}" fill="#ffffff"/>`,
    `<text x="${label + (n * cell) / 2}" y="${h - 10}" font-size="13" text-anchor="middle">predicted</text>`,
    `<text x="12" y="${label + (n * cell) / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 12 ${label + (n * cell) / 2})">true</text>`,
  ];
  const fs = Math.max(7, Math.min(12, cell / 3.2));
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((v, j) => {
      const rate = total === 0 ? 0 : v / total;
      const shade = Math.round(255 - rate * 200);
      const fill = i === j ? `rgb(${shade},${Math.round(255 - rate * 120)},${shade})` : `rgb(255,${shade},${shade})`;
      const x = label + j * cell;
      const y = label + i * cell;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#ddd"/>`);
      if (cell >= 20 && v > 0) parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + fs / 3}" font-size="${fs}" text-anchor="middle" fill="${rate > 0.6 ? '#fff' : '#000'}">${v}</text>`);
    });
  });
  classes.forEach((c, k) => {
    const t = esc(c.length > 20 ? `${c.slice(0, 19)}…` : c);
    parts.push(`<text x="${label - 6}" y="${label + k * cell + cell / 2 + 4}" font-size="11" text-anchor="end">${t}</text>`);
    const x = label + k * cell + cell / 2;
    parts.push(`<text x="${x}" y="${label - 6}" font-size="11" text-anchor="start" transform="rotate(-60 ${x} ${label - 6})">${t}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** PNG bytes of an SVG. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return loadSharp()(Buffer.from(svg)).png().toBuffer();
}

/** One misclassified test image for the gallery. */
export interface GalleryItem {
  readonly id: string;
  readonly trueClass: string;
  /** Top classes with probabilities, most probable first. */
  readonly top: readonly { readonly name: string; readonly p: number }[];
  /** uint8 HWC pixels, or undefined when pixels are not available. */
  readonly pixels?: Uint8Array;
}

/** The gallery page: each image (scaled up when tiny) with its true class and top-3 predictions. */
export async function galleryHtml(title: string, items: readonly GalleryItem[], shape: readonly [number, number, number] | undefined, total: number): Promise<string> {
  const sharp = loadSharp();
  const cards: string[] = [];
  for (const it of items) {
    let img = '<div class="noimg">no pixels</div>';
    if (it.pixels !== undefined && shape !== undefined) {
      const [h, w, c] = shape;
      const scale = Math.max(1, Math.floor(96 / Math.max(h, w)));
      const png = await sharp(Buffer.from(it.pixels), { raw: { width: w, height: h, channels: c as 1 | 3 } })
        .resize({ width: w * scale, height: h * scale, kernel: 'nearest' })
        .png()
        .toBuffer();
      img = `<img alt="${esc(it.id)}" src="data:image/png;base64,${png.toString('base64')}">`;
    }
    const preds = it.top.map((t, k) => `<li class="${k === 0 ? 'wrong' : t.name === it.trueClass ? 'right' : ''}">${esc(t.name)} ${(t.p * 100).toFixed(1)}%</li>`).join('');
    cards.push(`<figure>${img}<figcaption><b>true: ${esc(it.trueClass)}</b><ol>${preds}</ol><small>${esc(it.id.slice(0, 12))}</small></figcaption></figure>`);
  }
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:1em}figure{display:inline-block;vertical-align:top;width:170px;margin:6px;padding:6px;border:1px solid #ddd}
img{image-rendering:pixelated;max-width:160px}ol{padding-left:1.2em;margin:4px 0}.wrong{color:#b00}.right{color:#080}small{color:#888}</style></head>
<body><h1>${esc(title)}</h1><p>${items.length} of ${total} misclassified test images.</p>
${cards.join('\n')}
</body></html>
`;
}
