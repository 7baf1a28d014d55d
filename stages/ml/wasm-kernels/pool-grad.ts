/**
 * `MaxPoolGrad` for wasm as one JS pass over the wasm heap (the built-in is a
 * scalar C++ port of the cpu loop that recomputes each window per input pixel).
 * Same semantics as the cpu backend: within each (clipped) window the FIRST
 * strictly largest input gets the output gradient; NaN-only windows get none.
 *
 * This module does NOT handle dilated pooling (falls back to the original).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Info, Tf } from './util.js';

type Args = { inputs: Record<string, Info>; backend: unknown; attrs?: unknown };
type KernelFunc = (args: Args) => Info;

interface Attrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Wraps the original `MaxPoolGrad` (inputs {dy, input, output}). */
export function fastMaxPoolGrad(tf: Tf, original: KernelFunc): KernelFunc {
  return (args: Args): Info => {
    const { dy, input } = args.inputs as { dy: Info; input: Info };
    const a = args.attrs as Attrs;
    if (input.dtype !== 'float32' || input.shape.length !== 4) return original(args);
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return original(args);
    const backend = args.backend as BackendWasm;
    const [b, h, w, c] = input.shape as [number, number, number, number];
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
    const pt = info.padInfo.top;
    const pl = info.padInfo.left;
    const out = backend.makeOutput([b, h, w, c], 'float32');
    const xv = backend.typedArrayFromHeap(input) as Float32Array;
    const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
    const dx = backend.typedArrayFromHeap(out) as Float32Array;
    dx.fill(0);
    const best = new Float32Array(c);
    const where = new Int32Array(c);
    for (let bi = 0; bi < b; bi++) {
      for (let y = 0; y < oh; y++) {
        const h0 = Math.max(0, y * sh - pt);
        const h1 = Math.min(h, y * sh - pt + fh);
        for (let z = 0; z < ow; z++) {
          const w0 = Math.max(0, z * sw - pl);
          const w1 = Math.min(w, z * sw - pl + fw);
          best.fill(Number.NEGATIVE_INFINITY);
          where.fill(-1);
          for (let hh = h0; hh < h1; hh++) {
            for (let ww = w0; ww < w1; ww++) {
              const xo = ((bi * h + hh) * w + ww) * c;
              for (let q = 0; q < c; q++) {
                const v = xv[xo + q]!;
                if (v > best[q]!) {
                  best[q] = v;
                  where[q] = xo + q;
                }
              }
            }
          }
          const dyo = ((bi * oh + y) * ow + z) * c;
          for (let q = 0; q < c; q++) {
            const p = where[q]!;
            if (p >= 0) dx[p]! += dyv[dyo + q]!;
          }
        }
      }
    }
    return out;
  };
}
