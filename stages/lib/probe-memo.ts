/**
 * ingest's probe memo: the probe outcome of every content sha256 it has seen,
 * per (stage version, max_pixels), kept in TWO item-cache entries rather than
 * one per file (a per-file entry would cost more than probing a small image):
 * a base holding most outcomes, rewritten rarely, and a delta holding the ones
 * added since the base was last written. A run that probes a few new files
 * rewrites only the delta; once the delta holds 1/8 as many outcomes as the
 * base, the next save folds it into the base. Together they grow as the union
 * of every run's files. An outcome depends only on the bytes, the stage
 * version and max_pixels, so base and delta can never disagree.
 *
 * Entry format (`encodeProbeOutcomes`), integers u32 little-endian:
 *
 *   0        4   magic `IPM1`
 *   4        4   n: records (content hashes)
 *   8        4   t: hash table slots (a power of two > n; 0 when n is 0)
 *   12       4   s: bytes of the side part (a multiple of 4)
 *   16       s   side part: UTF-8 JSON `{"outcomes": [CachedProbe...]}`, the distinct outcomes, space-padded
 *   16+s    4t   hash table: record index, or 0xFFFFFFFF for an empty slot; a record's first slot is its
 *                sha256's first 7 hex digits (`slotOf`) masked to t, then linear probing
 *   ..      4n   each record's index into `outcomes`
 *   ..     64n   each record's sha256 as lowercase hex (ASCII)
 *
 * Loading is a few views over the entry's bytes and one string of the hex
 * part: no object per record (the JSON object `{sha256: CachedProbe}` this
 * replaces took ~12 ms to parse plus the GC of ~25k objects that lived
 * through the run, for 12k outcomes). A lookup is one native string
 * comparison (`startsWith` at the record's offset) per slot probed, and
 * returns the shared outcome object: records with the same dimensions and
 * format share one. An entry in that earlier JSON form is still read, so
 * existing caches stay valid; the next save rewrites the base in this form. An entry that is neither, or whose parts disagree, reads
 * as empty, and an index out of range reads as a miss: those files are probed
 * again (never a wrong outcome).
 *
 * Does not probe, hash or read image files; keeps no state between runs
 * beyond the item-cache entries.
 */
import type { ItemCache } from '../types.js';
import { ACCEPTED_FORMATS, PROBE_FAILURE_REASONS, type AcceptedFormat, type ProbeFailure, type ProbeInfo } from './probe.js';

/** Cached probe outcome for one content hash. */
export type CachedProbe = { readonly ok: true; readonly info: ProbeInfo } | { readonly ok: false; readonly failure: ProbeFailure };

/** Item-cache keys of the probe memo's two entries. */
export interface ProbeMemoKeys {
  /** Most outcomes, rewritten only when the delta has grown to 1/8 of it. */
  readonly base: string;
  /** Outcomes added since the base was last written. */
  readonly delta: string;
}

const MAGIC = Buffer.from('IPM1', 'latin1');
const HEADER_BYTES = 16;
const HEX_CHARS = 64;
const EMPTY_SLOT = 0xffffffff;
/** Bits of `slotOf`: tables up to 2^28 slots. */
const SLOT_BITS = 28;
/** A record's key: a sha256 as lowercase hex. */
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The memo of one (stage version, max_pixels): see the module doc. */
export class ProbeMemo {
  /** Outcomes added since load (saved into the delta, or with everything into the base). */
  private readonly added = new Map<string, CachedProbe>();

  private constructor(
    private readonly base: OutcomeTable,
    private readonly delta: OutcomeTable,
  ) {}

  /** Loads the memo of `keys` from `items` (a missing or unreadable entry is empty). */
  static async load(items: ItemCache, keys: ProbeMemoKeys): Promise<ProbeMemo> {
    const [base, delta] = await Promise.all([items.get(keys.base), items.get(keys.delta)]);
    return new ProbeMemo(OutcomeTable.decode(base), OutcomeTable.decode(delta));
  }

  /** The outcome for a lowercase hex sha256, or undefined. */
  get(sha256: string): CachedProbe | undefined {
    if (this.added.size > 0) {
      const a = this.added.get(sha256);
      if (a !== undefined) return a;
    }
    if (sha256.length !== HEX_CHARS) return undefined;
    const slot = slotOf(sha256);
    // The base first: it holds most outcomes (base and delta never disagree).
    return this.base.find(sha256, slot) ?? (this.delta.size > 0 ? this.delta.find(sha256, slot) : undefined);
  }

  set(sha256: string, outcome: CachedProbe): void {
    this.added.set(sha256, outcome);
  }

  /**
   * Writes what `set` added: into the delta, or everything into the base (see
   * module doc). Nothing when nothing was added, unless the base is in the JSON
   * form of earlier versions: it is rewritten in this form once (~1 MB for 12k
   * outcomes) rather than parsed again on every run.
   */
  async save(items: ItemCache, keys: ProbeMemoKeys): Promise<void> {
    if (this.added.size === 0 && !this.base.legacy) return;
    const delta = new Map(this.delta.entries());
    for (const [sha, outcome] of this.added) delta.set(sha, outcome);
    if (!this.base.legacy && delta.size * 8 < this.base.size) {
      await items.put(keys.delta, encodeProbeOutcomes(delta));
      return;
    }
    const all = new Map(this.base.entries());
    for (const [sha, outcome] of delta) all.set(sha, outcome);
    // Base first: a crash between the two puts leaves a delta the base already holds (harmless).
    await items.put(keys.base, encodeProbeOutcomes(all));
    await items.put(keys.delta, encodeProbeOutcomes(new Map()));
  }
}

/** The outcomes stored in one memo entry (exported for tests): empty when missing or unreadable. */
export function decodeProbeOutcomes(raw: Buffer | undefined): Map<string, CachedProbe> {
  return new Map(OutcomeTable.decode(raw).entries());
}

/** One memo entry's bytes for `outcomes` (see the module doc for the layout). */
export function encodeProbeOutcomes(outcomes: ReadonlyMap<string, CachedProbe>): Buffer {
  const n = outcomes.size;
  const distinct: CachedProbe[] = [];
  const distinctIndex = new Map<string, number>();
  // Outcomes read from an entry are shared objects: most are matched by identity, without a JSON key.
  const byObject = new Map<CachedProbe, number>();
  const outcomeOf = new Uint32Array(n);
  const hex: string[] = [];
  for (const [sha, o] of outcomes) {
    if (!SHA256_HEX.test(sha)) throw new Error(`probe memo: not a sha256: ${sha}`); // a bug in the caller
    let k = byObject.get(o);
    if (k === undefined) {
      const plain: CachedProbe = o.ok
        ? { ok: true, info: { width: o.info.width, height: o.info.height, format: o.info.format } }
        : { ok: false, failure: { reason: o.failure.reason, detail: o.failure.detail } };
      const json = JSON.stringify(plain);
      k = distinctIndex.get(json);
      if (k === undefined) {
        k = distinct.push(plain) - 1;
        distinctIndex.set(json, k);
      }
      byObject.set(o, k);
    }
    outcomeOf[hex.length] = k;
    hex.push(sha);
  }
  let side = Buffer.from(JSON.stringify({ outcomes: distinct }), 'utf8');
  if (side.length % 4 !== 0) side = Buffer.concat([side, Buffer.alloc(4 - (side.length % 4), 0x20)]);
  const slots = n === 0 ? 0 : Math.min(2 ** SLOT_BITS, 2 ** Math.ceil(Math.log2(2 * n + 1)));
  if (n >= slots && n > 0) throw new Error(`probe memo: ${n} outcomes are more than one entry holds`);
  const table = new Uint32Array(slots).fill(EMPTY_SLOT);
  for (let i = 0; i < n; i++) {
    let slot = slotOf(hex[i]!) & (slots - 1);
    while (table[slot] !== EMPTY_SLOT) slot = (slot + 1) & (slots - 1);
    table[slot] = i;
  }
  const out = Buffer.alloc(HEADER_BYTES + side.length + 4 * slots + 4 * n + HEX_CHARS * n);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(n, 4);
  out.writeUInt32LE(slots, 8);
  out.writeUInt32LE(side.length, 12);
  let at = HEADER_BYTES;
  at += side.copy(out, at);
  for (let i = 0; i < slots; i++, at += 4) out.writeUInt32LE(table[i]!, at);
  for (let i = 0; i < n; i++, at += 4) out.writeUInt32LE(outcomeOf[i]!, at);
  out.write(hex.join(''), at, 'latin1');
  return out;
}

/** The outcomes of one memo entry: views over its bytes (see the module doc). */
class OutcomeTable {
  private constructor(
    /** Records held. */
    readonly size: number,
    /** Slot → record index (`EMPTY_SLOT`: none); length a power of two. */
    private readonly table: Uint32Array,
    /** Record → index into `outcomes`. */
    private readonly outcomeOf: Uint32Array,
    /** Every record's sha256 hex, back to back. */
    private readonly hex: string,
    private readonly outcomes: readonly CachedProbe[],
    /** Read from the JSON form of earlier versions: the next save rewrites it. */
    readonly legacy: boolean,
  ) {}

  private static readonly EMPTY = new OutcomeTable(0, new Uint32Array(0), new Uint32Array(0), '', [], false);

  /** The table of an entry's bytes: this format, the JSON of earlier versions, or empty when missing or unreadable. */
  static decode(raw: Buffer | undefined): OutcomeTable {
    if (raw === undefined || raw.length === 0) return OutcomeTable.EMPTY;
    if (raw[0] === 0x7b /* { */) {
      const legacy = legacyOutcomes(raw);
      if (legacy === undefined) return OutcomeTable.EMPTY;
      const t = OutcomeTable.decodeBinary(encodeProbeOutcomes(legacy))!;
      return new OutcomeTable(t.size, t.table, t.outcomeOf, t.hex, t.outcomes, true);
    }
    return OutcomeTable.decodeBinary(raw) ?? OutcomeTable.EMPTY;
  }

  private static decodeBinary(raw: Buffer): OutcomeTable | undefined {
    if (raw.length < HEADER_BYTES || !raw.subarray(0, 4).equals(MAGIC)) return undefined;
    const n = raw.readUInt32LE(4);
    const slots = raw.readUInt32LE(8);
    const s = raw.readUInt32LE(12);
    const validSlots = n === 0 ? slots === 0 : slots > n && (slots & (slots - 1)) === 0 && slots <= 2 ** SLOT_BITS;
    if (!validSlots || s % 4 !== 0 || raw.length !== HEADER_BYTES + s + 4 * slots + 4 * n + HEX_CHARS * n) return undefined;
    let side: unknown;
    try {
      side = JSON.parse(raw.toString('utf8', HEADER_BYTES, HEADER_BYTES + s));
    } catch {
      return undefined;
    }
    const list = typeof side === 'object' && side !== null ? (side as { outcomes?: unknown }).outcomes : undefined;
    if (!Array.isArray(list)) return undefined;
    const outcomes: CachedProbe[] = [];
    for (const o of list) {
      const c = cachedProbeOf(o);
      if (c === undefined) return undefined;
      outcomes.push(c);
    }
    const at = HEADER_BYTES + s;
    const ints = u32View(raw, at, slots + n);
    const hex = raw.toString('latin1', at + 4 * (slots + n));
    return new OutcomeTable(n, ints.subarray(0, slots), ints.subarray(slots), hex, outcomes, false);
  }

  /** The outcome for `sha256` (whose `slotOf` is `slot`), or undefined when not held. */
  find(sha256: string, slot: number): CachedProbe | undefined {
    const t = this.table;
    const mask = t.length - 1;
    // At most every slot once (a table of the encoder always has an empty slot; a damaged one may not).
    for (let s = slot & mask, tries = 0; tries < t.length; s = (s + 1) & mask, tries++) {
      const i = t[s]!;
      if (i === EMPTY_SLOT || i >= this.size) return undefined;
      if (this.hex.startsWith(sha256, i * HEX_CHARS)) return this.outcomes[this.outcomeOf[i]!];
    }
    return undefined;
  }

  /**
   * Every outcome, as (sha256 hex, outcome). Records whose outcome index is out of range, or whose
   * hash is not lowercase hex (no lookup can match it), are left out: a save re-encodes these and
   * must not meet a key the encoder refuses.
   */
  *entries(): IterableIterator<[string, CachedProbe]> {
    for (let i = 0; i < this.size; i++) {
      const o = this.outcomes[this.outcomeOf[i]!];
      const sha = this.hex.slice(i * HEX_CHARS, (i + 1) * HEX_CHARS);
      if (o !== undefined && SHA256_HEX.test(sha)) yield [sha, o];
    }
  }
}

/** `count` u32 (little-endian) from `raw[at]`: a view when aligned on a little-endian machine, else a copy. */
function u32View(raw: Buffer, at: number, count: number): Uint32Array {
  const offset = raw.byteOffset + at;
  if (LITTLE_ENDIAN && offset % 4 === 0) return new Uint32Array(raw.buffer, offset, count);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = raw.readUInt32LE(at + 4 * i);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Value of each lowercase hex digit by char code (0 for anything else: such a key never matches a record). */
const HEX_VALUE = (() => {
  const t = new Uint8Array(128);
  for (let i = 0; i < 16; i++) t['0123456789abcdef'.charCodeAt(i)] = i;
  return t;
})();

/** A sha256's first slot before masking: its first 7 hex digits (a small integer; a few cheap steps, no substring). */
function slotOf(hex: string): number {
  const v = HEX_VALUE;
  return (
    (((v[hex.charCodeAt(0)] ?? 0) << 24) |
      ((v[hex.charCodeAt(1)] ?? 0) << 20) |
      ((v[hex.charCodeAt(2)] ?? 0) << 16) |
      ((v[hex.charCodeAt(3)] ?? 0) << 12) |
      ((v[hex.charCodeAt(4)] ?? 0) << 8) |
      ((v[hex.charCodeAt(5)] ?? 0) << 4) |
      (v[hex.charCodeAt(6)] ?? 0)) >>>
    0
  );
}

/** The outcomes of an entry in the JSON form of earlier versions (`{sha256: CachedProbe}`); malformed outcomes are left out. */
function legacyOutcomes(raw: Buffer): Map<string, CachedProbe> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const out = new Map<string, CachedProbe>();
  for (const [sha, v] of Object.entries(parsed as Record<string, unknown>)) {
    const c = cachedProbeOf(v);
    if (c !== undefined && SHA256_HEX.test(sha)) out.set(sha, c);
  }
  return out;
}

/** `v` as a well-formed outcome, or undefined. */
function cachedProbeOf(v: unknown): CachedProbe | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as { ok?: unknown; info?: unknown; failure?: unknown };
  if (o.ok === true && typeof o.info === 'object' && o.info !== null) {
    const { width, height, format } = o.info as Record<string, unknown>;
    const size = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x > 0;
    if (!size(width) || !size(height) || !(ACCEPTED_FORMATS as readonly unknown[]).includes(format)) return undefined;
    return { ok: true, info: { width, height, format: format as AcceptedFormat } };
  }
  if (o.ok === false && typeof o.failure === 'object' && o.failure !== null) {
    const { reason, detail } = o.failure as Record<string, unknown>;
    if (!(PROBE_FAILURE_REASONS as readonly unknown[]).includes(reason) || typeof detail !== 'string') return undefined;
    return { ok: false, failure: { reason: reason as ProbeFailure['reason'], detail } };
  }
  return undefined;
}
