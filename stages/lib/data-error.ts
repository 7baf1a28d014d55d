/**
 * The error the data stages throw for user-caused failures (a missing source,
 * invalid files under `on_invalid: fail`, bad ratios). Its message is complete
 * and names the files and reasons; the engine shows it as the stage failure.
 * Anything else a data stage throws is a bug. Holds no logic.
 */

/** A user-caused failure of a data stage. */
export class DataInputError extends Error {
  override readonly name = 'DataInputError';
}
