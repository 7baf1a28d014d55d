/**
 * Cycle detection for `Dag`: finds one concrete cycle per strongly connected
 * component that has one (Tarjan), as a path of nodes. Pure; it does not
 * build diagnostics or decide what a cycle means.
 */
import { depsOf, type Dag } from './dag.js';

/**
 * Every independent cycle, each as the node path `[a, b, ..., a]` (first node
 * repeated at the end; a self-loop is `[a, a]`). One cycle per strongly
 * connected component, starting at the component's earliest node in
 * `g.nodes` order and following the earliest-declared edges, so the result is
 * deterministic. Cycles are returned in order of their starting node.
 */
export function findCycles<N extends string>(g: Dag<N>): N[][] {
  const rank = new Map<N, number>(g.nodes.map((n, i) => [n, i]));
  const components = stronglyConnected(g);
  const cycles: N[][] = [];
  for (const comp of components) {
    const members = new Set(comp);
    const hasSelfLoop = comp.length === 1 && depsOf(g, comp[0]).includes(comp[0]);
    if (comp.length === 1 && !hasSelfLoop) continue;
    const start = [...comp].sort((a, b) => rank.get(a)! - rank.get(b)!)[0];
    cycles.push(shortestCycleThrough(g, start, members));
  }
  return cycles.sort((a, b) => rank.get(a[0])! - rank.get(b[0])!);
}

/** BFS from `start`'s dependencies back to `start`, staying inside the component. */
function shortestCycleThrough<N extends string>(g: Dag<N>, start: N, members: ReadonlySet<N>): N[] {
  const parent = new Map<N, N>();
  const queue: N[] = [start];
  const visited = new Set<N>();
  while (queue.length > 0) {
    const n = queue.shift()!;
    for (const d of depsOf(g, n)) {
      if (!members.has(d)) continue;
      if (d === start) {
        return [...forward(parent, start, n), start];
      }
      if (!visited.has(d)) {
        visited.add(d);
        parent.set(d, n);
        queue.push(d);
      }
    }
  }
  throw new Error('shortestCycleThrough: node is not on a cycle');
}

function forward<N extends string>(parent: ReadonlyMap<N, N>, start: N, end: N): N[] {
  const rev: N[] = [];
  for (let cur: N = end; cur !== start; cur = parent.get(cur)!) rev.push(cur);
  rev.push(start);
  return rev.reverse();
}

/** Tarjan's algorithm, iterative (deep pipelines must not overflow the stack). */
function stronglyConnected<N extends string>(g: Dag<N>): N[][] {
  const index = new Map<N, number>();
  const low = new Map<N, number>();
  const onStack = new Set<N>();
  const stack: N[] = [];
  const out: N[][] = [];
  let next = 0;
  for (const root of g.nodes) {
    if (index.has(root)) continue;
    const work: { n: N; i: number }[] = [{ n: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const ds = depsOf(g, frame.n);
      if (frame.i < ds.length) {
        const d = ds[frame.i++];
        if (!index.has(d)) {
          index.set(d, next);
          low.set(d, next++);
          stack.push(d);
          onStack.add(d);
          work.push({ n: d, i: 0 });
        } else if (onStack.has(d)) {
          low.set(frame.n, Math.min(low.get(frame.n)!, index.get(d)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const p = work[work.length - 1].n;
        low.set(p, Math.min(low.get(p)!, low.get(frame.n)!));
      }
      if (low.get(frame.n) === index.get(frame.n)) {
        const comp: N[] = [];
        let x: N;
        do {
          x = stack.pop()!;
          onStack.delete(x);
          comp.push(x);
        } while (x !== frame.n);
        out.push(comp);
      }
    }
  }
  return out;
}
