/**
 * `pipeline dag` output: a plain-text listing and a Mermaid flowchart of a
 * `PipelineGraph`. Pure string building; does not print or colour.
 */
import type { PipelineGraph, StageNode } from './pipeline.js';

function kindLabel(s: StageNode): string {
  return s.kind === 'builtin' ? `uses ${s.uses}` : `cmd ${s.argv[0] ?? ''}`.trimEnd();
}

/**
 * One line per stage in topological order, with what it needs:
 *
 *     ingest   (uses ingest)
 *     resize   (uses resize)  <- ingest
 */
export function renderDagText(g: PipelineGraph): string {
  const stages = [...g.stages.values()];
  const width = Math.max(0, ...stages.map((s) => s.id.length));
  const kindWidth = Math.max(0, ...stages.map((s) => kindLabel(s).length + 2));
  const lines = stages.map((s) => {
    const head = `${s.id.padEnd(width)}  ${`(${kindLabel(s)})`.padEnd(kindWidth)}`;
    return (s.needs.length > 0 ? `${head}  <- ${s.needs.join(', ')}` : head).trimEnd();
  });
  return `${g.name}: ${stages.length} stage${stages.length === 1 ? '' : 's'}\n${lines.join('\n')}\n`;
}

/** Escapes a label for a Mermaid `["..."]` node. */
function mermaidLabel(s: string): string {
  return s.replace(/"/g, '#quot;');
}

/** A Mermaid `flowchart TD`: nodes n0..nN labelled by id, edges upstream --> downstream. */
export function renderDagMermaid(g: PipelineGraph): string {
  const ids = [...g.stages.keys()];
  const key = new Map(ids.map((id, i) => [id, `n${i}`]));
  const lines = ['flowchart TD'];
  for (const s of g.stages.values()) lines.push(`  ${key.get(s.id)}["${mermaidLabel(s.id)}<br/><small>${mermaidLabel(kindLabel(s))}</small>"]`);
  for (const s of g.stages.values()) for (const n of s.needs) lines.push(`  ${key.get(n)} --> ${key.get(s.id)}`);
  return `${lines.join('\n')}\n`;
}
