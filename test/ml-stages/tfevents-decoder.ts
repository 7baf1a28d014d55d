/**
 * An independent reader of TensorBoard event files for tests: its own bitwise
 * CRC-32C and generic protobuf decoder (nothing shared with
 * stages/ml/tensorboard.ts). `readEvents` checks both masked CRCs of every
 * record (failing an assertion when one is wrong) and decodes Event /
 * Summary.Value fields by number.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Bit-at-a-time CRC-32C (no table), to check the module's table version independently. */
export function crc32cBitwise(b: Uint8Array): number {
  let c = ~0 >>> 0;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0x82f63b78 & -(c & 1));
  }
  return ~c >>> 0;
}
const mask = (c: number): number => (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;

type Field = { wire: 0; v: bigint } | { wire: 1; v: Buffer } | { wire: 2; v: Buffer } | { wire: 5; v: Buffer };

/** Generic protobuf decode: field number → values in order. */
function decodeProto(buf: Buffer): Map<number, Field[]> {
  const out = new Map<number, Field[]>();
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      r |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >> 3;
    const wire = key & 7;
    let f: Field;
    if (wire === 0) f = { wire, v: varint() };
    else if (wire === 1) f = { wire, v: buf.subarray(i, (i += 8)) };
    else if (wire === 5) f = { wire, v: buf.subarray(i, (i += 4)) };
    else if (wire === 2) {
      const n = Number(varint());
      f = { wire, v: buf.subarray(i, (i += n)) };
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), f]);
  }
  return out;
}

export interface DecodedEvent {
  wallTime: number;
  step?: number;
  fileVersion?: string;
  values: Record<string, number>;
  tensorTags?: string[];
}

/** Reads a tfevents file record by record, checking the length and data CRCs. */
export function readEvents(bytes: Buffer): DecodedEvent[] {
  const events: DecodedEvent[] = [];
  let o = 0;
  while (o < bytes.length) {
    const lenBytes = bytes.subarray(o, o + 8);
    const len = Number(lenBytes.readBigUInt64LE(0));
    assert.equal(bytes.readUInt32LE(o + 8), mask(crc32cBitwise(lenBytes)), `length CRC at byte ${o}`);
    const data = bytes.subarray(o + 12, o + 12 + len);
    assert.equal(bytes.readUInt32LE(o + 12 + len), mask(crc32cBitwise(data)), `data CRC at byte ${o}`);
    o += 16 + len;
    const ev = decodeProto(data);
    const e: DecodedEvent = { wallTime: (ev.get(1)![0]!.v as Buffer).readDoubleLE(0), values: {} };
    if (ev.has(2)) e.step = Number(ev.get(2)![0]!.v as bigint);
    if (ev.has(3)) e.fileVersion = (ev.get(3)![0]!.v as Buffer).toString('utf8');
    for (const s of ev.get(5) ?? []) {
      for (const v of decodeProto(s.v as Buffer).get(1) ?? []) {
        const val = decodeProto(v.v as Buffer);
        const tag = (val.get(1)![0]!.v as Buffer).toString('utf8');
        // simple_value (field 2); tensor-valued summaries (tfjs-node's) are counted under `tensorTags`.
        if (val.has(2)) e.values[tag] = (val.get(2)![0]!.v as Buffer).readFloatLE(0);
        else e.tensorTags = [...(e.tensorTags ?? []), tag];
      }
    }
    events.push(e);
  }
  assert.equal(o, bytes.length, 'no trailing bytes');
  return events;
}

export async function onlyEventFile(dir: string): Promise<string> {
  const files = (await fs.readdir(dir)).filter((f) => f.startsWith('events.out.tfevents.'));
  assert.equal(files.length, 1, `one event file in ${dir}: ${files.join(', ')}`);
  assert.match(files[0]!, /^events\.out\.tfevents\.\d{10}\.[^/]+$/);
  return path.join(dir, files[0]!);
}
