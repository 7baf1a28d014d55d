#!/usr/bin/env node
// Converts Fashion-MNIST IDX files to class-folder PNGs + manifest.csv (path,label,split).
// Usable as a `cmd:` stage:
//   node scripts/fashion-mnist-to-png.mjs --src ../shared/datasets/fashion-mnist --out data/fmnist \
//        [--limit-train N] [--limit-test N] [--per-class N] [--no-manifest]
// Needs the compiled package (`npm run build`); the logic lives in stages/lib/idx-export.ts.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { exportFashionMnist } = await import(pathToFileURL(path.join(root, 'dist', 'stages', 'lib', 'idx-export.js')).href);

const usage = 'usage: fashion-mnist-to-png.mjs --src <dir with *-ubyte.gz> --out <dir> [--limit-train N] [--limit-test N] [--per-class N] [--no-manifest]';
const args = process.argv.slice(2);
const opts = { manifest: true };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    const v = args[++i];
    if (v === undefined) fail(`${a} needs a value`);
    return v;
  };
  const count = () => {
    const v = value();
    if (!/^\d+$/.test(v)) fail(`${a} needs a non-negative integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  if (a === '--src') opts.src = value();
  else if (a === '--out') opts.out = value();
  else if (a === '--limit-train') opts.limitTrain = count();
  else if (a === '--limit-test') opts.limitTest = count();
  else if (a === '--per-class') opts.perClass = count();
  else if (a === '--no-manifest') opts.manifest = false;
  else if (a === '--help' || a === '-h') {
    process.stdout.write(usage + '\n');
    process.exit(0);
  } else fail(`unknown argument ${JSON.stringify(a)}`);
}
if (!opts.src || !opts.out) fail('--src and --out are required');

function fail(message) {
  process.stderr.write(`fashion-mnist-to-png: ${message}\n${usage}\n`);
  process.exit(2);
}

const started = Date.now();
let lastShown = 0;
const r = await exportFashionMnist({
  ...opts,
  onProgress(done, total) {
    if (Date.now() - lastShown > 1000 || done === total) {
      lastShown = Date.now();
      process.stderr.write(`  ${done}/${total} PNGs\n`);
    }
  },
});
if (!r.ok) {
  process.stderr.write(`fashion-mnist-to-png: ${r.error}\n`);
  process.exit(1);
}
const s = r.value;
process.stdout.write(`wrote ${s.train} train + ${s.test} test PNGs to ${opts.out}${s.manifest ? ` and ${path.relative(process.cwd(), s.manifest)}` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
