/**
 * Keras `ImageDataGenerator.apply_transform`, reimplemented for one uint8
 * HWC image: affine warp (skipped when the transform has no geometry),
 * then channel shift, then horizontal flip, then vertical flip, then
 * brightness, in Keras' order and with Keras' float32 intermediate:
 *
 * - channel shift: `clip(x + s, min(x), max(x))` with the min/max over all
 *   channels of the warped image (NumPy 1.x float32 arithmetic);
 * - brightness (`apply_brightness_shift(x, b, scale=False)`): the float image
 *   is truncated to uint8, then PIL `ImageEnhance.Brightness` multiplies by
 *   `float32(b)`, truncating (and clipping when b > 1), as Pillow's `ImagingBlend`.
 *
 * The one step Keras does not have: the float32 result is stored as uint8
 * (rounded to nearest, ties to even, clipped to [0, 255]) because shards
 * hold uint8. `applyTransformFloat` returns the value before that step.
 * Both are checked bit for bit against scipy/NumPy/Pillow outputs in
 * test/augment/keras-golden.test.ts.
 *
 * Pure and synchronous; no random draws (see random-transform.ts).
 */
import type { FillMode, InterpolationOrder } from './params.js';
import type { TransformParams } from './random-transform.js';
import { samplingMatrix } from './affine.js';
import { warpAffine, type ImageShape } from './warp.js';

/** Fill and interpolation settings for the warp. */
export interface WarpOptions {
  /** Boundary mode for points outside the input. */
  readonly fillMode: FillMode;
  /** Value for `constant` fill. */
  readonly cval: number;
  /** 0 nearest, 1 bilinear. */
  readonly interpolationOrder: InterpolationOrder;
}

/** The warped float32 image (Keras' `apply_affine_transform` output). */
function warp(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions, scratch?: Float32Array): Float32Array {
  const n = shape.height * shape.width * shape.channels;
  if (src.length !== n) throw new Error(`image has ${src.length} bytes, expected ${n} for ${shape.height}x${shape.width}x${shape.channels}`);
  // Every element is written below, so a reused scratch needs no clearing.
  const x = scratch !== undefined && scratch.length === n ? scratch : new Float32Array(n);
  const m = samplingMatrix(params, shape.height, shape.width);
  if (m === null) for (let i = 0; i < n; i++) x[i] = src[i]!; // a plain loop beats TypedArray#set across element types
  else warpAffine(src, shape, m, opts.fillMode, opts.cval, opts.interpolationOrder, x);
  return x;
}

/** Channel shift as Keras' `apply_channel_shift`: `clip(x + s, min(x), max(x))`, NumPy 1.x float32 arithmetic. */
interface ChannelShift {
  readonly s: number;
  readonly lo: number;
  readonly hi: number;
}

function channelShiftOf(x: Float32Array, intensity: number | null): ChannelShift | null {
  if (intensity === null) return null;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { s: Math.fround(intensity), lo, hi };
}

function shifted(v: number, cs: ChannelShift): number {
  const t = Math.fround(v + cs.s);
  return t < cs.lo ? cs.lo : t > cs.hi ? cs.hi : t;
}

/** Float32 result of the warp and channel shift (before flips, brightness and quantisation). */
function warpAndShift(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions, scratch?: Float32Array): Float32Array {
  const x = warp(src, shape, params, opts, scratch);
  const cs = channelShiftOf(x, params.channelShiftIntensity);
  if (cs !== null) for (let i = 0; i < x.length; i++) x[i] = shifted(x[i]!, cs);
  return x;
}

/** PIL `ImagingBlend(black, image, alpha)` on one uint8 value. */
function pilBrightness(u: number, alpha: number): number {
  if (alpha === 0) return 0;
  if (alpha === 1) return u;
  const t = Math.fround(alpha * u);
  if (alpha >= 0 && alpha <= 1) return Math.trunc(t);
  return t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
}

/** float32 -> uint8 as NumPy `astype('uint8')` does for in-range values (truncation), then PIL brightness. */
function brightnessOf(v: number, alpha: number): number {
  return pilBrightness(v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v), alpha);
}

/** Source index of output pixel (r, c) after the flips. */
function flippedIndex(r: number, c: number, shape: ImageShape, params: TransformParams): number {
  const sr = params.flipVertical ? shape.height - 1 - r : r;
  const sc = params.flipHorizontal ? shape.width - 1 - c : c;
  return (sr * shape.width + sc) * shape.channels;
}

/** Keras `apply_transform` on `src`, returning the float32 image Keras would return (reference path, not tuned). */
export function applyTransformFloat(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions): Float32Array {
  const x = warpAndShift(src, shape, params, opts);
  const out = new Float32Array(x.length);
  const alpha = params.brightness === null ? null : Math.fround(params.brightness);
  let o = 0;
  for (let r = 0; r < shape.height; r++) {
    for (let c = 0; c < shape.width; c++) {
      const i = flippedIndex(r, c, shape, params);
      for (let k = 0; k < shape.channels; k++) out[o++] = alpha === null ? x[i + k]! : brightnessOf(x[i + k]!, alpha);
    }
  }
  return out;
}

/**
 * Keras `apply_transform` on `src`, stored as uint8 (round half to even,
 * clip). Same values as `applyTransformFloat` then that rounding; the copy
 * loops are specialised because this is the hot path. `scratch`, when given
 * with `height*width*channels` elements, is used (and overwritten) as the
 * float32 intermediate instead of allocating one per call.
 */
export function applyTransform(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions, scratch?: Float32Array): Uint8Array {
  if (params.brightness !== null) {
    const x = warpAndShift(src, shape, params, opts, scratch);
    const alpha = Math.fround(params.brightness);
    const out = new Uint8Array(x.length);
    let o = 0;
    for (let r = 0; r < shape.height; r++) {
      for (let c = 0; c < shape.width; c++) {
        const i = flippedIndex(r, c, shape, params);
        for (let k = 0; k < shape.channels; k++) out[o++] = brightnessOf(x[i + k]!, alpha);
      }
    }
    return out;
  }
  const x = warp(src, shape, params, opts, scratch);
  const cs = channelShiftOf(x, params.channelShiftIntensity);
  const { height: h, width: w, channels: ch } = shape;
  const rowLen = w * ch;
  // Uint8ClampedArray conversion is ToUint8Clamp: round half to even, clip to [0, 255].
  const out = new Uint8ClampedArray(x.length);
  for (let r = 0; r < h; r++) {
    const srcRow = (params.flipVertical ? h - 1 - r : r) * rowLen;
    const dstRow = r * rowLen;
    if (!params.flipHorizontal && cs === null) {
      for (let j = 0; j < rowLen; j++) out[dstRow + j] = x[srcRow + j]!;
    } else if (!params.flipHorizontal) {
      for (let j = 0; j < rowLen; j++) out[dstRow + j] = shifted(x[srcRow + j]!, cs!);
    } else {
      for (let c = 0; c < w; c++) {
        const i = srcRow + (w - 1 - c) * ch;
        const o = dstRow + c * ch;
        for (let k = 0; k < ch; k++) out[o + k] = cs === null ? x[i + k]! : shifted(x[i + k]!, cs);
      }
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
