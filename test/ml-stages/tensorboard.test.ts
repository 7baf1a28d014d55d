/**
 * TensorBoard event files: the train stage writes tfevents files under
 * `tensorboard/{train,validation}/`. Checked three ways:
 * - a decoder written here (its own bitwise CRC-32C and protobuf reader, no code shared with
 *   stages/ml/tensorboard.ts) reads every record, checks both masked CRCs, and finds the
 *   history.jsonl values at steps 1..n;
 * - a flipped byte makes that decoder's CRC check fail (the check is real);
 * - TensorBoard's own EventAccumulator (Python) reads the same directory, when a Python with the
 *   `tensorboard` package is available (TENSORBOARD_PYTHON, else python3); otherwise that test skips
 *   and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { stageRig } from '../helpers/stage-context.js';
import { fmnistShards } from './fmnist-shards.js';
import { TINY_CNN_MODEL } from './fixtures.js';
import { buildModelStage } from '../../stages/build-model.js';
import { trainStage, TRAIN_DEFAULTS } from '../../stages/train.js';
import { crc32c, EventFileWriter, tfjsNodeSummaryWriters } from '../../stages/ml/tensorboard.js';
import type { EpochRecord } from '../../stages/ml/checkpoint.js';
import { crc32cBitwise, onlyEventFile, readEvents } from './tfevents-decoder.js';

// ------------------------------------------------------------ tests

test('crc32c: the standard check value and the bitwise reference agree', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32cBitwise(Buffer.from('123456789')), 0xe3069283);
  const b = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37) & 0xff));
  assert.equal(crc32c(b), crc32cBitwise(b));
});

test('EventFileWriter: file_version first, then scalars at their steps; a flipped byte fails the CRC check', async () => {
  const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'tb-'));
  try {
    const w = new EventFileWriter(dir, { wallTime: 1_700_000_000.25, host: 'box' });
    w.scalars(1, [{ tag: 'loss', value: 0.5 }, { tag: 'acc', value: 0.75 }], 1_700_000_001.5);
    w.scalars(300, [{ tag: 'loss', value: Number.NaN }, { tag: 'lr', value: 1e-4 }], 1_700_000_002);
    w.close();
    assert.equal(path.basename(w.file), 'events.out.tfevents.1700000000.box');
    const bytes = await fs.readFile(w.file);
    const ev = readEvents(bytes);
    assert.deepEqual(ev[0], { wallTime: 1_700_000_000.25, fileVersion: 'brain.Event:2', values: {} });
    assert.deepEqual(ev[1], { wallTime: 1_700_000_001.5, step: 1, values: { loss: 0.5, acc: 0.75 } });
    assert.deepEqual(ev[2], { wallTime: 1_700_000_002, step: 300, values: { lr: Math.fround(1e-4) } }, 'NaN is skipped');
    const bad = Buffer.from(bytes);
    bad[bad.length - 6]! ^= 0x01;
    assert.throws(() => readEvents(bad), /data CRC/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Trains 3 epochs on real Fashion-MNIST pixels and returns the out dir and its history. */
async function trained(rig: Awaited<ReturnType<typeof stageRig>>): Promise<{ out: string; history: EpochRecord[] }> {
  const d = await fmnistShards(rig.dir, { train: 128, validation: 32, test: 0 });
  const bm = await rig.context('build-model', TINY_CNN_MODEL, { resize: d.resize });
  await buildModelStage.run(bm);
  const tr = await rig.context(
    'train',
    { ...TRAIN_DEFAULTS, epochs: 3, batch_size: 32, lr: 0.004, lr_schedule: { ...TRAIN_DEFAULTS.lr_schedule, type: 'step' as const, step_size: 1, gamma: 0.5 } },
    { 'build-model': bm.outDir, resize: d.resize, partition: d.partition },
  );
  await trainStage.run(tr);
  const history = (await fs.readFile(path.join(tr.outDir, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord);
  return { out: tr.outDir, history };
}

test('train writes tensorboard/{train,validation} event files whose scalars equal history.jsonl', async () => {
  await using rig = await stageRig();
  const { out, history } = await trained(rig);
  assert.equal(history.length, 3);
  const train = readEvents(await fs.readFile(await onlyEventFile(path.join(out, 'tensorboard', 'train'))));
  const val = readEvents(await fs.readFile(await onlyEventFile(path.join(out, 'tensorboard', 'validation'))));
  for (const ev of [train, val]) {
    assert.equal(ev[0]!.fileVersion, 'brain.Event:2');
    assert.deepEqual(
      ev.slice(1).map((e) => e.step),
      [1, 2, 3],
    );
  }
  history.forEach((h, i) => {
    const t = train[i + 1]!.values;
    assert.deepEqual(t, { loss: Math.fround(h.loss), accuracy: Math.fround(h.accuracy), lr: Math.fround(h.lr), samples_per_s: Math.fround(h.samples_per_s) });
    assert.deepEqual(val[i + 1]!.values, { loss: Math.fround(h.val_loss!), accuracy: Math.fround(h.val_accuracy!) });
  });
  assert.deepEqual(
    history.map((h) => h.lr),
    [0.004, 0.002, 0.001],
    'the lr scalars follow the schedule',
  );
  const walls = train.map((e) => e.wallTime);
  assert.ok(walls.every((w, i) => i === 0 || w >= walls[i - 1]!), 'wall times do not go backwards');
  assert.ok(Math.abs(walls[0]! - Date.now() / 1000) < 600, 'wall time is the current unix time');
  // tfjs-node is not installed here, so its writer's directory must not exist.
  await assert.rejects(fs.stat(path.join(out, 'tensorboard-tfjs-node')));
});

const TB_PYTHON = process.env['TENSORBOARD_PYTHON'] ?? 'python3';
const tbProbe = spawnSync(TB_PYTHON, ['-c', 'import tensorboard; print(tensorboard.__version__)'], { encoding: 'utf8' });
const tbMissing =
  tbProbe.status === 0
    ? false
    : `no Python with the 'tensorboard' package (${TB_PYTHON}: ${(tbProbe.stderr || String(tbProbe.error ?? '')).trim().split('\n').pop()}); set TENSORBOARD_PYTHON to one (Debian has no python3-tensorboard package)`;

test("TensorBoard's own EventAccumulator reads the train stage's logs", { skip: tbMissing }, async () => {
  await using rig = await stageRig();
  const { out, history } = await trained(rig);
  const script = [
    'import json, sys',
    'from tensorboard.backend.event_processing.event_accumulator import EventAccumulator',
    'res = {}',
    'for run in ("train", "validation"):',
    '    acc = EventAccumulator(sys.argv[1] + "/" + run)',
    '    acc.Reload()',
    '    res[run] = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}',
    'print(json.dumps(res))',
  ].join('\n');
  const r = spawnSync(TB_PYTHON, ['-c', script, path.join(out, 'tensorboard')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<'train' | 'validation', Record<string, [number, number][]>>;
  const series = (f: (h: EpochRecord) => number): [number, number][] => history.map((h, i) => [i + 1, Math.fround(f(h))]);
  assert.deepEqual(Object.keys(got.train).sort(), ['accuracy', 'loss', 'lr', 'samples_per_s']);
  assert.deepEqual(got.train['loss'], series((h) => h.loss));
  assert.deepEqual(got.train['accuracy'], series((h) => h.accuracy));
  assert.deepEqual(got.train['lr'], series((h) => h.lr));
  assert.deepEqual(got.validation, { loss: series((h) => h.val_loss!), accuracy: series((h) => h.val_accuracy!) });
});

const TFJS_NODE = '@tensorflow/tfjs-node';
const tfjsNodeLoads = await import(TFJS_NODE).then(
  () => true,
  () => false,
);

test('tfjs-node summary writer: none for other backends or when the package does not load', async () => {
  const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'tb-node-'));
  try {
    assert.equal(await tfjsNodeSummaryWriters('@tensorflow/tfjs-backend-wasm', dir), undefined);
    assert.equal(await tfjsNodeSummaryWriters('@tensorflow/tfjs-backend-cpu', dir), undefined);
    if (!tfjsNodeLoads) assert.equal(await tfjsNodeSummaryWriters(TFJS_NODE, dir), undefined, 'tfjs-node does not load here');
    assert.deepEqual(await fs.readdir(dir), [], 'nothing written');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("tfjs-node summary writer: libtensorflow's event files for train and validation", { skip: tfjsNodeLoads ? false : `${TFJS_NODE} does not load on this machine (an optional dependency without its native library)` }, async () => {
  const dir = await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'tb-node-'));
  try {
    const w = await tfjsNodeSummaryWriters(TFJS_NODE, dir);
    assert.ok(w !== undefined);
    w.epoch(1, { loss: 1, accuracy: 0.5, val_loss: 1.5, val_accuracy: 0.4, lr: 0.01 });
    w.epoch(2, { loss: 0.5, accuracy: 0.75, val_loss: 1.2, val_accuracy: 0.5, lr: 0.01 });
    w.close();
    for (const run of ['train', 'validation']) {
      const files = (await fs.readdir(path.join(dir, run))).filter((f) => f.startsWith('events.out.tfevents.'));
      assert.equal(files.length, 1);
      const ev = readEvents(await fs.readFile(path.join(dir, run, files[0]!)));
      assert.equal(ev[0]!.fileVersion, 'brain.Event:2');
      const tags = ev.slice(1).flatMap((e) => [...Object.keys(e.values), ...(e.tensorTags ?? [])]);
      for (const t of run === 'train' ? ['loss', 'accuracy', 'lr'] : ['loss', 'accuracy']) assert.equal(tags.filter((x) => x === t).length, 2, `${run}/${t} twice`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
