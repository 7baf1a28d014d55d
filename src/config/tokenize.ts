/**
 * Shell-like splitting of a `cmd:` string into argv, WITHOUT a shell: no
 * variable expansion, globbing, pipes or redirection. Runs before `${...}`
 * interpolation, so an interpolated value can never split into several
 * arguments. Quoting: '...' is literal; "..." allows \" and \\; outside quotes
 * a backslash escapes the next character.
 *
 * This module does not interpolate and does not run anything.
 */
import { ok, err, type Result } from '../result.js';

/** One argv element with where it started in the command string. */
export interface CmdToken {
  readonly text: string;
  /** Offset of the token's first character in the command string. */
  readonly offset: number;
  /** Length of the token's source text (with quotes). */
  readonly length: number;
  /** Whether any part of the token was quoted or escaped. */
  readonly quoted: boolean;
}

/** Unquoted tokens that mean something to a shell but not to us. */
export const shellOperators: ReadonlySet<string> = new Set(['|', '||', '&&', ';', '&', '>', '>>', '<', '<<', '2>', '2>>', '2>&1', '>&2', '&>']);

/** Splits `s` into tokens; an unterminated quote is an error positioned at the quote. */
export function tokenizeCommand(s: string): Result<CmdToken[], { message: string; offset: number; length: number }> {
  const tokens: CmdToken[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    let text = '';
    let quoted = false;
    while (i < s.length && !/\s/.test(s[i])) {
      const c = s[i];
      if (c === "'") {
        const end = s.indexOf("'", i + 1);
        if (end < 0) return err({ message: 'unterminated single quote in cmd', offset: i, length: 1 });
        text += s.slice(i + 1, end);
        quoted = true;
        i = end + 1;
      } else if (c === '"') {
        let j = i + 1;
        let closed = false;
        while (j < s.length) {
          if (s[j] === '\\' && (s[j + 1] === '"' || s[j + 1] === '\\')) {
            text += s[j + 1];
            j += 2;
          } else if (s[j] === '"') {
            closed = true;
            break;
          } else text += s[j++];
        }
        if (!closed) return err({ message: 'unterminated double quote in cmd', offset: i, length: 1 });
        quoted = true;
        i = j + 1;
      } else if (c === '\\' && i + 1 < s.length) {
        text += s[i + 1];
        quoted = true;
        i += 2;
      } else {
        text += c;
        i++;
      }
    }
    tokens.push({ text, offset: start, length: i - start, quoted });
  }
  return ok(tokens);
}
