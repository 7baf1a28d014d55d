/**
 * A faster `Conv2DBackpropInput` for wasm. The built-in kernel is a scalar
 * port of the cpu backend's loop; this one is the transposed convolution
 * expressed as a regular convolution that XNNPACK runs: dy is spread out by
 * the stride (zeros inserted), padded by `(K-1) - pad`, and convolved (stride 1)
 * with the filter rotated by 180° and with its in/out channels swapped.
 * Strides > 1 waste the multiplications with inserted zeros (s² more work than
 * ideal), which XNNPACK's speed still more than pays for on the shapes CNNs use.
 *
 * This module does NOT support NCHW or dilations (tfjs never asks for them).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { pair, padOrCrop, WasmOps, type Info, type Tf } from './util.js';

interface Attrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

type Args = { inputs: Record<string, Info>; backend: unknown; attrs?: unknown };

/** Spreads dy by the stride: [B, OH, OW, C] -> [B, OH*sh, OW*sw, C] with zeros after each row/column. */
export function spreadByStride(ops: WasmOps, dy: Info, sh: number, sw: number): Info {
  const [b, oh, ow, c] = dy.shape as [number, number, number, number];
  let y = dy;
  if (sw > 1) y = ops.reshape(ops.pad(ops.reshape(y, [b * oh, ow, 1, c]), [[0, 0], [0, 0], [0, sw - 1], [0, 0]]), [b, oh, ow * sw, c]);
  if (sh > 1) y = ops.reshape(ops.pad(ops.reshape(y, [b, oh, 1, ow * sw * c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0]]), [b, oh * sh, ow * sw, c]);
  return y;
}

/** Kernel function: inputs {dy, filter}; falls back to `original` for layouts it does not handle. */
export function conv2dBackpropInputFast(tf: Tf, original: (args: Args) => Info): (args: Args) => Info {
  return (args: Args): Info => {
    const { dy, filter } = args.inputs as { dy: Info; filter: Info };
    const a = args.attrs as Attrs;
    if (a.dataFormat === 'NCHW' || dy.dtype !== 'float32') return original(args);
    const filterShape = filter.shape as [number, number, number, number];
    const info = tf.backend_util.computeConv2DInfo(a.inputShape, filterShape, pair(a.strides), 1, a.pad, a.dimRoundingMode);
    const ops = new WasmOps(tf, args.backend as BackendWasm);
    try {
      const [, h, w] = a.inputShape;
      const [kh, kw] = filterShape;
      const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
      const y = spreadByStride(ops, dy, sh, sw);
      const top = kh - 1 - info.padInfo.top;
      const left = kw - 1 - info.padInfo.left;
      const yp = padOrCrop(ops, y, top, h + kh - 1 - top - oh * sh, left, w + kw - 1 - left - ow * sw);
      const rot = ops.run('Transpose', { x: ops.run('Reverse', { x: filter }, { dims: [0, 1] }) }, { perm: [0, 1, 3, 2] });
      const dx = ops.run('Conv2D', { x: yp, filter: rot }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined });
      return ops.keep(dx);
    } finally {
      ops.dispose();
    }
  };
}
