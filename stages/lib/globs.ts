/**
 * Minimal glob matching for ingest's `include` / `exclude` params: compiles a
 * pattern to a RegExp over `/`-separated relative paths. Supports `**` (any
 * number of path segments), `*` and `?` (within one segment), `[abc]` /
 * `[!a-z]` classes and `{a,b}` alternatives. Matching is case-sensitive.
 *
 * Does not walk the filesystem, expand `~`, or support extglobs (`+(a|b)`).
 */

/** Compiles one glob pattern to an anchored RegExp. */
export function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${globSource(pattern)}$`);
}

/** The unanchored RegExp source of one glob pattern (see `globToRegExp`). */
function globSource(pattern: string): string {
  let re = '';
  let i = 0;
  let braceDepth = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        const atStart = i === 0 || pattern[i - 1] === '/';
        const atEnd = i + 2 === pattern.length || pattern[i + 2] === '/';
        if (atStart && atEnd) {
          // `**/` matches zero or more whole segments (the same strings as `(?:[^/]*/)*`: empty, or
          // anything ending in `/`, without its backtracking); a trailing `**` matches everything below.
          if (i + 2 === pattern.length) re += '.*';
          else re += String.raw`(?:[\s\S]*/)?`;
          i += 3;
          continue;
        }
        re += '[^/]*';
        i += 2;
        continue;
      }
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
      } else {
        let body = pattern.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else if (c === '{') {
      braceDepth++;
      re += '(?:';
    } else if (c === '}' && braceDepth > 0) {
      braceDepth--;
      re += ')';
    } else if (c === ',' && braceDepth > 0) {
      re += '|';
    } else {
      re += c.replace(/[.+^$()|\\]/g, '\\$&').replace(/[{}]/g, '\\$&');
    }
    i++;
  }
  return re;
}

/** A compiled include/exclude filter over relative paths. */
export interface PathFilter {
  /** True when `rel` (a `/`-separated path) matches some include and no exclude. */
  accepts(rel: string): boolean;
}

/**
 * Patterns that match every relative path: an include list holding one needs no test at all.
 * (`**` alone is not one: its `.*` does not match a name containing a newline.)
 */
const MATCH_ALL: ReadonlySet<string> = new Set(['**/*']);

/**
 * Builds a filter from include and exclude globs (an empty include list accepts everything).
 * Each list is one alternation RegExp (`^(?:a|b)$`), tested once per path instead of once per
 * pattern; an include list holding `**` + `/*` (the default) accepts without a test.
 */
export function pathFilter(include: readonly string[], exclude: readonly string[]): PathFilter {
  const inc = include.length === 0 || include.some((g) => MATCH_ALL.has(g)) ? undefined : alternation(include);
  const exc = exclude.length === 0 ? undefined : alternation(exclude);
  return {
    accepts: (rel) => (inc === undefined || inc.test(rel)) && (exc === undefined || !exc.test(rel)),
  };
}

function alternation(globs: readonly string[]): RegExp {
  return new RegExp(`^(?:${globs.map((g) => `(?:${globSource(g)})`).join('|')})$`);
}
