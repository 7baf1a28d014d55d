/**
 * Bad-image scenario (issue 7, "Bad input → Images"), shared by the fast test
 * (`test/reliability/bad-images.test.ts`) and the stress run
 * (`test/stress/bad-images.stress.ts`).
 *
 * - `buildBadImageSet` writes one file of every kind into a class-per-folder
 *   dataset with real sharp (and by hand where sharp cannot: 16-bit PNG with
 *   chosen sample values, the 30000×30000 bomb), each with what must come out:
 *   pixels after resize (handled) or a reject reason (rejected).
 * - `runPipelineAs` runs the real CLI (`ingest → resize → partition`) on it,
 *   as uid 65534 when we are root so a chmod-000 file is really unreadable.
 * - `judgeRun` reads rejects.jsonl, the resize shards, partition.json and the
 *   terminal output, and gives one verdict per kind.
 * - `measureBombRejection` runs the ingest stage in a child process on the bomb
 *   and reports its wall time and peak RSS (against a run without the bomb).
 * The fuzzing of image bytes is in `bad-images-fuzz.ts`.
 *
 * Does not assert: callers decide what the verdicts must be.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fss from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { repoRoot } from '../helpers/rig.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { hugeBlankPng, pngChunk } from '../data/fixtures.js';
import type { RejectEntry, RejectReason } from '../../stages/lib/manifest.js';
import { readManifest } from '../../stages/lib/manifest.js';
import { ShardReader } from '../../stages/lib/shards.js';
import { readPartition } from '../../stages/lib/splits.js';
import type { ResizeOptions } from '../../stages/lib/image-io.js';

/** An sRGB colour. */
export type Rgb = readonly [number, number, number];

/** The resize params of the scenario's pipeline: small, `fill`, a background no kind contains. */
export const RESIZE_WITH = { size: [16, 16], fit: 'fill', kernel: 'lanczos3', channels: 3, background: '#3366cc' } as const;
/** The same as `resizeImage` options. */
export const RESIZE_OPTIONS: ResizeOptions = { ...RESIZE_WITH, size: [16, 16] };
const BACKGROUND: Rgb = [0x33, 0x66, 0xcc];

/** The quadrant test pattern, for other modules. */
export { Q as QUADRANT_COLOURS };

/** Output pixels sampled at the centre of each quadrant: top-left, top-right, bottom-left, bottom-right. */
const SAMPLES: readonly (readonly [number, number])[] = [
  [4, 4],
  [11, 4],
  [4, 11],
  [11, 11],
];

/** Quadrant colours of the test pattern (distinct hues, so a rotation or swap shows). */
const Q: readonly [Rgb, Rgb, Rgb, Rgb] = [
  [200, 40, 40],
  [40, 160, 60],
  [50, 70, 200],
  [230, 220, 90],
];
/** Inside the CMYK gamut (plus white: an inverted Adobe CMYK decode would turn it black). */
const Q_CMYK: readonly [Rgb, Rgb, Rgb, Rgb] = [
  [180, 120, 100],
  [120, 150, 110],
  [110, 120, 160],
  [255, 255, 255],
];

/** What must come out of the pipeline for a kind. */
export type Expectation =
  | {
      readonly handled: {
        /** Expected resize output at the four quadrant samples. */
        readonly quadrants: readonly [Rgb, Rgb, Rgb, Rgb];
        /** Largest allowed difference per channel. */
        readonly tolerance: number;
        /** Width × height the manifest must record (after EXIF orientation). */
        readonly size: readonly [number, number];
        /** Why these pixels are right, for the verdict. */
        readonly why: string;
      };
    }
  | { readonly rejected: RejectReason; readonly detail: RegExp };

/** One bad-input kind, written into the dataset. */
export interface ImageKind {
  /** Stable kind id, e.g. `cmyk-jpeg`. */
  readonly kind: string;
  /** Path under the dataset root (`class/file`). */
  readonly rel: string;
  readonly expect: Expectation;
  /** sha256 of the bytes written (absent for kinds whose bytes are not read, like the symlink). */
  readonly sha256?: string;
}

/** A kind that could not be set up here (e.g. no setuid for the unreadable file), with why. */
export interface SkippedKind {
  readonly kind: string;
  readonly reason: string;
}

/** How the chmod-000 case gets a real EACCES. */
export type UnreadableMode = { readonly how: 'chmod' } | { readonly how: 'uid'; readonly uid: number } | { readonly how: 'skip'; readonly reason: string };

/** The built dataset. */
export interface BadImageSet {
  /** Dataset root (`<workspace>/images`). */
  readonly root: string;
  readonly kinds: readonly ImageKind[];
  readonly skipped: readonly SkippedKind[];
  readonly unreadable: UnreadableMode;
}

/** One verdict per kind. */
export interface Verdict {
  readonly kind: string;
  readonly ok: boolean;
  /** `handled`, `rejected`, or `skipped` (not set up here). */
  readonly outcome: 'handled' | 'rejected' | 'skipped';
  /** What was seen (pixels, reason) and, when not ok, what was wrong. */
  readonly detail: string;
}

/** An RGB raster from a colour function. */
function raster(w: number, h: number, at: (x: number, y: number) => Rgb): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(at(x, y), (y * w + x) * 3);
  return b;
}

/** `w`×`h` in four quadrants of `cols`. */
export function quadrants(w: number, h: number, cols: readonly Rgb[]): sharp.Sharp {
  return sharp(raster(w, h, (x, y) => cols[(y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1)]!), { raw: { width: w, height: h, channels: 3 } });
}

/** A PNG with 16-bit samples written by hand (`colorType` 0 = grey, 2 = RGB, 6 = RGBA). */
export function png16(w: number, h: number, colorType: 0 | 2 | 6, at: (x: number, y: number) => readonly number[]): Buffer {
  const channels = colorType === 0 ? 1 : colorType === 2 ? 3 : 4;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 16;
  ihdr[9] = colorType;
  const rows: Buffer[] = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + w * channels * 2);
    for (let x = 0; x < w; x++) {
      const v = at(x, y);
      for (let c = 0; c < channels; c++) row.writeUInt16BE(v[c]!, 1 + (x * channels + c) * 2);
    }
    rows.push(row);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), pngChunk('IEND', Buffer.alloc(0))]);
}

/** The displayed quadrants of a stored pattern [TL, TR, BL, BR] under EXIF orientation 1..8. */
export function orientedQuadrants(q: readonly [Rgb, Rgb, Rgb, Rgb], orientation: number): [Rgb, Rgb, Rgb, Rgb] {
  const [tl, tr, bl, br] = q;
  switch (orientation) {
    case 1:
      return [tl, tr, bl, br];
    case 2: // mirrored horizontally
      return [tr, tl, br, bl];
    case 3: // rotated 180°
      return [br, bl, tr, tl];
    case 4: // mirrored vertically
      return [bl, br, tl, tr];
    case 5: // transposed (mirror across the main diagonal)
      return [tl, bl, tr, br];
    case 6: // rotate 90° clockwise to display
      return [bl, tl, br, tr];
    case 7: // transversed
      return [br, tr, bl, tl];
    case 8: // rotate 90° counter-clockwise to display
      return [tr, br, tl, bl];
    default:
      throw new Error(`orientation ${orientation}`);
  }
}

/** A JPEG of the quadrant pattern, stored 64×48 with EXIF `orientation`. */
export function orientedJpeg(orientation: number): Promise<Buffer> {
  return quadrants(64, 48, Q).jpeg({ quality: 95 }).withMetadata({ orientation }).toBuffer();
}

/** The quadrant pattern (for callers checking a kind by hand). */
export const PATTERN = Q;

/** Decides how the unreadable case can be made real here (see `UnreadableMode`). */
export function unreadableMode(): UnreadableMode {
  if (process.getuid === undefined) return { how: 'skip', reason: 'no POSIX uids on this platform' };
  if (process.getuid() !== 0) return { how: 'chmod' };
  const cli = path.join(repoRoot, 'bin', 'pipeline.js');
  const r = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(cli)}, require('fs').constants.R_OK)`], { uid: 65534, gid: 65534, stdio: 'ignore' });
  if (r.error !== undefined) return { how: 'skip', reason: `running as root and cannot switch to uid 65534 (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}), so chmod 000 would not stop reading` };
  if (r.status !== 0) return { how: 'skip', reason: `running as root and uid 65534 cannot read ${cli}, so the CLI cannot run as it` };
  return { how: 'uid', uid: 65534 };
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Writes every kind under `<workspace>/images` (classes `a` and `b`), plus the
 * symlink's target under `<workspace>/outside`. The bomb is 30000×30000.
 */
export async function buildBadImageSet(workspace: string, unreadable: UnreadableMode = unreadableMode()): Promise<BadImageSet> {
  const root = path.join(workspace, 'images');
  const kinds: ImageKind[] = [];
  const skipped: SkippedKind[] = [];
  const write = async (kind: string, rel: string, bytes: Uint8Array | string, expect: Expectation): Promise<void> => {
    const abs = path.join(root, rel);
    await fs.mkdir(path.dirname(abs), { recursive: true });
    await fs.writeFile(abs, bytes);
    kinds.push({ kind, rel, expect, sha256: sha(typeof bytes === 'string' ? Buffer.from(bytes) : bytes) });
  };
  const handled = (quads: readonly [Rgb, Rgb, Rgb, Rgb], tolerance: number, size: readonly [number, number], why: string): Expectation => ({ handled: { quadrants: quads, tolerance, size, why } });

  const jpeg = await quadrants(64, 48, Q).jpeg({ quality: 90 }).toBuffer();
  await write('zero-bytes', 'a/zero.jpg', new Uint8Array(0), { rejected: 'empty', detail: /file is empty/ });
  await write('truncated-jpeg', 'a/truncated.jpg', jpeg.subarray(0, jpeg.length >> 1), { rejected: 'truncated', detail: /premature end/i });
  await write('text-named-jpg', 'a/notes.jpg', 'these are my notes, not a photo\n', { rejected: 'not-an-image', detail: /no known image signature/ });

  const cmyk = await quadrants(64, 48, Q_CMYK).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
  if ((await sharp(cmyk).metadata()).space !== 'cmyk') throw new Error('fixture: the CMYK JPEG is not CMYK');
  await write('cmyk-jpeg', 'a/cmyk.jpg', cmyk, handled(Q_CMYK, 12, [64, 48], 'CMYK converted through the CMYK profile back to the sRGB it came from (white stays white)'));

  // Samples c*257 are the exact 16-bit spelling of 8-bit c.
  const rgb16 = png16(64, 48, 2, (x, y) => Q[(y < 24 ? 0 : 2) + (x < 32 ? 0 : 1)]!.map((c) => c * 257));
  await write('png-16bit', 'a/deep.png', rgb16, handled(Q, 1, [64, 48], '16-bit samples c*257 become 8-bit c'));

  const alphaQuads: readonly [number, number, number, number][] = [
    [200, 40, 40, 0], // transparent: background
    [40, 160, 60, 255],
    [255, 255, 255, 128], // half white over the background
    [230, 220, 90, 255],
  ];
  const rgba = Buffer.alloc(64 * 48 * 4);
  for (let y = 0; y < 48; y++) for (let x = 0; x < 64; x++) rgba.set(alphaQuads[(y < 24 ? 0 : 2) + (x < 32 ? 0 : 1)]!, (y * 64 + x) * 4);
  const half = (c: number, bg: number) => Math.round((c * 128 + bg * 127) / 255);
  await write(
    'png-alpha',
    'a/alpha.png',
    await sharp(rgba, { raw: { width: 64, height: 48, channels: 4 } }).png().toBuffer(),
    handled([BACKGROUND, Q[1], [half(255, BACKGROUND[0]), half(255, BACKGROUND[1]), half(255, BACKGROUND[2])], Q[3]], 2, [64, 48], `alpha flattened onto the background ${RESIZE_WITH.background}`),
  );

  // The same through a palette with a tRNS chunk (indexed PNG transparency).
  const palette = await sharp(rgba.map((v, i) => (i % 4 === 3 ? (v === 128 ? 255 : v) : v)), { raw: { width: 64, height: 48, channels: 4 } }).png({ palette: true }).toBuffer();
  if (!(await sharp(palette).metadata()).isPalette) throw new Error('fixture: the palette PNG has no palette');
  await write('png-palette-alpha', 'a/indexed.png', palette, handled([BACKGROUND, Q[1], [255, 255, 255], Q[3]], 3, [64, 48], 'palette transparency flattened onto the background'));

  const greys = [30, 90, 150, 220] as const;
  const grey = Buffer.alloc(64 * 48);
  for (let y = 0; y < 48; y++) for (let x = 0; x < 64; x++) grey[y * 64 + x] = greys[(y < 24 ? 0 : 2) + (x < 32 ? 0 : 1)]!;
  const greyPng = await sharp(grey, { raw: { width: 64, height: 48, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  if ((await sharp(greyPng).metadata()).channels !== 1) throw new Error('fixture: the grey PNG has more than one channel');
  const g = (v: number): Rgb => [v, v, v];
  await write('grayscale', 'b/grey.png', greyPng, handled([g(30), g(90), g(150), g(220)], 1, [64, 48], 'one grey channel becomes three equal channels'));

  await write('exif-rotated', 'b/rotated.jpg', await orientedJpeg(6), handled(orientedQuadrants(Q, 6), 12, [48, 64], 'EXIF orientation 6: the stored top-left (red) corner is displayed top-right'));

  await write('gif', 'b/pattern.gif', await quadrants(64, 48, Q).gif().toBuffer(), handled(Q, 3, [64, 48], 'GIF palette colours'));
  await write('webp', 'b/pattern.webp', await quadrants(64, 48, Q).webp({ quality: 90 }).toBuffer(), handled(Q, 12, [64, 48], 'lossy WebP colours'));
  await write('tiff', 'b/pattern.tiff', await quadrants(64, 48, Q).tiff({ compression: 'lzw' }).toBuffer(), handled(Q, 1, [64, 48], 'LZW TIFF colours'));

  const dot: Rgb = [10, 200, 30];
  await write('1x1', 'b/dot.png', await sharp(Buffer.from(dot), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer(), handled([dot, dot, dot, dot], 1, [1, 1], 'one pixel fills the output'));

  const big = await sharp({ create: { width: 6000, height: 4500, channels: 3, background: { r: Q[0][0], g: Q[0][1], b: Q[0][2] } } })
    .composite(
      ([
        [3000, 0, Q[1]],
        [0, 2250, Q[2]],
        [3000, 2250, Q[3]],
      ] as const).map(([left, top, [r, gg, b]]) => ({ input: { create: { width: 3000, height: 2250, channels: 3 as const, background: { r, g: gg, b } } }, left, top })),
    )
    .jpeg({ quality: 90 })
    .toBuffer();
  await write('6000x4500', 'b/large.jpg', big, handled(Q, 6, [6000, 4500], 'a 27 Mpx photo resized'));

  await hugeBlankPng(path.join(root, 'a', 'bomb.png'), 30000, 30000);
  kinds.push({ kind: 'bomb-30000x30000', rel: 'a/bomb.png', expect: { rejected: 'too-many-pixels', detail: /30000x30000 = 900000000 pixels exceeds max_pixels/ }, sha256: sha(await fs.readFile(path.join(root, 'a', 'bomb.png'))) });

  const outside = path.join(workspace, 'outside', 'secret.png');
  await fs.mkdir(path.dirname(outside), { recursive: true });
  await fs.writeFile(outside, await quadrants(8, 8, Q).png().toBuffer());
  await fs.symlink(outside, path.join(root, 'b', 'linked.png'));
  kinds.push({ kind: 'symlink-outside', rel: 'b/linked.png', expect: { rejected: 'symlink-skipped', detail: /symbolic link to .*outside\/secret\.png \(a file outside the source directory\), not followed/ } });

  if (unreadable.how === 'skip') skipped.push({ kind: 'unreadable-chmod-000', reason: unreadable.reason });
  else {
    const bytes = await quadrants(8, 8, [Q[3], Q[2], Q[1], Q[0]]).png().toBuffer();
    await write('unreadable-chmod-000', 'a/locked.png', bytes, { rejected: 'unreadable', detail: /cannot read file \(EACCES\)/ });
    await fs.chmod(path.join(root, 'a', 'locked.png'), 0o000);
  }

  // Beyond the issue's list: damaged containers whose decoders said the wrong thing, a large non-image, an animated GIF.
  const tiffJpeg = await quadrants(64, 48, Q).tiff({ compression: 'jpeg' }).toBuffer();
  await write('truncated-tiff', 'a/cut.tiff', tiffJpeg.subarray(0, Math.floor(tiffJpeg.length * 0.9)), { rejected: 'truncated', detail: /^TIFF .* ends at byte \d+ but the file has \d+$/ });
  const webp = await quadrants(64, 48, Q).webp().toBuffer();
  await write('truncated-webp', 'a/cut.webp', webp.subarray(0, Math.floor(webp.length * 0.9)), { rejected: 'truncated', detail: /WebP header declares \d+ bytes but the file has \d+/ });
  // A stray 100 MiB non-image (sparse: no blocks written) must not be read whole.
  const movie = await fs.open(path.join(root, 'b', 'movie.jpg'), 'w');
  await movie.truncate(100 * 2 ** 20);
  await movie.close();
  kinds.push({ kind: 'large-non-image', rel: 'b/movie.jpg', expect: { rejected: 'not-an-image', detail: /^no known image signature in the first bytes of this 100 MiB file \(not read further\)$/ } });
  const frame = (c: Rgb) => raster(64, 48, () => c);
  const anim = await sharp(Buffer.concat([frame(Q[0]), frame(Q[2])]), { raw: { width: 64, height: 96, channels: 3, pageHeight: 48 } } as sharp.SharpOptions).gif().toBuffer();
  await write('animated-gif', 'b/anim.gif', anim, handled([Q[0], Q[0], Q[0], Q[0]], 3, [64, 48], 'first frame of two'));

  return { root, kinds, skipped, unreadable };
}

/** Writes the scenario's pipeline file (`ingest → resize → partition`, on_invalid: skip unless told). */
export async function writePipeline(workspace: string, onInvalid: 'skip' | 'fail' = 'skip'): Promise<void> {
  const p = {
    name: 'bad-images',
    stages: {
      ingest: { uses: 'ingest', with: { source: 'images', on_invalid: onInvalid } },
      resize: { uses: 'resize', with: RESIZE_WITH },
      partition: { uses: 'partition' },
    },
  };
  await fs.writeFile(path.join(workspace, 'pipeline.yaml'), JSON.stringify(p, null, 2) + '\n');
}

/** Result of one CLI run. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** chowns `dir` recursively (links themselves, not their targets). */
async function chownTree(dir: string, uid: number): Promise<void> {
  await fs.lchown(dir, uid, uid);
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid);
    else await fs.lchown(p, uid, uid);
  }
}

/**
 * Runs `pipeline run` in `workspace` as a child process: as `mode.uid` (the
 * workspace chowned to it) when the unreadable case needs it, else as us.
 */
export async function runPipelineAs(workspace: string, mode: UnreadableMode, timeoutMs = 120_000): Promise<CliRun> {
  const ids = mode.how === 'uid' ? { uid: mode.uid, gid: mode.uid } : {};
  if (mode.how === 'uid') {
    await chownTree(workspace, mode.uid);
    await fs.chmod(workspace, 0o755);
  }
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  delete env['PIPELINE_CACHE'];
  delete env['FORCE_COLOR'];
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'pipeline.js'), 'run'], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, ms: Date.now() - started };
}

/** Reads a JSONL file. */
export function readJsonl<T>(file: string): T[] {
  return fss.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

/**
 * The whole scenario in `workspace`: builds every kind, writes the pipeline (`on_invalid: skip`), runs
 * it through the CLI (as another uid for the unreadable case when root) and judges every kind.
 * The run must exit 0 (skip goes on past every bad file).
 */
export async function runBadImageSet(workspace: string): Promise<{ set: BadImageSet; run: CliRun; verdicts: Verdict[] }> {
  const set = await buildBadImageSet(workspace);
  await writePipeline(workspace);
  const run = await runPipelineAs(workspace, set.unreadable);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  return { set, run, verdicts: judgeRun(workspace, set, run) };
}

/**
 * Judges one finished run: every handled kind is in the manifest with its
 * oriented size, in the resize shards with the expected pixels (within
 * tolerance) and in partition.json; every rejected kind is in rejects.jsonl
 * with its reason and detail and is named with its reason on the terminal.
 */
export function judgeRun(workspace: string, set: BadImageSet, run: CliRun): Verdict[] {
  const out = path.join(workspace, 'out');
  const rejects = readJsonl<RejectEntry>(path.join(out, 'ingest', 'rejects.jsonl'));
  const { entries } = readManifest(path.join(out, 'ingest'));
  const shards = new ShardReader(path.join(out, 'resize'));
  const partition = readPartition(path.join(out, 'partition'));
  const terminal = run.stdout + run.stderr;
  const verdicts: Verdict[] = set.skipped.map((s) => ({ kind: s.kind, ok: false, outcome: 'skipped', detail: s.reason }));
  for (const k of set.kinds) {
    const abs = path.join(set.root, k.rel);
    const rejected = rejects.filter((r) => r.rel === k.rel);
    const entry = entries.find((e) => e.rel === k.rel);
    if ('rejected' in k.expect) {
      const problems: string[] = [];
      if (entry !== undefined) problems.push('it is in the manifest');
      if (rejected.length !== 1) problems.push(`${rejected.length} reject entries`);
      const r = rejected[0];
      if (r !== undefined) {
        if (r.reason !== k.expect.rejected) problems.push(`reason ${r.reason}, expected ${k.expect.rejected}`);
        if (!k.expect.detail.test(r.detail)) problems.push(`detail ${JSON.stringify(r.detail)} does not match ${k.expect.detail}`);
        if (r.path !== abs) problems.push(`path ${r.path}`);
      }
      if (!terminal.includes(`${abs}: ${k.expect.rejected} (`)) problems.push('not named with its reason on the terminal');
      verdicts.push({ kind: k.kind, ok: problems.length === 0, outcome: 'rejected', detail: problems.length === 0 ? `${r!.reason}: ${r!.detail}` : problems.join('; ') });
      continue;
    }
    const want = k.expect.handled;
    const problems: string[] = [];
    if (rejected.length > 0) problems.push(`rejected: ${rejected.map((r) => `${r.reason} (${r.detail})`).join(', ')}`);
    let seen = '';
    if (entry === undefined) problems.push('not in the manifest');
    else {
      if (entry.width !== want.size[0] || entry.height !== want.size[1]) problems.push(`manifest size ${entry.width}x${entry.height}, expected ${want.size[0]}x${want.size[1]}`);
      if (partition.assignments[entry.sha256] === undefined) problems.push('no split in partition.json');
      const item = shards.index.items.findIndex((it) => it.source === entry.sha256);
      if (item === -1) problems.push('not in the resize output');
      else {
        const px = shards.pixels(item);
        const got = SAMPLES.map(([x, y]) => [...px.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3)] as const);
        seen = JSON.stringify(got);
        got.forEach((p, i) => {
          const e = want.quadrants[i]!;
          const diff = Math.max(...p.map((v, c) => Math.abs(v - e[c]!)));
          if (diff > want.tolerance) problems.push(`quadrant ${i} is ${JSON.stringify(p)}, expected ${JSON.stringify(e)} ±${want.tolerance}`);
        });
      }
    }
    verdicts.push({ kind: k.kind, ok: problems.length === 0, outcome: 'handled', detail: problems.length === 0 ? `${want.why}: ${seen}` : problems.join('; ') });
  }
  return verdicts;
}

/** Wall time and peak RSS of rejecting the bomb in a child process running the ingest stage. */
export interface BombMeasurement {
  /** Milliseconds of `ingestStage.run` over the bomb plus one small image, measured inside the child (includes writing its outputs). */
  readonly ms: number;
  /** CPU milliseconds (user + system) of that run. */
  readonly cpuMs: number;
  /** Milliseconds to read the bomb and probe it to its rejection, once more after the run, in the same child. */
  readonly probeMs: number;
  /** Peak RSS of that child, MiB. */
  readonly peakMiB: number;
  /** Peak RSS of the same child without the bomb (node + sharp + ingest), MiB. */
  readonly baselineMiB: number;
  /** The bomb's reject entry. */
  readonly reject: RejectEntry | undefined;
  /** Images accepted (the small one). */
  readonly accepted: number;
  /** Size of the bomb file on disk. */
  readonly bytes: number;
}

/** Runs the ingest stage in a child on `dir` (class folders) and returns its timing, peak RSS and outputs. */
async function ingestInChild(workspace: string, source: string, probeRel?: string): Promise<{ ms: number; cpuMs: number; probeMs: number; maxRssKiB: number; images: number; rejects: RejectEntry[] }> {
  const dist = path.join(repoRoot, 'dist');
  const out = await fs.mkdtemp(path.join(workspace, 'child-out-'));
  const script = `
    import { ingestStage } from ${JSON.stringify(path.join(dist, 'stages', 'ingest.js'))};
    import { directoryItemCache } from ${JSON.stringify(path.join(dist, 'src', 'cache', 'item-cache.js'))};
    import { probeImage } from ${JSON.stringify(path.join(dist, 'stages', 'lib', 'probe.js'))};
    import fs from 'node:fs';
    const out = ${JSON.stringify(out)};
    const log = { info() {}, warn() {}, progress() {} };
    const ctx = { stageId: 'ingest', params: { source: ${JSON.stringify(source)} }, inputs: {}, outDir: out, workspace: ${JSON.stringify(workspace)},
      items: directoryItemCache(out + '-items'), cacheDir: out + '-cache', seed: 0, log, signal: new AbortController().signal };
    const cpu = process.cpuUsage();
    const t = performance.now();
    const r = await ingestStage.run(ctx);
    const ms = performance.now() - t;
    const cpuUsed = process.cpuUsage(cpu);
    // The rejection alone, once more: read the file and probe it.
    const probeRel = ${JSON.stringify(probeRel ?? null)};
    const tp = performance.now();
    if (probeRel !== null) await probeImage(fs.readFileSync(${JSON.stringify(path.join(workspace, source))} + '/' + probeRel));
    const probeMs = performance.now() - tp;
    process.stdout.write(JSON.stringify({ ms, cpuMs: (cpuUsed.user + cpuUsed.system) / 1000, probeMs, maxRssKiB: process.resourceUsage().maxRSS, images: r.metrics.images, rejects: fs.readFileSync(out + '/rejects.jsonl', 'utf8') }));
  `;
  const file = path.join(workspace, `ingest-child-${path.basename(out)}.mjs`);
  await fs.writeFile(file, script);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`ingest child failed (${r.status ?? r.signal}): ${r.stderr}`);
  const res = JSON.parse(r.stdout) as { ms: number; cpuMs: number; probeMs: number; maxRssKiB: number; images: number; rejects: string };
  return { ms: res.ms, cpuMs: res.cpuMs, probeMs: res.probeMs, maxRssKiB: res.maxRssKiB, images: res.images, rejects: res.rejects.split('\n').filter(Boolean).map((l) => JSON.parse(l) as RejectEntry) };
}

/** A decompression bomb for `measureBombRejection`: its file name and how to write it. */
export interface Bomb {
  readonly name: string;
  write(file: string): Promise<void>;
}

/** The issue's bomb: a 30000×30000 1-bit PNG (0.9 Gpx, ~110 KB on disk), rejected from its header. */
export const PNG_BOMB: Bomb = { name: 'bomb.png', write: (file) => hugeBlankPng(file, 30000, 30000) };

/**
 * A 6000×6000 AVIF of one colour: under 1 KB on disk and under the pixel
 * limit, but libheif decodes it whole (measured ~620 MiB and 4 s before the
 * whole-frame check). Making it takes sharp ~2 s and ~750 MB.
 */
export const AVIF_BOMB: Bomb = {
  name: 'bomb.avif',
  write: async (file) => {
    await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 120, g: 30, b: 200 } } }).avif({ effort: 0 }).toFile(file);
  },
};

/**
 * Rejects `bomb` (default the 30000×30000 PNG) in a child process running the
 * ingest stage next to one small image, and a baseline child on the small
 * image alone.
 */
export async function measureBombRejection(workspace: string, bomb: Bomb = PNG_BOMB): Promise<BombMeasurement> {
  const small = await quadrants(12, 10, Q).png().toBuffer();
  for (const d of ['bomb-set/a', 'plain-set/a']) {
    await fs.mkdir(path.join(workspace, d), { recursive: true });
    await fs.writeFile(path.join(workspace, d, 'ok.png'), small);
  }
  await bomb.write(path.join(workspace, 'bomb-set', 'a', bomb.name));
  const baseline = await ingestInChild(workspace, 'plain-set');
  const measured = await ingestInChild(workspace, 'bomb-set', `a/${bomb.name}`);
  return {
    ms: measured.ms,
    cpuMs: measured.cpuMs,
    probeMs: measured.probeMs,
    peakMiB: measured.maxRssKiB / 1024,
    baselineMiB: baseline.maxRssKiB / 1024,
    reject: measured.rejects.find((r) => r.rel === `a/${bomb.name}`),
    accepted: measured.images,
    bytes: (await fs.stat(path.join(workspace, 'bomb-set', 'a', bomb.name))).size,
  };
}

/** A temp workspace (realpath, so paths printed by the CLI match), removed on dispose. */
export function tempWorkspace(prefix = 'bad-images-'): Promise<TempDir> {
  return tempDir(prefix);
}
