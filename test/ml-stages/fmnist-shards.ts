/**
 * Writes real Fashion-MNIST images (from ../shared/datasets/fashion-mnist via
 * the IDX reader) straight into an image shard directory plus a partition,
 * so model-stage tests train on genuine data without decoding PNGs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readIdxFile, FASHION_MNIST_CLASSES } from '../../stages/lib/idx.js';
import { ShardWriter } from '../../stages/lib/shards.js';
import { PARTITION_FILE, type Split } from '../../stages/lib/splits.js';
import { repoRoot } from '../helpers/rig.js';

/** The dataset directory (read-only). */
export const FMNIST_DIR = path.resolve(repoRoot, '..', 'shared', 'datasets', 'fashion-mnist');

/** Writes `counts.train` / `validation` / `test` images (train+validation from the official train set, test from t10k). */
export async function fmnistShards(dir: string, counts: Record<Split, number>): Promise<{ resize: string; partition: string }> {
  const load = async (kind: 'train' | 't10k') => {
    const x = await readIdxFile(path.join(FMNIST_DIR, `${kind}-images-idx3-ubyte.gz`));
    const y = await readIdxFile(path.join(FMNIST_DIR, `${kind}-labels-idx1-ubyte.gz`));
    if (!x.ok || !y.ok) throw new Error(`cannot read Fashion-MNIST from ${FMNIST_DIR}`);
    return { x: x.value.data, y: y.value.data };
  };
  const tr = await load('train');
  const te = await load('t10k');
  const resize = path.join(dir, 'resize');
  const w = new ShardWriter(resize, { height: 28, width: 28, channels: 1, classes: [...FASHION_MNIST_CLASSES] });
  const assignments: Record<string, Split> = {};
  const add = (src: { x: Uint8Array; y: Uint8Array }, i: number, split: Split, tag: string): void => {
    const id = `${tag}${String(i).padStart(62, '0')}`;
    w.add(id, id, src.y[i]!, src.x.subarray(i * 784, (i + 1) * 784));
    assignments[id] = split;
  };
  for (let i = 0; i < counts.train; i++) add(tr, i, 'train', 'a');
  for (let i = 0; i < counts.validation; i++) add(tr, counts.train + i, 'validation', 'b');
  for (let i = 0; i < counts.test; i++) add(te, i, 'test', 'c');
  w.close();
  const partition = path.join(dir, 'partition');
  await fs.mkdir(partition, { recursive: true });
  await fs.writeFile(path.join(partition, PARTITION_FILE), JSON.stringify({ format: 'pipeline.partition/v1', salt: '', ratios: [1, 0, 0], assignments, counts: {} }));
  return { resize, partition };
}
