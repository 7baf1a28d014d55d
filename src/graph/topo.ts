/**
 * Topological order for `Dag`: dependencies before dependants, ties broken by
 * declaration order. Pure; it does not report cycles (use `findCycles` first),
 * it only refuses to order a graph that has one.
 */
import { depsOf, type Dag } from './dag.js';

/**
 * Nodes so that every node comes after all its dependencies. Among nodes that
 * are ready at the same time, the one declared first (in `g.nodes`) goes
 * first. Returns undefined when the graph has a cycle.
 */
export function topoSort<N extends string>(g: Dag<N>): N[] | undefined {
  const rank = new Map<N, number>(g.nodes.map((n, i) => [n, i]));
  const pending = new Map<N, number>();
  const dependants = new Map<N, N[]>();
  for (const n of g.nodes) {
    const ds = [...new Set(depsOf(g, n))];
    pending.set(n, ds.length);
    for (const d of ds) {
      const list = dependants.get(d) ?? [];
      list.push(n);
      dependants.set(d, list);
    }
  }
  // Ready set kept sorted by rank; graphs are small, so insertion sort is fine.
  const ready: N[] = g.nodes.filter((n) => pending.get(n) === 0);
  const out: N[] = [];
  while (ready.length > 0) {
    const n = ready.shift()!;
    out.push(n);
    for (const m of dependants.get(n) ?? []) {
      const left = pending.get(m)! - 1;
      pending.set(m, left);
      if (left === 0) {
        const r = rank.get(m)!;
        let i = 0;
        while (i < ready.length && rank.get(ready[i])! < r) i++;
        ready.splice(i, 0, m);
      }
    }
  }
  return out.length === g.nodes.length ? out : undefined;
}
