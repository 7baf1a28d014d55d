/**
 * A tiny dependency graph: nodes in a fixed order (file order) and, for each
 * node, the nodes it depends on. Pure data + construction helpers; it does not
 * detect cycles (`cycles.ts`) or order nodes (`topo.ts`), and it knows nothing
 * about stages or files.
 */

/** A directed graph where an edge `a → b` means "a depends on b" (b runs first). */
export interface Dag<N extends string = string> {
  /** Every node, in declaration order (used to break ties deterministically). */
  readonly nodes: readonly N[];
  /** Node → the nodes it depends on. Nodes without dependencies may be absent. */
  readonly deps: ReadonlyMap<N, readonly N[]>;
}

/**
 * Builds a graph from an edge list `[from, to]` ("from depends on to"). Nodes
 * are listed in first-appearance order unless `nodes` gives the order; edge
 * endpoints missing from `nodes` are appended. Duplicate edges are kept once.
 */
export function dagFromEdges<N extends string>(edges: readonly (readonly [N, N])[], nodes: readonly N[] = []): Dag<N> {
  const order: N[] = [...nodes];
  const seen = new Set<N>(nodes);
  const deps = new Map<N, N[]>();
  const seenEdges = new Map<N, Set<N>>();
  const add = (n: N): void => {
    if (!seen.has(n)) {
      seen.add(n);
      order.push(n);
    }
  };
  for (const [from, to] of edges) {
    add(from);
    add(to);
    let set = seenEdges.get(from);
    if (!set) {
      seenEdges.set(from, (set = new Set()));
      deps.set(from, []);
    }
    if (!set.has(to)) {
      set.add(to);
      deps.get(from)!.push(to);
    }
  }
  return { nodes: order, deps };
}

/** The nodes `n` depends on (empty when none). */
export function depsOf<N extends string>(g: Dag<N>, n: N): readonly N[] {
  return g.deps.get(n) ?? [];
}
