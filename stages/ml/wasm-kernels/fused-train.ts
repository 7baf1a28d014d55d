/**
 * Fused training kernels for the fast training executor (fast-graph.ts), as
 * single JS passes over the wasm heap. On wasm every elementwise kernel is a
 * separate single-threaded pass, and the first block of a small CNN
 * (28x28x32 activations at batch 128: 3.2M values) made BatchNorm's ~12
 * passes, the ReLU and the 2x2 max-pool mask the larger half of a training
 * step (profiled: ~200 of ~600 ms). These kernels do the same maths in 1-2
 * passes each:
 *
 * - `FgBatchNormTrain` {x, gamma, beta} (+ `relu`) → [y, mean, variance, invstd]:
 *   batch statistics per channel (float64 sums) and y = relu?(γ·x̂ + β);
 * - `FgBatchNormTrainGrad` {dy, x, mean, invstd, gamma, beta} (+ `relu`) →
 *   [dx, dgamma, dbeta]: the ReLU mask is recomputed from x, no saved x̂;
 * - `FgMaxPool2x2` {x} → y: 2x2 / stride 2 pooling (branch-free);
 * - `FgMaxPool2x2Grad` {dy, x, y} → dx: dy to every input equal to its
 *   window's maximum (ties all get it; see there);
 * - `FgIm2ColT` {x} (attrs kh, kw, padTop, padLeft, outHeight, outWidth) →
 *   patches [kh·kw·c, n·oh·ow] of a stride-1 conv, transposed so that
 *   `patches · dy[n·oh·ow, f]` is the filter gradient in ONE untransposed
 *   XNNPACK matmul (used for few-channel inputs, where the batch-as-channels
 *   trick degenerates).
 *
 * Tensors are channels-last, float32. Every kernel is also
 * registered for the `cpu` backend (same JS code over its arrays), so tests can
 * compare the two and fast-graph's fast paths run under either backend.
 *
 * This module does NOT define gradients for these kernels (fast-graph wraps
 * them in `customGrad`), and does not handle NCHW, strides or dilations.
 */
import type { Info, Tf } from './util.js';

type Args = { inputs: Record<string, Info>; backend: unknown; attrs?: unknown };
type TypedArray = Float32Array | Int32Array;

/** Reads inputs and allocates outputs on the wasm or cpu backend. */
interface Io {
  /** Allocates an output (contents undefined until written). */
  alloc(shape: number[], dtype: 'float32' | 'int32'): Info;
  /** View/array of a tensor's values. On wasm, call only after every `alloc` of this kernel (the heap may move). */
  view(x: Info): TypedArray;
  /** Finishes the outputs (cpu: hands the arrays to the backend). */
  done(outs: Info[]): Info[];
}

interface WasmLike {
  makeOutput(shape: number[], dtype: string): Info;
  typedArrayFromHeap(x: Info): TypedArray;
}
interface CpuLike {
  data: { get(id: unknown): { values: TypedArray } };
  makeTensorInfo(shape: number[], dtype: string, values: TypedArray): Info;
}

function ioFor(backend: unknown): Io {
  if (typeof (backend as WasmLike).typedArrayFromHeap === 'function') {
    const b = backend as WasmLike;
    return { alloc: (shape, dtype) => b.makeOutput(shape, dtype), view: (x) => b.typedArrayFromHeap(x), done: (outs) => outs };
  }
  const b = backend as CpuLike;
  const pending = new Map<Info, TypedArray>();
  return {
    alloc(shape, dtype) {
      const n = shape.reduce((p, d) => p * d, 1);
      const arr = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
      const info = { dataId: {}, shape, dtype } as unknown as Info;
      pending.set(info, arr);
      return info;
    },
    view: (x) => pending.get(x) ?? b.data.get(x.dataId).values,
    done: (outs) => outs.map((o) => b.makeTensorInfo(o.shape, o.dtype, pending.get(o)!)),
  };
}

/** Rows and channels of a channels-last tensor, as small integers (`| 0`: a float-typed loop bound or index sends V8 down a slow path, measured ~10x). */
function channels(x: Info): { m: number; c: number } {
  const c = x.shape[x.shape.length - 1]! | 0;
  const size = x.shape.reduce((p, d) => p * d, 1);
  return { m: (size / c) | 0, c };
}

/** BatchNorm (training mode, biased batch variance) with an optional fused ReLU. */
function bnTrain(args: Args): Info[] {
  const { x, gamma, beta } = args.inputs as { x: Info; gamma: Info; beta: Info };
  const { epsilon, relu } = args.attrs as { epsilon: number; relu: boolean };
  const { m, c } = channels(x);
  const io = ioFor(args.backend);
  const y = io.alloc([...x.shape], 'float32');
  const mean = io.alloc([c], 'float32');
  const variance = io.alloc([c], 'float32');
  const invstd = io.alloc([c], 'float32');
  const xv = io.view(x) as Float32Array;
  const gv = io.view(gamma) as Float32Array;
  const bv = io.view(beta) as Float32Array;
  const s = new Float64Array(c);
  const s2 = new Float64Array(c);
  const total = (m * c) | 0;
  for (let o = 0; o < total; o += c) {
    for (let q = 0; q < c; q++) {
      const v = xv[o + q]!;
      s[q] += v;
      s2[q] += v * v;
    }
  }
  const mv = io.view(mean) as Float32Array;
  const vv = io.view(variance) as Float32Array;
  const iv = io.view(invstd) as Float32Array;
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  for (let q = 0; q < c; q++) {
    const mu = s[q]! / m;
    const va = Math.max(0, s2[q]! / m - mu * mu);
    const inv = 1 / Math.sqrt(va + epsilon);
    mv[q] = mu;
    vv[q] = va;
    iv[q] = inv;
    a[q] = gv[q]! * inv;
    b[q] = bv[q]! - mu * gv[q]! * inv;
  }
  const yv = io.view(y) as Float32Array;
  if (relu) {
    // Branch-free ReLU: (t + |t|) / 2 is exact; `t > 0 ? t : 0` and Math.max mispredict / handle NaN (measured ~4x slower).
    for (let o = 0; o < total; o += c) {
      for (let q = 0; q < c; q++) {
        const t = xv[o + q]! * a[q]! + b[q]!;
        yv[o + q] = (t + Math.abs(t)) * 0.5;
      }
    }
  } else {
    for (let o = 0; o < total; o += c) for (let q = 0; q < c; q++) yv[o + q] = xv[o + q]! * a[q]! + b[q]!;
  }
  return io.done([y, mean, variance, invstd]);
}

/** Backward pass of `bnTrain`: dx, dgamma, dbeta. */
function bnTrainGrad(args: Args): Info[] {
  const { dy, x, mean, invstd, gamma, beta } = args.inputs as Record<'dy' | 'x' | 'mean' | 'invstd' | 'gamma' | 'beta', Info>;
  const { relu } = args.attrs as { relu: boolean };
  const { m, c } = channels(x);
  const io = ioFor(args.backend);
  const dx = io.alloc([...x.shape], 'float32');
  const dgamma = io.alloc([c], 'float32');
  const dbeta = io.alloc([c], 'float32');
  const dyv = io.view(dy) as Float32Array;
  const xv = io.view(x) as Float32Array;
  const mv = io.view(mean) as Float32Array;
  const iv = io.view(invstd) as Float32Array;
  const gv = io.view(gamma) as Float32Array;
  const bv = io.view(beta) as Float32Array;
  // The forward output is y = x*a + b (then ReLU); x̂ = x*inv + sh.
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  const inv = new Float32Array(c);
  const sh = new Float32Array(c);
  for (let q = 0; q < c; q++) {
    inv[q] = iv[q]!;
    sh[q] = -mv[q]! * iv[q]!;
    a[q] = gv[q]! * iv[q]!;
    b[q] = bv[q]! - mv[q]! * gv[q]! * iv[q]!;
  }
  const db = new Float64Array(c);
  const dg = new Float64Array(c);
  const total = (m * c) | 0;
  const dxv = io.view(dx) as Float32Array;
  // Pass 1: g = dy masked by the ReLU (kept in dx), and the per-channel sums of g and g·x̂.
  // Branch-free mask: with r = t + |t| (0 or 2t), r / (r + 1e-300) is 0 or 1 (to double precision for any
  // float32-sized t); a `t > 0` test mispredicts on half the values (measured ~3x slower).
  for (let o = 0; o < total; o += c) {
    for (let q = 0; q < c; q++) {
      const xq = xv[o + q]!;
      let g = dyv[o + q]!;
      if (relu) {
        const t = xq * a[q]! + b[q]!;
        const r = t + Math.abs(t);
        g *= r / (r + 1e-300);
      }
      dxv[o + q] = g;
      db[q] += g;
      dg[q] += g * (xq * inv[q]! + sh[q]!);
    }
  }
  // dx = k·(g − db/m − x̂·dg/m) with k = γ·inv  →  dx = k·g + x·P + Q.
  const P = new Float32Array(c);
  const Q = new Float32Array(c);
  const dgv = io.view(dgamma) as Float32Array;
  const dbv = io.view(dbeta) as Float32Array;
  for (let q = 0; q < c; q++) {
    const k = a[q]!;
    P[q] = (-k * inv[q]! * dg[q]!) / m;
    Q[q] = (-k * db[q]!) / m - (k * sh[q]! * dg[q]!) / m;
    dgv[q] = dg[q]!;
    dbv[q] = db[q]!;
  }
  for (let o = 0; o < total; o += c) {
    for (let q = 0; q < c; q++) dxv[o + q] = a[q]! * dxv[o + q]! + xv[o + q]! * P[q]! + Q[q]!;
  }
  return io.done([dx, dgamma, dbeta]);
}

/**
 * 2x2 / stride-2 max pooling (even height and width). Branch-free: max(a, b) = (a + b + |a − b|) / 2, exact
 * for float32 inputs in double arithmetic; compare-and-branch on activations mispredicts (measured ~3x slower).
 */
function maxPool2x2(args: Args): Info {
  const { x } = args.inputs as { x: Info };
  const n = x.shape[0]! | 0;
  const h = x.shape[1]! | 0;
  const w = x.shape[2]! | 0;
  const c = x.shape[3]! | 0;
  if (h % 2 !== 0 || w % 2 !== 0) throw new Error(`FgMaxPool2x2: height and width must be even, got ${h}x${w}`);
  const oh = h >> 1;
  const ow = w >> 1;
  const io = ioFor(args.backend);
  const y = io.alloc([n, oh, ow, c], 'float32');
  const xv = io.view(x) as Float32Array;
  const yv = io.view(y) as Float32Array;
  const row = w * c;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      for (let s = 0; s < ow; s++) {
        const p00 = ((b * h + 2 * r) * w + 2 * s) * c;
        for (let q = 0; q < c; q++, o++) {
          const i = p00 + q;
          const a0 = xv[i]!;
          const a1 = xv[i + c]!;
          const a2 = xv[i + row]!;
          const a3 = xv[i + row + c]!;
          const m01 = (a0 + a1 + Math.abs(a0 - a1)) * 0.5;
          const m23 = (a2 + a3 + Math.abs(a2 - a3)) * 0.5;
          yv[o] = (m01 + m23 + Math.abs(m01 - m23)) * 0.5;
        }
      }
    }
  }
  return io.done([y])[0]!;
}

/**
 * Gradient of `maxPool2x2`: each input equal to its window's maximum gets the window's dy. Ties (equal values
 * in one window) all get it; in a CNN they are practically only ReLU zeros, whose gradient the ReLU mask
 * removes anyway. Branch-free: with d = y − x ≥ 0, 1 − d / (d + 1e-300) is 1 when d = 0 and 0 otherwise
 * (to double precision for float32-sized d).
 */
function maxPool2x2Grad(args: Args): Info {
  const { dy, x, y } = args.inputs as { dy: Info; x: Info; y: Info };
  const n = x.shape[0]! | 0;
  const h = x.shape[1]! | 0;
  const w = x.shape[2]! | 0;
  const c = x.shape[3]! | 0;
  const oh = h >> 1;
  const ow = w >> 1;
  const io = ioFor(args.backend);
  const dx = io.alloc([n, h, w, c], 'float32');
  const xv = io.view(x) as Float32Array;
  const yv = io.view(y) as Float32Array;
  const dyv = io.view(dy) as Float32Array;
  const dxv = io.view(dx) as Float32Array;
  const row = w * c;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      for (let s = 0; s < ow; s++) {
        const p00 = ((b * h + 2 * r) * w + 2 * s) * c;
        for (let q = 0; q < c; q++, o++) {
          const i = p00 + q;
          const m = yv[o]!;
          const g = dyv[o]!;
          const d0 = m - xv[i]!;
          const d1 = m - xv[i + c]!;
          const d2 = m - xv[i + row]!;
          const d3 = m - xv[i + row + c]!;
          dxv[i] = g * (1 - d0 / (d0 + 1e-300));
          dxv[i + c] = g * (1 - d1 / (d1 + 1e-300));
          dxv[i + row] = g * (1 - d2 / (d2 + 1e-300));
          dxv[i + row + c] = g * (1 - d3 / (d3 + 1e-300));
        }
      }
    }
  }
  return io.done([dx])[0]!;
}

/** Transposed im2col of a stride-1 conv: [kh*kw*c, n*oh*ow], rows ordered (a, b, channel) like a conv filter. */
function im2colT(args: Args): Info {
  const { x } = args.inputs as { x: Info };
  const a0 = args.attrs as Record<'kh' | 'kw' | 'padTop' | 'padLeft' | 'outHeight' | 'outWidth', number>;
  const [kh, kw, padTop, padLeft, oh, ow] = [a0.kh | 0, a0.kw | 0, a0.padTop | 0, a0.padLeft | 0, a0.outHeight | 0, a0.outWidth | 0];
  const [n, h, w, c] = (x.shape as number[]).map((d) => d | 0) as [number, number, number, number];
  const io = ioFor(args.backend);
  const cols = n * oh * ow;
  const out = io.alloc([kh * kw * c, cols], 'float32');
  const xv = io.view(x) as Float32Array;
  const ov = io.view(out) as Float32Array;
  for (let a = 0; a < kh; a++) {
    for (let bb = 0; bb < kw; bb++) {
      for (let ci = 0; ci < c; ci++) {
        let o = ((a * kw + bb) * c + ci) * cols;
        for (let b = 0; b < n; b++) {
          for (let r = 0; r < oh; r++) {
            const yy = r + a - padTop;
            if (yy < 0 || yy >= h) {
              ov.fill(0, o, o + ow);
              o += ow;
              continue;
            }
            const base = (b * h + yy) * w;
            for (let s = 0; s < ow; s++, o++) {
              const xx = s + bb - padLeft;
              ov[o] = xx < 0 || xx >= w ? 0 : xv[(base + xx) * c + ci]!;
            }
          }
        }
      }
    }
  }
  return io.done([out])[0]!;
}

/** Kernel name → implementation. */
export const FUSED_TRAINING_KERNELS: Readonly<Record<string, (args: Args) => Info | Info[]>> = {
  FgBatchNormTrain: bnTrain,
  FgBatchNormTrainGrad: bnTrainGrad,
  FgMaxPool2x2: maxPool2x2,
  FgMaxPool2x2Grad: maxPool2x2Grad,
  FgIm2ColT: im2colT,
};

type KernelFunc = Parameters<Tf['registerKernel']>[0]['kernelFunc'];

/** Registers the fused kernels for `backendName` ('wasm' or 'cpu'); idempotent. Returns the names added. */
export function registerFusedTrainingKernels(tf: Tf, backendName: string): string[] {
  const added: string[] = [];
  for (const [kernelName, impl] of Object.entries(FUSED_TRAINING_KERNELS)) {
    if (tf.getKernel(kernelName, backendName) !== undefined) continue;
    tf.registerKernel({ kernelName, backendName, kernelFunc: impl as unknown as KernelFunc });
    added.push(kernelName);
  }
  return added;
}
