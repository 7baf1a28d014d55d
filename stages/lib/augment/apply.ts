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
 *
 * Pure and synchronous; no random draws (see random-transform.ts).
 */
import type { FillMode, InterpolationOrder } from './params.js';
import type { TransformParams } from './random-transform.js';
import { samplingMatrix } from './affine.js';
import { warpAffine, type ImageShape } from './warp.js';

/** Fill and interpolation settings for the warp. */
export interface WarpOptions {
  readonly fillMode: FillMode;
  readonly cval: number;
  readonly interpolationOrder: InterpolationOrder;
}

/** Float32 result of the warp and channel shift (before flips, brightness and quantisation). */
function warpAndShift(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions): Float32Array {
  const n = shape.height * shape.width * shape.channels;
  if (src.length !== n) throw new Error(`image has ${src.length} bytes, expected ${n} for ${shape.height}x${shape.width}x${shape.channels}`);
  const x = new Float32Array(n);
  const m = samplingMatrix(params, shape.height, shape.width);
  if (m === null) x.set(src);
  else warpAffine(src, shape, m, opts.fillMode, opts.cval, opts.interpolationOrder, x);
  if (params.channelShiftIntensity !== null) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const s = Math.fround(params.channelShiftIntensity);
    for (let i = 0; i < n; i++) {
      const v = Math.fround(x[i]! + s);
      x[i] = v < lo ? lo : v > hi ? hi : v;
    }
  }
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

/** Writes `x` into `out` with flips and brightness applied (out may be float or clamped-uint8). */
function finish(x: Float32Array, shape: ImageShape, params: TransformParams, out: Float32Array | Uint8ClampedArray): void {
  const { height: h, width: w, channels: ch } = shape;
  const alpha = params.brightness === null ? null : Math.fround(params.brightness);
  let o = 0;
  for (let r = 0; r < h; r++) {
    const sr = params.flipVertical ? h - 1 - r : r;
    for (let c = 0; c < w; c++) {
      const sc = params.flipHorizontal ? w - 1 - c : c;
      const i = (sr * w + sc) * ch;
      for (let k = 0; k < ch; k++) {
        const v = x[i + k]!;
        // float32 -> uint8 cast (truncation) before PIL, as `array_to_img(scale=False)` does.
        out[o++] = alpha === null ? v : pilBrightness(v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v), alpha);
      }
    }
  }
}

/** Keras `apply_transform` on `src`, returning the float32 image Keras would return. */
export function applyTransformFloat(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions): Float32Array {
  const x = warpAndShift(src, shape, params, opts);
  const out = new Float32Array(x.length);
  finish(x, shape, params, out);
  return out;
}

/** Keras `apply_transform` on `src`, stored as uint8 (round half to even, clip). */
export function applyTransform(src: Uint8Array, shape: ImageShape, params: TransformParams, opts: WarpOptions): Uint8Array {
  const x = warpAndShift(src, shape, params, opts);
  const out = new Uint8ClampedArray(x.length);
  finish(x, shape, params, out);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
