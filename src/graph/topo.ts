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
  // Ready nodes in a binary min-heap by declaration rank: O(n log n) for big expanded pipelines.
  const heap: number[] = [];
  const push = (r: number): void => {
    heap.push(r);
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (heap[p] <= heap[i]) break;
      [heap[p], heap[i]] = [heap[i], heap[p]];
      i = p;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (r < heap.length && heap[r] < heap[m]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  g.nodes.forEach((n, i) => {
    if (pending.get(n) === 0) push(i);
  });
  const out: N[] = [];
  while (heap.length > 0) {
    const n = g.nodes[pop()];
    out.push(n);
    for (const m of dependants.get(n) ?? []) {
      const left = pending.get(m)! - 1;
      pending.set(m, left);
      if (left === 0) push(rank.get(m)!);
    }
  }
  return out.length === g.nodes.length ? out : undefined;
}
