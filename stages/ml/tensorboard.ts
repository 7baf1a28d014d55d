/**
 * TensorBoard event files for the train stage, written by hand so they exist on
 * every backend (wasm and cpu have no summary writer; tfjs-node does, see
 * {@link nodeSummaryWriters}).
 *
 * Format (TensorFlow's `tfevents`, as read by TensorBoard's event_file_loader):
 * a TFRecord file whose records are
 *   uint64 little-endian  length of data
 *   uint32 LE             masked CRC-32C of those 8 length bytes
 *   data                  a serialised `tensorflow.Event` protobuf
 *   uint32 LE             masked CRC-32C of data
 * where mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32). The first
 * record is `Event{wall_time, file_version: "brain.Event:2"}`; each later one
 * is `Event{wall_time, step, summary: Summary{value: [{tag, simple_value}]}}`.
 *
 * Field numbers used (tensorflow/core/util/event.proto, framework/summary.proto):
 *   Event:   1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary (Summary)
 *   Summary: 1 value (repeated Value)
 *   Value:   1 tag (string), 2 simple_value (float)
 *
 * Layout written by the train stage (Keras's TensorBoard callback layout, so a
 * run's train and validation curves overlay in one chart per tag):
 *   <out>/tensorboard/train/events.out.tfevents.<unix seconds>.<host>       loss, accuracy, lr, samples_per_s
 *   <out>/tensorboard/validation/events.out.tfevents.<unix seconds>.<host>  loss, accuracy (= val_loss, val_accuracy)
 *
 * This module does not read event files, run TensorBoard, or log histograms /
 * images (scalars only).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The `file_version` every TF2 event file starts with. */
export const EVENT_FILE_VERSION = 'brain.Event:2';
/** Directory under the train out dir holding the event files. */
export const TENSORBOARD_DIR = 'tensorboard';
/** TensorBoard "runs" (sub-directories) the train stage writes. */
export const TENSORBOARD_RUNS = ['train', 'validation'] as const;
export type TensorBoardRun = (typeof TENSORBOARD_RUNS)[number];

// ---------------------------------------------------------------- CRC-32C

const CRC32C_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15, add 0xa282ead8. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// ---------------------------------------------------------------- protobuf (the few wire types needed)

/** Appends protobuf wire-format fields to a growing byte list. */
class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private varint(v: bigint): void {
    const out: number[] = [];
    let x = BigInt.asUintN(64, v);
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      out.push(b);
    } while (x !== 0n);
    this.parts.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  /** Wire type 1: 8-byte little-endian IEEE double. */
  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(b);
    return this;
  }

  /** Wire type 5: 4-byte little-endian IEEE float. */
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(b);
    return this;
  }

  /** Wire type 0: int64 as a varint (negative values take 10 bytes, two's complement). */
  int64(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }

  /** Wire type 2: length-delimited bytes. */
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(b.length));
    this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

/** One scalar in a summary. */
export interface Scalar {
  readonly tag: string;
  readonly value: number;
}

/** Serialises `Event{wall_time, file_version}`. */
export function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, EVENT_FILE_VERSION).finish();
}

/** Serialises `Event{wall_time, step, summary{value[{tag, simple_value}]}}`. */
export function encodeScalarsEvent(wallTime: number, step: number, scalars: readonly Scalar[]): Uint8Array {
  const summary = new ProtoWriter();
  for (const s of scalars) summary.bytes(1, new ProtoWriter().string(1, s.tag).float(2, s.value).finish());
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(5, summary.finish()).finish();
}

/** Frames `data` as one TFRecord (length, masked CRC of length, data, masked CRC of data). */
export function tfRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc32c(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([head, data, tail]);
}

// ---------------------------------------------------------------- writer

/** Appends scalar events to one event file; every write is flushed (a killed run keeps what it logged). */
export class EventFileWriter {
  /** Absolute path of the event file. */
  readonly file: string;
  private readonly fd: number;

  /** Creates `<dir>/events.out.tfevents.<unix seconds>.<host>` and writes its file_version record. */
  constructor(dir: string, opts: { readonly wallTime?: number; readonly host?: string } = {}) {
    const wall = opts.wallTime ?? Date.now() / 1000;
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(wall)}.${opts.host ?? os.hostname()}`);
    this.fd = fs.openSync(this.file, 'a');
    fs.writeSync(this.fd, tfRecord(encodeFileVersionEvent(wall)));
  }

  /** Writes one event with `scalars` at `step`; non-finite values are skipped (TensorBoard cannot plot them). */
  scalars(step: number, scalars: readonly Scalar[], wallTime = Date.now() / 1000): void {
    const finite = scalars.filter((s) => Number.isFinite(s.value));
    if (finite.length === 0) return;
    fs.writeSync(this.fd, tfRecord(encodeScalarsEvent(wallTime, step, finite)));
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The per-epoch fields the train stage logs (a subset of checkpoint.ts's EpochRecord). */
export interface EpochScalars {
  readonly loss: number;
  readonly accuracy: number;
  readonly val_loss?: number;
  readonly val_accuracy?: number;
  readonly lr: number;
  readonly samples_per_s?: number;
}

/** Splits an epoch's metrics into the train and validation runs (Keras layout: validation tags drop `val_`). */
export function epochScalars(r: EpochScalars): Record<TensorBoardRun, Scalar[]> {
  return {
    train: [
      { tag: 'loss', value: r.loss },
      { tag: 'accuracy', value: r.accuracy },
      { tag: 'lr', value: r.lr },
      ...(r.samples_per_s !== undefined ? [{ tag: 'samples_per_s', value: r.samples_per_s }] : []),
    ],
    validation: [
      ...(r.val_loss !== undefined ? [{ tag: 'loss', value: r.val_loss }] : []),
      ...(r.val_accuracy !== undefined ? [{ tag: 'accuracy', value: r.val_accuracy }] : []),
    ],
  };
}

/** Something that takes per-epoch metrics at a global step (epoch number across phases, from 1). */
export interface EpochLogger {
  epoch(step: number, r: EpochScalars): void;
  close(): void;
}

/** Our own event files under `<root>/{train,validation}/` (the validation file is created on first use). */
export function tensorBoardLogger(root: string, opts: { readonly host?: string; readonly now?: () => number } = {}): EpochLogger & { files(): string[] } {
  const now = opts.now ?? (() => Date.now() / 1000);
  const start = now();
  const writers = new Map<TensorBoardRun, EventFileWriter>();
  const writer = (run: TensorBoardRun): EventFileWriter => {
    let w = writers.get(run);
    if (w === undefined) {
      w = new EventFileWriter(path.join(root, run), { wallTime: start, ...(opts.host !== undefined ? { host: opts.host } : {}) });
      writers.set(run, w);
    }
    return w;
  };
  return {
    epoch(step, r) {
      const t = now();
      const byRun = epochScalars(r);
      for (const run of TENSORBOARD_RUNS) if (byRun[run].length > 0) writer(run).scalars(step, byRun[run], t);
    },
    close() {
      for (const w of writers.values()) w.close();
      writers.clear();
    },
    files() {
      return [...writers.values()].map((w) => w.file);
    },
  };
}

/** The part of tfjs-node's `tf.node.SummaryFileWriter` used here. */
interface NodeSummaryWriter {
  scalar(name: string, value: number, step: number): void;
  flush(): void;
}

/**
 * tfjs-node's own writer for the same scalars, under `<root>/{train,validation}/`, when the backend package
 * `pkg` (BackendChoice.package) is `@tensorflow/tfjs-node` or `-gpu`: the stages' `tf` is the plain
 * `@tensorflow/tfjs` namespace, so the summary writer is taken from the package module itself (already loaded by
 * backend.ts; the import is a cache hit). Undefined for other backends, or if the package has no writer.
 */
export async function tfjsNodeSummaryWriters(pkg: string, root: string): Promise<EpochLogger | undefined> {
  if (pkg !== '@tensorflow/tfjs-node' && pkg !== '@tensorflow/tfjs-node-gpu') return undefined;
  let mod: { node?: unknown; default?: { node?: unknown } };
  try {
    mod = (await import(pkg)) as typeof mod;
  } catch {
    return undefined;
  }
  return nodeSummaryWriters(mod.node !== undefined ? mod : (mod.default ?? {}), root);
}

/**
 * Adapts a tfjs-node namespace's `node.summaryFileWriter` (libtensorflow's writer) to {@link EpochLogger}, logging
 * the same scalars under `<root>/{train,validation}/`; undefined when `tf` has no such writer (plain tfjs, wasm,
 * cpu), where only {@link tensorBoardLogger} writes. Callers give it a different root than our writer's, so
 * TensorBoard does not show every point twice.
 */
export function nodeSummaryWriters(tf: unknown, root: string): EpochLogger | undefined {
  const node = (tf as { node?: { summaryFileWriter?: (dir: string) => NodeSummaryWriter } }).node;
  if (typeof node?.summaryFileWriter !== 'function') return undefined;
  const make = node.summaryFileWriter.bind(node);
  const writers = new Map<TensorBoardRun, NodeSummaryWriter>();
  const writer = (run: TensorBoardRun): NodeSummaryWriter => {
    let w = writers.get(run);
    if (w === undefined) {
      w = make(path.join(root, run));
      writers.set(run, w);
    }
    return w;
  };
  return {
    epoch(step, r) {
      const byRun = epochScalars(r);
      for (const run of TENSORBOARD_RUNS) {
        if (byRun[run].length === 0) continue;
        const w = writer(run);
        for (const s of byRun[run]) if (Number.isFinite(s.value)) w.scalar(s.tag, s.value, step);
        w.flush();
      }
    },
    close() {
      for (const w of writers.values()) w.flush();
    },
  };
}
