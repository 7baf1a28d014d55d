/**
 * Lazy, synchronous access to the heavy libraries stage code uses (sharp, tfjs).
 *
 * `stages/registry.ts` is imported by config analysis and the runner just to read
 * stage metadata, so stage modules and their helpers must not load these at
 * module top level (tfjs alone costs ~0.4 s CPU, sharp ~50 ms). Call these inside
 * the function that needs the library; the first call loads it, later calls
 * return the same module. `test/unit/registry-import.test.ts` checks the
 * registry import stays free of them.
 *
 * `require` here returns the very instance a static `import` would: both packages
 * are CommonJS, and Node's ESM loader shares the CommonJS module cache. Synchronous
 * on purpose, so helpers that were synchronous (`resizeCacheKey`,
 * `compileInference`, ...) keep their signatures.
 *
 * This module does NOT pick or initialise a tfjs backend (`ml/backend.ts` does)
 * and does not import anything else heavy itself (only types).
 */
import { createRequire } from 'node:module';
import type Sharp from 'sharp';
import type * as Tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);

let sharpModule: typeof Sharp | undefined;
let tfModule: typeof Tf | undefined;

/** The `sharp` function (what `import sharp from 'sharp'` gives), loaded on first call. */
export function loadSharp(): typeof Sharp {
  return (sharpModule ??= require('sharp') as typeof Sharp);
}

/**
 * The `@tensorflow/tfjs` module exports (what `import * as tf from '@tensorflow/tfjs'`
 * exposes), loaded on first call. Loading does not select a backend.
 */
export function loadTfjs(): typeof Tf {
  return (tfModule ??= require('@tensorflow/tfjs') as typeof Tf);
}
