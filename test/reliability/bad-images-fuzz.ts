/**
 * Fuzzing image bytes (issue 7, bad input → images): seeded mutations
 * (truncation, bit flips, overwritten runs, duplicated slices) of valid JPEG,
 * progressive JPEG, PNG, interlaced PNG, WebP (lossy, lossless), GIF and TIFF
 * (LZW, JPEG) files. `fuzzImages` runs each through the probe ingest uses and,
 * when accepted, the resize every accepted image gets; `writeFuzzDataset` and
 * `judgeFuzzRun` put the same files through the real CLI and account for each.
 *
 * Does not assert: callers decide what the reports must be.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RejectEntry } from '../../stages/lib/manifest.js';
import { readManifest } from '../../stages/lib/manifest.js';
import { ShardReader } from '../../stages/lib/shards.js';
import { PROBE_FAILURE_REASONS, probeImage } from '../../stages/lib/probe.js';
import { resizeImage } from '../../stages/lib/image-io.js';
import { mulberry32 } from '../../stages/ml/dataset.js';
import { QUADRANT_COLOURS as Q, quadrants, readJsonl, RESIZE_OPTIONS, writePipeline } from './bad-images-scenario.js';

/** One fuzz outcome. */
export type FuzzOutcome =
  | { readonly case: string; readonly outcome: 'handled' }
  | { readonly case: string; readonly outcome: 'rejected'; readonly reason: string }
  /** A throw, a hang, a reason outside the list or without detail, or probe-accepted bytes that resize refuses. */
  | { readonly case: string; readonly outcome: 'crash'; readonly detail: string };

/** Summary of a fuzz run. */
export interface FuzzReport {
  readonly cases: number;
  readonly handled: number;
  readonly rejected: Readonly<Record<string, number>>;
  readonly crashes: readonly Extract<FuzzOutcome, { outcome: 'crash' }>[];
  readonly bySeed: Readonly<Record<string, { handled: number; rejected: number; crash: number }>>;
}

/** Valid seed images the fuzzer mutates. */
async function fuzzSeeds(): Promise<{ name: string; bytes: Buffer }[]> {
  const base = () => quadrants(48, 32, Q);
  return [
    { name: 'jpeg', bytes: await base().jpeg({ quality: 85 }).toBuffer() },
    { name: 'jpeg-progressive', bytes: await base().jpeg({ quality: 85, progressive: true }).toBuffer() },
    { name: 'png', bytes: await base().png().toBuffer() },
    { name: 'png-interlaced', bytes: await base().png({ progressive: true }).toBuffer() },
    { name: 'webp', bytes: await base().webp().toBuffer() },
    { name: 'webp-lossless', bytes: await base().webp({ lossless: true }).toBuffer() },
    { name: 'gif', bytes: await base().gif().toBuffer() },
    { name: 'tiff-lzw', bytes: await base().tiff({ compression: 'lzw' }).toBuffer() },
    { name: 'tiff-jpeg', bytes: await base().tiff({ compression: 'jpeg' }).toBuffer() },
  ];
}

/** One mutation of `b`: a truncation, bit flips, an overwritten run, or a duplicated slice. */
function mutate(b: Buffer, r: () => number): { bytes: Buffer; how: string } {
  const n = b.length;
  const pick = Math.floor(r() * 4);
  if (pick === 0) {
    const cut = 1 + Math.floor(r() * (n - 1));
    return { bytes: Buffer.from(b.subarray(0, cut)), how: `truncate@${cut}` };
  }
  const out = Buffer.from(b);
  if (pick === 1) {
    const flips = 1 + Math.floor(r() * 8);
    const at: number[] = [];
    for (let i = 0; i < flips; i++) {
      const bit = Math.floor(r() * n * 8);
      out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
      at.push(bit);
    }
    return { bytes: out, how: `flip@${at.join(',')}` };
  }
  if (pick === 2) {
    const start = Math.floor(r() * n);
    const len = 1 + Math.floor(r() * 32);
    for (let i = start; i < Math.min(n, start + len); i++) out[i] = Math.floor(r() * 256);
    return { bytes: out, how: `overwrite@${start}+${len}` };
  }
  const start = Math.floor(r() * n);
  const len = 1 + Math.floor(r() * Math.min(256, n - start));
  return { bytes: Buffer.concat([b.subarray(0, start + len), b.subarray(start)]), how: `dup@${start}+${len}` };
}

/** One mutated file: which seed image, which mutation, the bytes. */
export interface FuzzCase {
  readonly seed: string;
  /** `<seed>/<mutation>`, e.g. `png/flip@1234`. */
  readonly name: string;
  readonly bytes: Buffer;
}

/** `count` mutations of the seed images, round-robin over the seeds, from a seeded PRNG. */
export async function fuzzCases(count: number, seed = 7): Promise<FuzzCase[]> {
  const seeds = await fuzzSeeds();
  const r = mulberry32(seed);
  const out: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const s = seeds[i % seeds.length]!;
    const m = mutate(s.bytes, r);
    out.push({ seed: s.name, name: `${s.name}/${m.how}`, bytes: m.bytes });
  }
  return out;
}

/** Where each fuzz file ended up after a CLI run. */
export interface FuzzRunReport {
  readonly files: number;
  /** In the manifest and in the resize output. */
  readonly handled: number;
  /** Collapsed into an identical file of the same class (duplicates.jsonl). */
  readonly duplicates: number;
  /** Reject entries by reason. */
  readonly rejected: Readonly<Record<string, number>>;
  /** Files found nowhere, in the manifest but not resized, or rejected without a known reason and detail. */
  readonly lost: readonly string[];
  /** Files whose reject reason differs from a serial `probeImage` of the same bytes. */
  readonly reasonMismatches: readonly string[];
}

/** Writes the fuzz cases as `<workspace>/images/f/<i>.<seed ext>` and the scenario pipeline. */
export async function writeFuzzDataset(workspace: string, cases: readonly FuzzCase[]): Promise<string[]> {
  const rels: string[] = [];
  await fs.mkdir(path.join(workspace, 'images', 'f'), { recursive: true });
  for (let i = 0; i < cases.length; i++) {
    const ext = cases[i]!.seed.split('-')[0]!;
    const rel = `f/${String(i).padStart(4, '0')}.${ext}`;
    await fs.writeFile(path.join(workspace, 'images', rel), cases[i]!.bytes);
    rels.push(rel);
  }
  await writePipeline(workspace);
  return rels;
}

/** Accounts for every fuzz file after a CLI run (see `FuzzRunReport`). */
export async function judgeFuzzRun(workspace: string, cases: readonly FuzzCase[], rels: readonly string[]): Promise<FuzzRunReport> {
  const out = path.join(workspace, 'out');
  const rejects = readJsonl<RejectEntry>(path.join(out, 'ingest', 'rejects.jsonl'));
  const dups = readJsonl<{ rel: string }>(path.join(out, 'ingest', 'duplicates.jsonl'));
  const { entries } = readManifest(path.join(out, 'ingest'));
  const resized = new Set(new ShardReader(path.join(out, 'resize')).index.items.map((it) => it.source));
  const reasons = new Set<string>([...PROBE_FAILURE_REASONS, 'label-conflict']);
  const rejected: Record<string, number> = {};
  const lost: string[] = [];
  const reasonMismatches: string[] = [];
  let handled = 0;
  let duplicates = 0;
  for (let i = 0; i < rels.length; i++) {
    const rel = rels[i]!;
    const entry = entries.find((e) => e.rel === rel);
    const reject = rejects.find((r) => r.rel === rel);
    if (entry !== undefined) {
      if (resized.has(entry.sha256)) handled++;
      else lost.push(`${rel} (${cases[i]!.name}): in the manifest but not resized`);
    } else if (reject !== undefined) {
      if (!reasons.has(reject.reason) || reject.detail.trim() === '') lost.push(`${rel} (${cases[i]!.name}): reason ${reject.reason} / ${JSON.stringify(reject.detail)}`);
      rejected[reject.reason] = (rejected[reject.reason] ?? 0) + 1;
      const serial = await probeImage(cases[i]!.bytes);
      if (serial.ok || serial.error.reason !== reject.reason) reasonMismatches.push(`${rel} (${cases[i]!.name}): ingest said ${reject.reason} (${reject.detail}), a serial probe ${serial.ok ? 'accepts it' : serial.error.reason}`);
    } else if (dups.some((d) => d.rel === rel)) duplicates++;
    else lost.push(`${rel} (${cases[i]!.name}): nowhere`);
  }
  return { files: rels.length, handled, duplicates, rejected, lost, reasonMismatches };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/**
 * Mutates the seed images `count` times (seeded) and runs each through the
 * probe ingest uses and, when accepted, the resize every accepted image gets.
 * Serial, as ingest confirms failures serially (libvips' error buffer is per process).
 */
export async function fuzzImages(count: number, seed = 7, perCaseMs = 10_000): Promise<FuzzReport> {
  const reasons = new Set<string>(PROBE_FAILURE_REASONS);
  const rejected: Record<string, number> = {};
  const crashes: Extract<FuzzOutcome, { outcome: 'crash' }>[] = [];
  const bySeed: Record<string, { handled: number; rejected: number; crash: number }> = {};
  let handled = 0;
  for (const { seed: seedName, name, bytes } of await fuzzCases(count, seed)) {
    const tally = (bySeed[seedName] ??= { handled: 0, rejected: 0, crash: 0 });
    const crash = (detail: string) => {
      crashes.push({ case: name, outcome: 'crash', detail });
      tally.crash++;
    };
    try {
      const p = await withTimeout(probeImage(bytes), perCaseMs, 'probe');
      if (!p.ok) {
        if (!reasons.has(p.error.reason) || p.error.detail.trim() === '') crash(`reason ${p.error.reason} / detail ${JSON.stringify(p.error.detail)}`);
        else {
          rejected[p.error.reason] = (rejected[p.error.reason] ?? 0) + 1;
          tally.rejected++;
        }
        continue;
      }
      const px = await withTimeout(resizeImage(bytes, RESIZE_OPTIONS), perCaseMs, 'resize');
      if (!px.ok) crash(`probe accepted it but resize refused: ${px.error.reason} (${px.error.detail})`);
      else if (px.value.length !== 16 * 16 * 3) crash(`resize gave ${px.value.length} bytes`);
      else {
        handled++;
        tally.handled++;
      }
    } catch (e) {
      crash(`threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { cases: count, handled, rejected, crashes, bySeed };
}
