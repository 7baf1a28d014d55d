/**
 * Keras `ImageDataGenerator.get_random_transform`, reimplemented: which draws
 * are made, in which order, and how each becomes a transform parameter. Pure:
 * the draws come from a `RandomSource`, so a test can script them.
 *
 * Draw order (each only when its feature is on, except the flips, whose draws
 * Keras always makes): theta, tx (height shift), ty (width shift), shear,
 * zx, zy, flip_horizontal, flip_vertical, channel shift, brightness.
 *
 * This module does not touch pixels (see apply.ts).
 */
import type { AugmentConfig, ShiftRange } from './params.js';
import type { RandomSource } from './rng.js';

/** One variant's transform, as Keras' `transform_parameters` dict. */
export interface TransformParams {
  /** Rotation in degrees. */
  readonly theta: number;
  /** Keras' `tx`: the height-shift draw, in pixels. */
  readonly tx: number;
  /** Keras' `ty`: the width-shift draw, in pixels. */
  readonly ty: number;
  /** Shear angle in degrees. */
  readonly shear: number;
  /** Keras' `zx`: zoom of the column axis (after Keras' axis swap); < 1 magnifies. */
  readonly zx: number;
  /** Keras' `zy`: zoom of the row axis; < 1 magnifies. */
  readonly zy: number;
  /** Mirror left-right (applied after the warp and channel shift). */
  readonly flipHorizontal: boolean;
  /** Mirror top-bottom (after the horizontal flip). */
  readonly flipVertical: boolean;
  /** Added to every channel; null when channel shift is off. */
  readonly channelShiftIntensity: number | null;
  /** PIL brightness factor; null when brightness is off. */
  readonly brightness: number | null;
}

/** The identity transform (what Keras applies with all ranges at 0 and flips drawn false). */
export const IDENTITY_TRANSFORM: TransformParams = {
  theta: 0,
  tx: 0,
  ty: 0,
  shear: 0,
  zx: 1,
  zy: 1,
  flipHorizontal: false,
  flipVertical: false,
  channelShiftIntensity: null,
  brightness: null,
};

/** NumPy `uniform(lo, hi)`. */
function uniform(rng: RandomSource, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.random();
}

/** Python truthiness of a shift range (0 and [] are off). */
function isOn(range: ShiftRange): boolean {
  return typeof range === 'number' ? range !== 0 : range.length > 0;
}

/**
 * One shift draw exactly as Keras does it:
 * ```
 * try: t = choice(r); t *= choice([-1, 1])     # list or int
 * except ValueError: t = uniform(-r, r)        # float (or int <= 0)
 * if max(r) < 1: t *= size
 * ```
 * An integral number is treated as a Python int (YAML cannot tell 10 from 10.0).
 */
function drawShift(rng: RandomSource, range: ShiftRange, size: number): number {
  let t: number;
  if (typeof range !== 'number') {
    t = range[rng.randint(range.length)]!;
    t *= rng.randint(2) === 0 ? -1 : 1;
  } else if (Number.isInteger(range) && range > 0) {
    t = rng.randint(range);
    t *= rng.randint(2) === 0 ? -1 : 1;
  } else {
    t = uniform(rng, -range, range);
  }
  const max = typeof range === 'number' ? range : Math.max(...range);
  if (max < 1) t *= size;
  return t;
}

/**
 * Keras `get_random_transform(img_shape)` for a channels-last image of
 * `height` x `width`.
 */
export function getRandomTransform(config: AugmentConfig, height: number, width: number, rng: RandomSource): TransformParams {
  const theta = config.rotationRange ? uniform(rng, -config.rotationRange, config.rotationRange) : 0;
  const tx = isOn(config.heightShiftRange) ? drawShift(rng, config.heightShiftRange, height) : 0;
  const ty = isOn(config.widthShiftRange) ? drawShift(rng, config.widthShiftRange, width) : 0;
  const shear = config.shearRange ? uniform(rng, -config.shearRange, config.shearRange) : 0;
  let zx = 1;
  let zy = 1;
  if (!(config.zoomRange[0] === 1 && config.zoomRange[1] === 1)) {
    zx = uniform(rng, config.zoomRange[0], config.zoomRange[1]);
    zy = uniform(rng, config.zoomRange[0], config.zoomRange[1]);
  }
  const flipHorizontal = rng.random() < 0.5 && config.horizontalFlip;
  const flipVertical = rng.random() < 0.5 && config.verticalFlip;
  const channelShiftIntensity = config.channelShiftRange !== 0 ? uniform(rng, -config.channelShiftRange, config.channelShiftRange) : null;
  const brightness = config.brightnessRange !== null ? uniform(rng, config.brightnessRange[0], config.brightnessRange[1]) : null;
  return { theta, tx, ty, shear, zx, zy, flipHorizontal, flipVertical, channelShiftIntensity, brightness };
}
