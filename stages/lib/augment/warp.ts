/**
 * Inverse-mapped affine warp of a uint8 HWC image into float32, with the
 * exact boundary semantics of `scipy.ndimage.affine_transform(order=0|1,
 * mode=...)` (scipy >= 1.6), which Keras calls once per channel:
 *
 * - each output pixel (r, c) samples the input at the `SamplingMatrix` point;
 * - `nearest`: taps are clamped to the edge (a a a | a b c d | d d d);
 * - `reflect`: half-sample symmetric (d c b a | a b c d | d c b a): the
 *   coordinate is reflected first, then any tap past the edge is reflected too;
 * - `wrap`: scipy's legacy wrap with period `n - 1`, where the first and last
 *   samples coincide (so `[a b c d e]` continues `b c d e b c ...`, not
 *   `a b c ...`); taps past the edge are mirrored (whole-sample);
 * - `constant`: a point outside `[0, n - 1]` on either axis is `cval`
 *   outright (no blending with cval); inside, edge taps are mirrored.
 *
 * Arithmetic follows scipy's: weights `w0 = 1 - frac`, `w1 = 1 - w0`;
 * the value is `((v00*wr0)*wc0 + (v01*wr0)*wc1) + ...` summed in row-major
 * tap order in float64, then stored as float32.
 *
 * This module does not draw random numbers or quantise (see apply.ts).
 */
import type { FillMode, InterpolationOrder } from './params.js';
import type { SamplingMatrix } from './affine.js';

/** scipy `map_coordinate` for the modes that map the coordinate itself. */
function mapReflect(v: number, n: number): number {
  if (v < 0) {
    if (n <= 1) return 0;
    const sz2 = 2 * n;
    if (v < -sz2) v = sz2 * Math.trunc(-v / sz2) + v;
    return v < -n ? v + sz2 : (v > -1e-15 ? 1e-15 : -v) - 1;
  }
  if (v > n - 1) {
    if (n <= 1) return 0;
    const sz2 = 2 * n;
    v -= sz2 * Math.trunc(v / sz2);
    if (v >= n) v = sz2 - v - 1;
  }
  return v;
}

function mapWrap(v: number, n: number): number {
  if (v < 0) {
    if (n <= 1) return 0;
    const sz = n - 1;
    return v + sz * (Math.trunc(-v / sz) + 1);
  }
  if (v > n - 1) {
    if (n <= 1) return 0;
    const sz = n - 1;
    return v - sz * Math.trunc(v / sz);
  }
  return v;
}

function mapMirror(v: number, n: number): number {
  if (v < 0) {
    if (n <= 1) return 0;
    const sz2 = 2 * n - 2;
    v = sz2 * Math.trunc(-v / sz2) + v;
    return v <= 1 - n ? v + sz2 : -v;
  }
  if (v > n - 1) {
    if (n <= 1) return 0;
    const sz2 = 2 * n - 2;
    v -= sz2 * Math.trunc(v / sz2);
    if (v >= n) v = sz2 - v;
  }
  return v;
}

/** Where a filter tap past the edge reads from (scipy's `spline_mode`: constant and wrap use mirror). */
function mapTap(i: number, n: number, mode: FillMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'nearest':
      return i < 0 ? 0 : n - 1;
    case 'reflect':
      return mapReflect(i, n);
    case 'wrap':
    case 'constant':
      return mapMirror(i, n);
    default:
      return unreachable(mode);
  }
}

function unreachable(x: never): never {
  throw new Error(`unexpected fill mode ${String(x)}`);
}

/** Taps and weights along one axis; `ok = false` means the point is cval (constant mode). */
interface AxisTaps {
  ok: boolean;
  i0: number;
  i1: number;
  w0: number;
  w1: number;
}

function axisTaps(v: number, n: number, mode: FillMode, order: InterpolationOrder, out: AxisTaps): void {
  let cc = v;
  if (mode === 'constant') {
    if (v < 0 || v > n - 1) {
      out.ok = false;
      return;
    }
  } else if (mode === 'reflect') {
    cc = mapReflect(v, n);
  } else if (mode === 'wrap') {
    cc = mapWrap(v, n);
  }
  out.ok = true;
  if (order === 0) {
    const start = Math.floor(cc + 0.5);
    out.i0 = mapTap(start, n, mode);
    out.i1 = out.i0;
    out.w0 = 1;
    out.w1 = 0;
    return;
  }
  const start = Math.floor(cc);
  out.i0 = mapTap(start, n, mode);
  out.i1 = mapTap(start + 1, n, mode);
  out.w0 = 1 - (cc - start);
  out.w1 = 1 - out.w0;
}

/** Geometry of a packed uint8 image. */
export interface ImageShape {
  /** Rows. */
  readonly height: number;
  /** Columns. */
  readonly width: number;
  /** Interleaved channels per pixel (HWC). */
  readonly channels: number;
}

/**
 * Warps `src` (HWC uint8) into `out` (HWC float32, same shape) by `m`.
 * Interior points (all taps inside) take a fast path; border points go
 * through the per-axis mode logic above.
 */
export function warpAffine(
  src: Uint8Array,
  shape: ImageShape,
  m: SamplingMatrix,
  mode: FillMode,
  cval: number,
  order: InterpolationOrder,
  out: Float32Array,
): void {
  const { height: h, width: w, channels: ch } = shape;
  if (order === 1 && ch === 3) {
    warpBilinearRgb(src, h, w, m, mode, cval, out);
    return;
  }
  const rowStride = w * ch;
  const ta: AxisTaps = { ok: true, i0: 0, i1: 0, w0: 0, w1: 0 };
  const tb: AxisTaps = { ok: true, i0: 0, i1: 0, w0: 0, w1: 0 };
  const hLast = h - 1;
  const wLast = w - 1;
  let o = 0;
  for (let r = 0; r < h; r++) {
    const baseR = m.r0 + r * m.rr;
    const baseC = m.c0 + r * m.cr;
    for (let c = 0; c < w; c++) {
      const vr = baseR + c * m.rc;
      const vc = baseC + c * m.cc;
      if (order === 1 && vr >= 0 && vr < hLast && vc >= 0 && vc < wLast) {
        const r0 = vr | 0;
        const c0 = vc | 0;
        const wr0 = 1 - (vr - r0);
        const wr1 = 1 - wr0;
        const wc0 = 1 - (vc - c0);
        const wc1 = 1 - wc0;
        const i00 = r0 * rowStride + c0 * ch;
        const i10 = i00 + rowStride;
        for (let k = 0; k < ch; k++) {
          let t = src[i00 + k]! * wr0 * wc0;
          t += src[i00 + ch + k]! * wr0 * wc1;
          t += src[i10 + k]! * wr1 * wc0;
          t += src[i10 + ch + k]! * wr1 * wc1;
          out[o + k] = t;
        }
      } else {
        axisTaps(vr, h, mode, order, ta);
        if (ta.ok) axisTaps(vc, w, mode, order, tb);
        if (!ta.ok || !tb.ok) {
          for (let k = 0; k < ch; k++) out[o + k] = cval;
        } else if (order === 0) {
          const i = ta.i0 * rowStride + tb.i0 * ch;
          for (let k = 0; k < ch; k++) out[o + k] = src[i + k]!;
        } else {
          const i00 = ta.i0 * rowStride + tb.i0 * ch;
          const i01 = ta.i0 * rowStride + tb.i1 * ch;
          const i10 = ta.i1 * rowStride + tb.i0 * ch;
          const i11 = ta.i1 * rowStride + tb.i1 * ch;
          for (let k = 0; k < ch; k++) {
            let t = src[i00 + k]! * ta.w0 * tb.w0;
            t += src[i01 + k]! * ta.w0 * tb.w1;
            t += src[i10 + k]! * ta.w1 * tb.w0;
            t += src[i11 + k]! * ta.w1 * tb.w1;
            out[o + k] = t;
          }
        }
      }
      o += ch;
    }
  }
}

/** `warpAffine` specialised for order 1 and 3 channels (the hot path); same arithmetic, unrolled. */
function warpBilinearRgb(src: Uint8Array, h: number, w: number, m: SamplingMatrix, mode: FillMode, cval: number, out: Float32Array): void {
  const rowStride = w * 3;
  const ta: AxisTaps = { ok: true, i0: 0, i1: 0, w0: 0, w1: 0 };
  const tb: AxisTaps = { ok: true, i0: 0, i1: 0, w0: 0, w1: 0 };
  const hLast = h - 1;
  const wLast = w - 1;
  const { rr, rc, r0, cr, cc, c0 } = m;
  let o = 0;
  for (let r = 0; r < h; r++) {
    const baseR = r0 + r * rr;
    const baseC = c0 + r * cr;
    for (let c = 0; c < w; c++, o += 3) {
      const vr = baseR + c * rc;
      const vc = baseC + c * cc;
      let i00: number, i01: number, i10: number, i11: number, wr0: number, wr1: number, wc0: number, wc1: number;
      if (vr >= 0 && vr < hLast && vc >= 0 && vc < wLast) {
        const ir = vr | 0;
        const ic = vc | 0;
        wr0 = 1 - (vr - ir);
        wr1 = 1 - wr0;
        wc0 = 1 - (vc - ic);
        wc1 = 1 - wc0;
        i00 = ir * rowStride + ic * 3;
        i01 = i00 + 3;
        i10 = i00 + rowStride;
        i11 = i10 + 3;
      } else {
        axisTaps(vr, h, mode, 1, ta);
        if (ta.ok) axisTaps(vc, w, mode, 1, tb);
        if (!ta.ok || !tb.ok) {
          out[o] = cval;
          out[o + 1] = cval;
          out[o + 2] = cval;
          continue;
        }
        wr0 = ta.w0;
        wr1 = ta.w1;
        wc0 = tb.w0;
        wc1 = tb.w1;
        i00 = ta.i0 * rowStride + tb.i0 * 3;
        i01 = ta.i0 * rowStride + tb.i1 * 3;
        i10 = ta.i1 * rowStride + tb.i0 * 3;
        i11 = ta.i1 * rowStride + tb.i1 * 3;
      }
      out[o] = src[i00]! * wr0 * wc0 + src[i01]! * wr0 * wc1 + src[i10]! * wr1 * wc0 + src[i11]! * wr1 * wc1;
      out[o + 1] = src[i00 + 1]! * wr0 * wc0 + src[i01 + 1]! * wr0 * wc1 + src[i10 + 1]! * wr1 * wc0 + src[i11 + 1]! * wr1 * wc1;
      out[o + 2] = src[i00 + 2]! * wr0 * wc0 + src[i01 + 2]! * wr0 * wc1 + src[i10 + 2]! * wr1 * wc0 + src[i11 + 2]! * wr1 * wc1;
    }
  }
}
