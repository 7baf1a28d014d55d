/**
 * `Conv2DBackpropFilter` for wasm: dW[kh,kw]ᵀ = dyᵀ · patch(kh,kw), one XNNPACK
 * matmul per filter tap (dy is transposed once; wasm's matmul only uses
 * XNNPACK for untransposed operands), where patch(kh,kw) is a strided slice of
 * the padded input (an im2col done one tap at a time, so memory stays at one [N, Cin]
 * slice instead of the full [N, KH·KW·Cin] matrix).
 *
 * This module does NOT handle NCHW (tfjs layers train NHWC) or dilations
 * (tfjs' conv2d gradient never asks for them).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { pair, WasmOps, type Info, type Tf } from './util.js';

/** Attributes tfjs passes to Conv2DBackpropFilter. */
interface Attrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** Kernel function: inputs {x, dy}. */
export function conv2dBackpropFilter(tf: Tf, args: { inputs: Record<string, Info>; backend: unknown; attrs?: unknown }): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs as Attrs;
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter (wasm): NCHW is not supported');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    pair(attrs.strides),
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return filterGradient(tf, args.backend as BackendWasm, x, dy, info, 'full');
}

/**
 * Shared by the full and the depthwise filter gradients: loops over taps, slices the
 * padded input, and combines it with dy (matmul for full conv, multiply+sum for depthwise).
 */
export function filterGradient(tf: Tf, backend: BackendWasm, x: Info, dy: Info, info: ReturnType<Tf['backend_util']['computeConv2DInfo']>, kind: 'full' | 'depthwise'): Info {
  const ops = new WasmOps(tf, backend);
  try {
    const [b, h, w, cin] = x.shape as [number, number, number, number];
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, filterHeight: kh, filterWidth: kw } = info;
    const cout = dy.shape[3]!;
    const n = b * oh * ow;
    const needH = (kh - 1) * dh + (oh - 1) * sh + 1;
    const needW = (kw - 1) * dw + (ow - 1) * sw + 1;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const xp = padOrCropTo(ops, x, top, needH - h - top, left, needW - w - left);
    const mult = cout / cin;
    // dyᵀ once, so every tap is a plain (untransposed) matmul dyᵀ[Cout,N]·patch[N,Cin] that XNNPACK runs.
    const dyT = kind === 'full' ? ops.run('Transpose', { x: ops.reshape(dy, [n, cout]) }, { perm: [1, 0] }) : undefined;
    const dyT3 = dyT !== undefined ? ops.reshape(dyT, [1, cout, n]) : undefined;
    const dy3 = kind === 'depthwise' ? ops.reshape(dy, [n, cin, mult]) : undefined;
    const ones = kind === 'depthwise' ? ops.run('Fill', {}, { shape: [1, 1, n], value: 1, dtype: 'float32' }) : undefined;
    const taps: Info[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const patch = ops.stridedSlice(xp, [0, i * dh, j * dw, 0], [b, i * dh + (oh - 1) * sh + 1, j * dw + (ow - 1) * sw + 1, cin], [1, sh, sw, 1]);
        if (kind === 'full') {
          const p = ops.reshape(patch, [1, n, cin]);
          taps.push(ops.run('BatchMatMul', { a: dyT3!, b: p }, { transposeA: false, transposeB: false }));
        } else {
          const p = ops.reshape(patch, [n, cin, 1]);
          const prod = ops.reshape(ops.run('Multiply', { a: p, b: dy3! }), [1, n, cin * mult]);
          // Column sums through XNNPACK's matmul (ones · prod) rather than a strided reduction.
          taps.push(ops.reshape(ops.run('BatchMatMul', { a: ones!, b: prod }, { transposeA: false, transposeB: false }), [1, cin * mult]));
        }
      }
    }
    const stacked = taps.length === 1 ? taps[0]! : ops.run('Concat', taps as unknown as Record<string, Info>, { axis: 0 });
    // full: stacked is [taps, Cout, Cin] -> [taps, Cin, Cout]; depthwise: [taps, Cin*M].
    const out = kind === 'full' ? ops.reshape(ops.run('Transpose', { x: stacked }, { perm: [0, 2, 1] }), [kh, kw, cin, cout]) : ops.reshape(stacked, [kh, kw, cin, mult]);
    return ops.keep(out);
  } finally {
    ops.dispose();
  }
}

function padOrCropTo(ops: WasmOps, x: Info, top: number, bottom: number, left: number, right: number): Info {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const cropB = Math.max(0, -bottom);
  const cropR = Math.max(0, -right);
  const cropped = ops.slice(x, [0, 0, 0, 0], [b, h - cropB, w - cropR, c]);
  return ops.pad(cropped, [
    [0, 0],
    [top, Math.max(0, bottom)],
    [left, Math.max(0, right)],
    [0, 0],
  ]);
}
