/**
 * Depthwise-convolution gradients for wasm.
 *
 * - `DepthwiseConv2dNativeBackpropFilter`: per filter tap, a strided slice of
 *   the padded input times dy, summed over batch and space with an XNNPACK
 *   matmul against a ones vector (see `conv2d-backprop-filter.ts`).
 * - `DepthwiseConv2dNativeBackpropInput`: the transposed depthwise conv. dy is
 *   spread out by the stride (zeros inserted, done with two rank-4 pads), padded
 *   by `(K-1)·d - pad`, and correlated with the 180°-rotated filter by the wasm
 *   `DepthwiseConv2dNative` kernel (stride 1, same dilation). A channel
 *   multiplier M > 1 runs as a multiplier-1 depthwise conv over Cin·M channels
 *   followed by a sum over M.
 *
 * This module does NOT support NCHW.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { filterGradient } from './conv2d-backprop-filter.js';
import { spreadByStride } from './conv2d-backprop-input.js';
import { pair, padOrCrop, WasmOps, type Info, type Tf } from './util.js';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

/** Attributes of DepthwiseConv2dNativeBackpropFilter. */
interface FilterAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/** Attributes of DepthwiseConv2dNativeBackpropInput. */
interface InputAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

type Args = { inputs: Record<string, Info>; backend: unknown; attrs?: unknown };

/** Kernel function: inputs {x, dy}. */
export function depthwiseBackpropFilter(tf: Tf, args: Args): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const a = args.attrs as FilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], a.filterShape, pair(a.strides), pair(a.dilations), a.pad, a.dimRoundingMode, true);
  return filterGradient(tf, args.backend as BackendWasm, x, dy, info);
}

/** Kernel function: inputs {dy, filter}. */
export function depthwiseBackpropInput(tf: Tf, args: Args): Info {
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const a = args.attrs as InputAttrs;
  const backend = args.backend as BackendWasm;
  const filterShape = filter.shape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(a.inputShape, filterShape, pair(a.strides), pair(a.dilations), a.pad, a.dimRoundingMode, true);
  const ops = new WasmOps(tf, backend);
  try {
    const [b, h, w, cin] = a.inputShape;
    const [kh, kw, , m] = filterShape;
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
    const c = cin * m;
    // 1. Insert (stride - 1) zeros after every dy row/column: [B, OH*sh, OW*sw, C].
    const y = spreadByStride(ops, dy, sh, sw);
    // 2. Pad/crop so that a stride-1 'valid' correlation yields exactly [H, W].
    const top = (kh - 1) * dh - info.padInfo.top;
    const left = (kw - 1) * dw - info.padInfo.left;
    const bottom = h + (kh - 1) * dh - top - oh * sh;
    const right = w + (kw - 1) * dw - left - ow * sw;
    const yp = padOrCrop(ops, y, top, bottom, left, right);
    // 3. Rotate the filter by 180° and view it as multiplier-1 over Cin*M channels.
    const rot = ops.reshape(ops.run('Reverse', { x: filter }, { dims: [0, 1] }), [kh, kw, c, 1]);
    const z = ops.run('DepthwiseConv2dNative', { x: yp, filter: rot }, { strides: [1, 1], pad: 'valid', dilations: [dh, dw], dimRoundingMode: undefined, dataFormat: 'NHWC' });
    const out = m === 1 ? z : ops.run('Sum', { x: ops.reshape(z, [b, h, w, cin, m]) }, { axis: [4], keepDims: false });
    return ops.keep(out);
  } finally {
    ops.dispose();
  }
}
