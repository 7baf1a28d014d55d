/**
 * A tiny real image for a stage host's `prepare` (stages/types.ts): decoding
 * it once takes libvips' first-use set-up (a few ms of CPU, up to tens of ms
 * of wall time) off the first real image of the stage that follows.
 *
 * It does not load sharp or decode anything itself.
 */

/** An 8x8 grey baseline JPEG (265 bytes). */
const WARM_UP_JPEG =
  '/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAAAAAAAAAAAAAAAAAAAAD/xAAUAQEAAAAAAAAAAAAAAAAAAAAA/8QAFBEBAAAAAAAAAAAAAAAAAAAAAP/aAAwDAQACEQMRAD8AAA//2Q==';

/** The warm-up JPEG's bytes (a fresh Buffer each call). */
export function warmUpJpeg(): Buffer {
  return Buffer.from(WARM_UP_JPEG, 'base64');
}
