/**
 * Keeps transposed matmuls on XNNPACK. tfjs-backend-wasm 4.22 sends
 * `BatchMatMul` / `_FusedMatMul` to XNNPACK only when neither operand is
 * transposed and both batch sizes are 1; anything else runs a scalar blocked
 * loop (`slow_batch_matmul`) that is an order of magnitude slower. Every
 * backward pass of a Dense layer asks for xᵀ·dy and dy·Wᵀ, so training on wasm
 * hit the slow loop on its largest matmuls.
 *
 * The wrappers below materialise the transposed operand with the wasm
 * `Transpose` kernel (one memory pass) and call the original kernel with
 * `transposeA = transposeB = false`. Batched products (batch > 1) run one
 * XNNPACK matmul per batch entry; besides speed this also avoids a bug of the
 * 4.22 slow path, which indexes a fused bias by (row·cols + col) instead of col.
 *
 * This module does NOT change results beyond float summation order.
 */
import { WasmOps, type Info, type Tf } from './util.js';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Args = { inputs: Record<string, Info>; backend: unknown; attrs?: unknown };
type KernelFunc = (args: Args) => Info;

function batchSize(x: Info): number {
  return x.shape.slice(0, -2).reduce((p, d) => p * d, 1);
}

function swapLastTwo(ops: WasmOps, x: Info): Info {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return ops.run('Transpose', { x }, { perm });
}

/** Wraps an original matmul kernel (`BatchMatMul` or `_FusedMatMul`) so transposes happen before XNNPACK. */
export function untransposedMatMul(tf: Tf, original: KernelFunc): KernelFunc {
  return (args: Args): Info => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const { a, b } = args.inputs as { a: Info; b: Info };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    const ba = batchSize(a);
    const bb = batchSize(b);
    if (ba === 1 && bb === 1 && !attrs.transposeA && !attrs.transposeB) return original(args);
    const ops = new WasmOps(tf, args.backend as BackendWasm);
    try {
      if (ba !== 1 || bb !== 1) return ops.keep(perBatch(tf, ops, args, original, ba, bb));
      const a2 = attrs.transposeA ? swapLastTwo(ops, a) : a;
      const b2 = attrs.transposeB ? swapLastTwo(ops, b) : b;
      return original({ ...args, inputs: { ...args.inputs, a: a2, b: b2 }, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      ops.dispose();
    }
  };
}

/** Runs a batched (possibly broadcast) product as one untransposed XNNPACK matmul per batch entry. */
function perBatch(tf: Tf, ops: WasmOps, args: Args, original: KernelFunc, ba: number, bb: number): Info {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
  const outBatch = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const n = outBatch.reduce((p, d) => p * d, 1);
  if ((ba !== 1 && ba !== n) || (bb !== 1 && bb !== n)) throw new Error(`matmul: unsupported broadcast of batch ${ba} with ${bb}`);
  const a3 = ops.reshape(a, [ba, a.shape.at(-2)!, a.shape.at(-1)!]);
  const b3 = ops.reshape(b, [bb, b.shape.at(-2)!, b.shape.at(-1)!]);
  const parts: Info[] = [];
  for (let i = 0; i < n; i++) {
    const ai = ba === 1 ? a3 : ops.slice(a3, [i, 0, 0], [1, a3.shape[1]!, a3.shape[2]!]);
    const bi = bb === 1 ? b3 : ops.slice(b3, [i, 0, 0], [1, b3.shape[1]!, b3.shape[2]!]);
    const a2 = attrs.transposeA ? swapLastTwo(ops, ai) : ai;
    const b2 = attrs.transposeB ? swapLastTwo(ops, bi) : bi;
    parts.push(ops.track(original({ ...args, inputs: { ...args.inputs, a: a2, b: b2 }, attrs: { ...attrs, transposeA: false, transposeB: false } })));
  }
  const stacked = parts.length === 1 ? parts[0]! : ops.run('Concat', parts as unknown as Record<string, Info>, { axis: 0 });
  return ops.reshape(stacked, [...outBatch, stacked.shape[1]!, stacked.shape[2]!]);
}
