/**
 * Child process for bench/hash.bench.ts: opens the memo, hashes one dependency
 * directory, saves the memo, and prints one JSON line with the in-process time,
 * hashing counters and peak RSS. Run as `node hash-child.js <workspace> <dep> <memoFile>`.
 */
import { FileHasher } from '../src/hash/file-hasher.js';

const [workspace, dep, memoFile] = process.argv.slice(2) as [string, string, string];
const t0 = performance.now();
const hasher = await FileHasher.open(memoFile);
const tOpen = performance.now();
const h = await hasher.hashDep(workspace, dep);
const tHash = performance.now();
await hasher.save();
const tSave = performance.now();
process.stdout.write(
  `${JSON.stringify({
    hash: h.hash,
    files: h.files,
    openMs: tOpen - t0,
    hashMs: tHash - tOpen,
    saveMs: tSave - tHash,
    totalMs: tSave - t0,
    sinceProcessStartMs: performance.now(),
    stats: hasher.stats,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  })}\n`,
);
