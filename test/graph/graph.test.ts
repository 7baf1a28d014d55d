/** Graph code from edge lists: cycles (one per component, shortest path, self-loops) and topological order with file-order ties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dagFromEdges } from '../../src/graph/dag.js';
import { findCycles } from '../../src/graph/cycles.js';
import { topoSort } from '../../src/graph/topo.js';

test('no cycles in a DAG; topo puts dependencies first and breaks ties by declaration order', () => {
  // c depends on a and b; d depends on c; e is free. Declared order: e, d, c, b, a.
  const g = dagFromEdges([['c', 'a'], ['c', 'b'], ['d', 'c']], ['e', 'd', 'c', 'b', 'a']);
  assert.deepEqual(findCycles(g), []);
  assert.deepEqual(topoSort(g), ['e', 'b', 'a', 'c', 'd']);
});

test('topo: a ready node declared earlier goes before one that became ready earlier', () => {
  const g = dagFromEdges([['b', 'z']], ['a', 'b', 'c', 'z']);
  // a, c, z ready at start; b waits for z. Order by rank among ready: a, c, z, then b.
  assert.deepEqual(topoSort(g), ['a', 'c', 'z', 'b']);
});

test('cycles: one per strongly connected component, starting at its earliest node, shortest path', () => {
  const g = dagFromEdges(
    [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
      ['c', 'b'], // b <-> c is shorter, but the cycle must go through a (earliest node)
      ['x', 'y'],
      ['y', 'x'],
      ['s', 's'],
      ['d', 'a'], // d depends on a cycle but is not on one
    ],
    ['d', 'a', 'b', 'c', 's', 'x', 'y'],
  );
  assert.deepEqual(findCycles(g), [
    ['a', 'b', 'c', 'a'],
    ['s', 's'],
    ['x', 'y', 'x'],
  ]);
  assert.equal(topoSort(g), undefined);
});

test('deep chains do not overflow the stack', () => {
  const n = 20000;
  const edges: [string, string][] = [];
  for (let i = 1; i < n; i++) edges.push([`n${i}`, `n${i - 1}`]);
  const g = dagFromEdges(edges);
  assert.deepEqual(findCycles(g), []);
  assert.equal(topoSort(g)?.[n - 1], `n${n - 1}`);
  const cyclic = dagFromEdges([...edges, ['n0', `n${n - 1}`]]);
  assert.equal(findCycles(cyclic)[0].length, n + 1);
});
