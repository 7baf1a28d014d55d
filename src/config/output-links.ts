/**
 * The on-disk half of "outputs stay inside the workspace": analysis refuses
 * output paths that are absolute or climb out with `..`, but a symbolic link
 * inside the workspace (`out -> /elsewhere`) can still lead a stage's writes,
 * and the engine's restores and clean-ups of that output, outside it. This
 * check runs on every load (cached or not, since links change without the
 * pipeline file changing): each output path's existing components are
 * followed, and a link that resolves outside the workspace is a located
 * diagnostic.
 *
 * Dependencies get the same check, except that a link into a folder listed
 * under `external:` is allowed (a dataset folder linked from another disk is
 * common, and the file says so). It cannot see a link a stage creates while
 * the pipeline runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Diagnostic, SourceLocation } from '../diagnostic.js';
import type { PipelineGraph } from '../pipeline.js';
import { globBase, isInsideAbs } from '../analyze/paths.js';

/** Diagnostics for outputs whose path passes through a symbolic link that leads outside the workspace. */
export function checkOutputLinks(graph: PipelineGraph): Diagnostic[] {
  let root: string;
  try {
    root = fs.realpathSync(graph.workspace);
  } catch {
    return []; // no workspace yet: nothing on disk can redirect an output
  }
  // Per path prefix: undefined (fine) or the link that escapes, memoised across outputs sharing directories.
  const memo = new Map<string, { link: string; target: string } | undefined>();
  const escapeOf = (rel: string): { link: string; target: string } | undefined => {
    const segs = rel.split('/');
    for (let n = 1; n <= segs.length; n++) {
      const prefix = segs.slice(0, n).join('/');
      if (memo.has(prefix)) {
        const hit = memo.get(prefix);
        if (hit) return hit;
        continue;
      }
      const abs = path.join(graph.workspace, prefix);
      let found: { link: string; target: string } | undefined;
      let exists = true;
      try {
        if (fs.lstatSync(abs).isSymbolicLink()) {
          const target = realTarget(abs);
          if (target !== undefined && !isInsideAbs(target, root)) found = { link: prefix, target };
        }
      } catch {
        exists = false;
      }
      memo.set(prefix, found);
      if (found) return found;
      if (!exists) return undefined; // nothing below a missing component exists either
    }
    return undefined;
  };
  const allowed = (graph.external ?? []).map((r) => realTarget(r) ?? r);
  const out: Diagnostic[] = [];
  for (const node of graph.stages.values()) {
    const paths: { path: string; loc: SourceLocation | undefined }[] =
      node.kind === 'cmd' ? [...node.outs.map((o) => ({ path: o.path, loc: o.loc })), ...node.metrics.map((m) => ({ path: m, loc: undefined }))] : [{ path: node.outDir, loc: undefined }];
    if (node.kind === 'cmd') {
      for (const d of node.deps) {
        if (d.kind !== 'path' || path.isAbsolute(d.path) || d.path.startsWith('../')) continue; // lexical escapes: analysis checked them against external:
        const hit = escapeOf(globBase(d.path));
        if (!hit || allowed.some((r) => isInsideAbs(hit.target, r))) continue;
        out.push({
          severity: 'error',
          reason: 'invalid-value',
          message: `dependency '${d.path}' of stage '${node.id}' reads outside the workspace: '${hit.link}' is a symbolic link to ${hit.target}; list that folder under \`external:\` to read it`,
          location: d.loc ?? node.loc,
        });
      }
    }
    for (const p of paths) {
      const hit = escapeOf(p.path);
      if (!hit) continue;
      const what = hit.link === p.path ? `'${p.path}' is` : `'${hit.link}' (in '${p.path}') is`;
      out.push({
        severity: 'error',
        reason: 'invalid-value',
        message: `output '${p.path}' of stage '${node.id}' would be written outside the workspace: ${what} a symbolic link to ${hit.target}; remove the link or change the output path`,
        location: p.loc ?? node.loc,
      });
    }
  }
  return out;
}

/** Where a link finally points (a dangling link: its target path resolved as far as it exists). */
function realTarget(abs: string): string | undefined {
  try {
    return fs.realpathSync(abs);
  } catch {
    try {
      const t = fs.readlinkSync(abs);
      return path.resolve(path.dirname(abs), t);
    } catch {
      return undefined;
    }
  }
}
