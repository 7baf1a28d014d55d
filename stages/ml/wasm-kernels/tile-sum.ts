/**
 * Faster wasm `Tile` and leading-axes `Sum`, both hot in BatchNormalization's
 * backward pass: tfjs-core's batchNorm gradient tiles the per-channel
 * 1/√(σ²+ε) to the full [B,H,W,C] shape and reduces dy over [B,H,W].
 *
 * - `Tile`: block copies on the wasm heap (`TypedArray.set` / `copyWithin`,
 *   i.e. memcpy) instead of the built-in per-element index arithmetic.
 * - `Sum` over the leading axes of a float32 tensor: one contiguous pass of
 *   column sums in JS (float64 accumulators) instead of a transpose followed
 *   by a reduction. (A ones·x matmul on XNNPACK was tried: it re-packs x as
 *   "weights" on every call and was slower.)
 *
 * Other cases go to the original kernels. This module does NOT change results
 * beyond float summation order.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Info, Tf } from './util.js';

type Args = { inputs: Record<string, Info>; backend: unknown; attrs?: unknown };
type KernelFunc = (args: Args) => Info;

type Typed = Float32Array | Int32Array | Uint8Array;

/** Wraps the original `Tile`. */
export function fastTile(_tf: Tf, original: KernelFunc): KernelFunc {
  return (args: Args): Info => {
    const { x } = args.inputs as { x: Info };
    const { reps } = args.attrs as { reps: number[] };
    if (x.dtype === 'string' || x.dtype === 'complex64' || reps.length !== x.shape.length) return original(args);
    const backend = args.backend as BackendWasm;
    const shape = x.shape;
    const rank = shape.length;
    const outShape = shape.map((d, i) => d * reps[i]!);
    const out = backend.makeOutput(outShape, x.dtype);
    if (outShape.some((d) => d === 0)) return out;
    // Views after makeOutput: allocation may grow (and detach) the heap.
    const src = backend.typedArrayFromHeap(x) as Typed;
    const dst = backend.typedArrayFromHeap(out) as Typed;
    const srcStride = new Array<number>(rank).fill(1);
    const dstStride = new Array<number>(rank).fill(1);
    for (let i = rank - 2; i >= 0; i--) {
      srcStride[i] = srcStride[i + 1]! * shape[i + 1]!;
      dstStride[i] = dstStride[i + 1]! * outShape[i + 1]!;
    }
    const repeat = (start: number, block: number, times: number): void => {
      for (let r = 1; r < times; r++) dst.copyWithin(start + r * block, start, start + block);
    };
    const fill = (axis: number, srcOff: number, dstOff: number): void => {
      const n = shape[axis]!;
      if (axis === rank - 1) {
        dst.set(src.subarray(srcOff, srcOff + n), dstOff);
        if (n >= 16) repeat(dstOff, n, reps[axis]!);
        else for (let r = 1; r < reps[axis]!; r++) for (let k = 0; k < n; k++) dst[dstOff + r * n + k] = src[srcOff + k]!;
        return;
      }
      for (let j = 0; j < n; j++) fill(axis + 1, srcOff + j * srcStride[axis]!, dstOff + j * dstStride[axis]!);
      repeat(dstOff, n * dstStride[axis]!, reps[axis]!);
    };
    fill(0, 0, 0);
    return out;
  };
}

/** Wraps the original `Sum`: leading-axes float32 sums become one pass of column sums (float64 accumulators). */
export function leadingAxesSum(_tf: Tf, original: KernelFunc): KernelFunc {
  return (args: Args): Info => {
    const { x } = args.inputs as { x: Info };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading) return original(args);
    const r = x.shape.slice(0, axes.length).reduce((p, d) => p * d, 1);
    const rest = x.shape.slice(axes.length);
    const c = rest.reduce((p, d) => p * d, 1);
    if (r < 2 || c < 1) return original(args);
    const backend = args.backend as BackendWasm;
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...rest] : rest, 'float32');
    const xv = backend.typedArrayFromHeap(x) as Float32Array;
    const acc = new Float64Array(c);
    for (let i = 0; i < r; i++) {
      const o = i * c;
      for (let k = 0; k < c; k++) acc[k]! += xv[o + k]!;
    }
    (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
    return out;
  };
}
