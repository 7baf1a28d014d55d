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
          // `**/` matches zero or more whole segments; a trailing `**` matches everything below.
          if (i + 2 === pattern.length) re += '.*';
          else re += '(?:[^/]*/)*';
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
  return new RegExp(`^${re}$`);
}

/** A compiled include/exclude filter over relative paths. */
export interface PathFilter {
  /** True when `rel` (a `/`-separated path) matches some include and no exclude. */
  accepts(rel: string): boolean;
}

/** Builds a filter from include and exclude globs (an empty include list accepts everything). */
export function pathFilter(include: readonly string[], exclude: readonly string[]): PathFilter {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return {
    accepts: (rel) => (inc.length === 0 || inc.some((r) => r.test(rel))) && !exc.some((r) => r.test(rel)),
  };
}
