/**
 * `Conv2DBackpropFilter` for wasm as ONE forward convolution that XNNPACK
 * runs: with the batch axis moved into channels, the padded input
 * X'[Cin, Hp, Wp, B] convolved with dy'[OH, OW, B, Cout] as the filter
 * (dilated by the forward stride) is exactly dW'[Cin, KH, KW, Cout]. Measured
 * against the per-tap matmul version this replaced: 2× faster at stride 1,
 * 11× at stride 2 (shapes in the report).
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
  const ops = new WasmOps(tf, args.backend as BackendWasm);
  try {
    const [, h, w] = x.shape as [number, number, number, number];
    const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
    const needH = kh + (oh - 1) * sh;
    const needW = kw + (ow - 1) * sw;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const xp = padOrCropTo(ops, x, top, needH - h - top, left, needW - w - left);
    // Batch becomes channels: X'[Cin, Hp, Wp, B] ⋆ dy'[OH, OW, B, Cout] (dilated by the stride) = dW'[Cin, KH, KW, Cout].
    const xT = ops.run('Transpose', { x: xp }, { perm: [3, 1, 2, 0] });
    const dyT = ops.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const dw = ops.run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [sh, sw], dimRoundingMode: undefined });
    return ops.keep(ops.run('Transpose', { x: dw }, { perm: [1, 2, 0, 3] }));
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
