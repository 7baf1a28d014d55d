/**
 * Workspace-relative path helpers for analysis: normalisation, globs, and
 * "is this path inside that one". Pure string work on POSIX-style paths; no
 * file system access.
 */
import path from 'node:path';

/**
 * `./a//b/` → `a/b`; absolute paths stay absolute; the workspace itself is `.`;
 * backslashes are separators. Linear in the path's length (node's
 * `path.posix.normalize` is quadratic on long runs of `../`, which made a
 * 1 MB path take minutes).
 */
export function normalizeRel(p: string): string {
  const s = p.includes('\\') ? p.replace(/\\/g, '/') : p;
  const abs = s.startsWith('/');
  const kept: string[] = [];
  let ups = 0;
  // Segments are cut only when kept: `..`, `.` and empty ones allocate nothing.
  for (let i = 0; i <= s.length; ) {
    let j = s.indexOf('/', i);
    if (j < 0) j = s.length;
    const n = j - i;
    if (n === 2 && s[i] === '.' && s[i + 1] === '.') {
      if (kept.length > 0) kept.pop();
      else if (!abs) ups++;
    } else if (n > 0 && !(n === 1 && s[i] === '.')) kept.push(s.slice(i, j));
    i = j + 1;
  }
  const body = ups > 0 ? `..${'/..'.repeat(ups - 1)}${kept.length > 0 ? `/${kept.join('/')}` : ''}` : kept.join('/');
  return abs ? `/${body}` : body || '.';
}

/** Whether `p` is outside the workspace (absolute, a Windows drive or UNC path, or starting with `..`). */
export function escapesWorkspace(p: string): boolean {
  return path.posix.isAbsolute(p) || /^[A-Za-z]:/.test(p) || p === '..' || p.startsWith('../');
}

/**
 * Why a path written in the pipeline cannot name a file at all, or
 * undefined: a NUL byte (every file system call would throw on it). Checked
 * for outputs, dependencies and working directories alike.
 */
export function unusablePath(p: string): string | undefined {
  return p.includes('\0') ? 'contains a NUL character' : undefined;
}

/** Whether `p` contains glob characters. */
export function isGlob(p: string): boolean {
  return /[*?[\]{}]/.test(p);
}

/** The directory part of a glob before its first wildcard segment (`data/*.csv` → `data`). */
export function globBase(p: string): string {
  const segs = p.split('/');
  const i = segs.findIndex((s) => isGlob(s));
  return i < 0 ? p : segs.slice(0, i).join('/') || '.';
}

/** Whether `inner` is `outer` or below it. */
export function isInside(inner: string, outer: string): boolean {
  return outer === '.' || inner === outer || inner.startsWith(`${outer}/`);
}

/** `isInside` for absolute native paths (`path.resolve` results): whether `inner` is `outer` or below it. */
export function isInsideAbs(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);
}

/**
 * A RegExp for a glob: `**` any depth, `*` and `?` within a segment, `{a,b}`
 * alternatives, `[...]` classes. Never throws: an unclosed `{` or `[`, or a
 * class JavaScript rejects (`[z-a]`), is matched literally (a dep such as
 * `$${x` made `new RegExp` throw "Unterminated group").
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let depth = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '{' && glob.indexOf('}', i + 1) >= 0) {
      depth++;
      re += '(?:';
    } else if (c === '}' && depth > 0) {
      depth--;
      re += ')';
    } else if (c === ',' && depth > 0) re += '|';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      const cls = end < 0 ? undefined : `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
      if (cls === undefined || !validRegExp(cls)) re += '\\[';
      else {
        re += cls;
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\{}]/g, '\\$&');
  }
  // Braces opened and never closed (`{a{b}`): close them so the pattern stays valid.
  re += ')'.repeat(depth);
  return validRegExp(`^${re}$`) ? new RegExp(`^${re}$`) : new RegExp(`^${glob.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

function validRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether reading dependency `dep` may read output `out`: one contains the
 * other, or, for a glob, the glob matches the output or reads inside it.
 */
export function depTouchesOutput(dep: string, out: string): boolean {
  if (!isGlob(dep)) return isInside(dep, out) || isInside(out, dep);
  if (globToRegExp(dep).test(out) || isInside(globBase(dep), out)) return true;
  // The output is a directory below the glob's base: the glob may match files inside it.
  return isInside(out, globBase(dep)) && (dep.includes('**') || dep.split('/').length > out.split('/').length);
}
