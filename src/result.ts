/**
 * Result values for expected failures. `throw` is reserved for bugs; anything a
 * user can cause (bad YAML, a missing file, a failing command) travels as a
 * `Result` carrying every failure found, not just the first.
 *
 * This module does not print or format anything.
 */

/** Success with a value, or failure with one or more errors. */
export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

/** Builds a success. */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** Builds a failure. */
export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/** Marks a `switch` as exhaustive: adding a union member becomes a compile error. */
export function unreachable(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
