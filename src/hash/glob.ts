/**
 * Minimal glob support for dependency paths: `*`, `?`, `**`, `[abc]`, `[!a-z]`
 * and `{a,b}` over workspace-relative, `/`-separated paths. A pattern is split
 * into a static base directory (walked) and a matcher for paths relative to the
 * workspace.
 *
 * This module does no I/O and does not expand `~` or environment variables.
 * Dot files are matched like any other file (a dependency glob is explicit).
 */

/** Whether `p` contains glob syntax. */
export function isGlob(p: string): boolean {
  return /[*?[\]{}]/.test(p);
}

/** A compiled glob: walk `base` (workspace-relative, '' for the root) and keep paths `matches`. */
export interface CompiledGlob {
  /** The longest leading run of path segments without glob syntax ('' when the first segment has some). */
  readonly base: string;
  /** Tests a workspace-relative `/`-separated file path. */
  matches(relPath: string): boolean;
}

/** Compiles a workspace-relative glob pattern. */
export function compileGlob(pattern: string): CompiledGlob {
  const norm = pattern.replace(/\\/g, '/').replace(/^\.\//, '').replace(/\/+$/, '');
  const segs = norm.split('/');
  const baseSegs: string[] = [];
  for (const s of segs) {
    if (isGlob(s)) break;
    baseSegs.push(s);
  }
  // A pattern without magic is its own base; keep the last segment in the matcher.
  if (baseSegs.length === segs.length) baseSegs.pop();
  const re = new RegExp(`^${globToRegexSource(norm)}$`);
  return { base: baseSegs.join('/'), matches: (p) => re.test(p) };
}

function globToRegexSource(glob: string): string {
  let out = '';
  let braceDepth = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const atSegStart = i === 0 || glob[i - 1] === '/';
        const atSegEnd = i + 2 === glob.length || glob[i + 2] === '/';
        if (atSegStart && atSegEnd) {
          // `**/` matches zero or more whole directories; a trailing `**` matches anything below.
          if (glob[i + 2] === '/') {
            out += '(?:[^/]*(?:/[^/]*)*/)?';
            i += 2;
          } else {
            out += '.*';
            i += 1;
          }
          continue;
        }
      }
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '{') {
      braceDepth++;
      out += '(?:';
    } else if (c === '}' && braceDepth > 0) {
      braceDepth--;
      out += ')';
    } else if (c === ',' && braceDepth > 0) {
      out += '|';
    } else {
      out += c.replace(/[.+^$()|\\/{}[\]]/g, '\\$&');
    }
  }
  return out;
}
