/**
 * The `--json` reporter: every run event as one JSON object per line (NDJSON)
 * on the given stream, for tools and CI. Nothing else is written to that
 * stream. It does not filter, buffer or reformat events.
 */
import type { Writable } from 'node:stream';
import type { EventSink } from '../events.js';

/** A sink writing each event as one line. */
export function ndjsonReporter(out: Writable): EventSink {
  return (e) => {
    out.write(`${JSON.stringify(e)}\n`);
  };
}
