/**
 * Prediction on awkward files, through the predict stage and the
 * `pipeline predict` command (in-process, real streams): a truncated PNG, a
 * text file named .png, a CMYK JPEG, a 16-bit PNG and a PNG whose header
 * claims 30000x30000 pixels, next to normal images. Bad files get their own
 * errors; every decodable file is predicted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { stageRig } from '../helpers/stage-context.js';
import { dataStages, sampleImage, TINY_CNN_MODEL } from './fixtures.js';
import { buildModelStage } from '../../stages/build-model.js';
import { predictStage, PREDICT_DEFAULTS } from '../../stages/predict.js';
import { main as predictMain } from '../../src/cli/predict.js';
import { ExitCode } from '../../src/cli/io.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** A tiny PNG file whose IHDR claims width x height (8-bit gray), with a few bytes of image data. */
function hugeHeaderPng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8);
  ihdr.writeUInt8(0, 9);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

async function awkwardImages(dir: string): Promise<{ good: string[]; bad: string[] }> {
  await fs.mkdir(dir, { recursive: true });
  const bag = await sampleImage('Bag');
  const src = await fs.readFile(bag);
  await fs.writeFile(path.join(dir, 'bag.png'), src);
  await fs.writeFile(path.join(dir, 'truncated.png'), src.subarray(0, Math.floor(src.length / 2)));
  await fs.writeFile(path.join(dir, 'notes.png'), 'this is not an image\n');
  await sharp(src).resize(64, 48).toColourspace('cmyk').jpeg().toFile(path.join(dir, 'cmyk.jpg'));
  await sharp(src).resize(40, 40).toColourspace('rgb16').png().toFile(path.join(dir, 'sixteen.png'));
  await fs.writeFile(path.join(dir, 'huge.png'), hugeHeaderPng(30000, 30000));
  return { good: ['bag.png', 'cmyk.jpg', 'sixteen.png'], bad: ['huge.png', 'notes.png', 'truncated.png'] };
}

test('predict stage and CLI on awkward files: per-image errors, the rest predicted', async () => {
  await using rig = await stageRig();
  const d = await dataStages(rig);
  const bm = await rig.context('build-model', TINY_CNN_MODEL, { resize: d.resize });
  await buildModelStage.run(bm);
  const { good, bad } = await awkwardImages(path.join(rig.dir, 'new'));
  const cs = await sharp(path.join(rig.dir, 'new', 'cmyk.jpg')).metadata();
  assert.equal(cs.space, 'cmyk');

  // The stage (a build-model output is a complete, untrained model directory).
  const ctx = await rig.context('predict', { ...PREDICT_DEFAULTS, images: ['new', 'missing/*.png'], top_k: 2 }, { train: bm.outDir });
  const r = await predictStage.run(ctx);
  assert.deepEqual(r.metrics, { images: 6, predicted: 3, errors: 3 });
  assert.ok(ctx.log.warnings.some((w) => w.startsWith('missing/*.png')));
  const out = JSON.parse(await fs.readFile(path.join(ctx.outDir, 'predictions.json'), 'utf8')) as { classes: string[]; predictions: { file: string; top?: { class: string; p: number }[]; error?: string }[] };
  assert.equal(out.classes.length, 10);
  const byName = new Map(out.predictions.map((p) => [path.basename(p.file), p]));
  for (const g of good) {
    const p = byName.get(g)!;
    assert.equal(p.error, undefined, `${g}: ${p.error}`);
    assert.equal(p.top!.length, 2);
    assert.ok(p.top![0]!.p >= p.top![1]!.p);
    assert.ok(out.classes.includes(p.top![0]!.class));
  }
  for (const b of bad) assert.ok(byName.get(b)!.error, `${b} has an error`);
  assert.match(byName.get('huge.png')!.error!, /pixel|large|limit/i);

  // The CLI: JSON to stdout, exit 1 because some inputs failed.
  const io = (format: string[]) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let o = '';
    let e = '';
    stdout.on('data', (b: Buffer) => (o += b.toString()));
    stderr.on('data', (b: Buffer) => (e += b.toString()));
    return { io: { stdout, stderr, cwd: rig.dir, env: {}, signal: new AbortController().signal }, out: () => o, err: () => e, argv: ['--model', bm.outDir, '--cache', rig.cacheDir, ...format] };
  };
  const j = io(['--format', 'json', 'new']);
  assert.equal(await predictMain([...j.argv], j.io), ExitCode.stageFailed);
  const cli = JSON.parse(j.out()) as { predictions: { file: string; error?: string; top?: unknown[] }[] };
  assert.deepEqual(cli.predictions.map((p) => [path.basename(p.file), p.error === undefined]).sort(), [...good.map((g) => [g, true]), ...bad.map((b) => [b, false])].sort());
  assert.match(j.err(), /3 of 6 input\(s\) could not be classified/);

  const bars = io(['--format', 'bars', 'new/bag.png']);
  assert.equal(await predictMain([...bars.argv], bars.io), ExitCode.ok);
  assert.match(bars.out(), /^new\/bag\.png {2}→ {2}\S+ \(\d+\.\d%\)\n/);
  assert.equal(bars.out().trim().split('\n').length, 11, 'one bar per class');

  const csv = io(['--format', 'csv', '--top-k', '1', 'new/bag.png', 'new/notes.png']);
  await predictMain([...csv.argv], csv.io);
  const lines = csv.out().trim().split('\n');
  assert.equal(lines[0], 'file,class_1,p_1,error');
  assert.match(lines[2]!, /^new\/notes\.png,,,\S/);

  const usage = io(['--top-k', 'x', 'a.png']);
  assert.equal(await predictMain([...usage.argv], usage.io), ExitCode.usage);
  const noModel = io([]);
  assert.equal(await predictMain(['--model', path.join(rig.dir, 'nowhere'), 'new'], noModel.io), ExitCode.usage);
  assert.match(noModel.err(), /no trained model/);
});
