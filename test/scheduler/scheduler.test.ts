import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schedule, type SchedulerNode, type TaskContext, type TaskOutcome } from '../../src/scheduler.js';
import type { StageId } from '../../src/pipeline.js';

const id = (s: string): StageId => s as StageId;

/** Nodes from an edge list `['a>b', 'a>c']` plus isolated names. */
function graph(edges: string[], extra: Record<string, Partial<SchedulerNode>> = {}): SchedulerNode[] {
  const names: string[] = [];
  const needs = new Map<string, string[]>();
  const add = (n: string): void => {
    if (!names.includes(n)) names.push(n);
    if (!needs.has(n)) needs.set(n, []);
  };
  for (const e of edges) {
    const [from, to] = e.split('>');
    add(from);
    if (to !== undefined) {
      add(to);
      needs.get(to)!.push(from);
    }
  }
  for (const n of Object.keys(extra)) add(n);
  return names.map((n) => ({ id: id(n), needs: needs.get(n)!.map(id), resources: {}, interrupt: true, ...extra[n] }));
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A task that holds a slot for `ms`, logging start/end, with a per-node outcome. */
function recorder(outcomeOf: (id: string) => TaskOutcome = () => 'ok', ms = 10) {
  const log: string[] = [];
  let active = 0;
  let maxActive = 0;
  const task = async (sid: StageId, ctx: TaskContext): Promise<TaskOutcome> => {
    const r = await ctx.withSlot(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      log.push(`start ${sid}`);
      await tick(ms);
      log.push(`end ${sid}`);
      active--;
      return outcomeOf(sid);
    });
    return r ?? 'cancelled';
  };
  return { log, task, get maxActive() { return maxActive; } };
}

test('diamond: a node starts only after all its upstream nodes end', async () => {
  const r = recorder();
  const out = await schedule({ nodes: graph(['a>b', 'a>c', 'b>d', 'c>d']), jobs: 4, keepGoing: false, task: r.task });
  assert.deepEqual([...out.values()], ['ok', 'ok', 'ok', 'ok']);
  const at = (s: string): number => r.log.indexOf(s);
  assert.ok(at('end a') < at('start b') && at('end a') < at('start c'));
  assert.ok(at('end b') < at('start d') && at('end c') < at('start d'));
  assert.equal(r.maxActive, 2, 'b and c run in parallel');
});

test('--jobs bounds concurrency', async () => {
  const r = recorder();
  await schedule({ nodes: graph([], { a: {}, b: {}, c: {}, d: {}, e: {} }), jobs: 2, keepGoing: false, task: r.task });
  assert.equal(r.maxActive, 2);
  assert.equal(r.log.length, 10);
});

test('a resource pool of 1 serialises gpu nodes while others still run alongside', async () => {
  const gpu = { resources: { gpu: 1 } };
  const events: string[] = [];
  let gpuActive = 0;
  let maxGpu = 0;
  let overlapWithCpu = false;
  let cpuActive = 0;
  const out = await schedule({
    nodes: graph([], { g1: gpu, g2: gpu, g3: gpu, c1: {}, c2: {} }),
    jobs: 4,
    keepGoing: false,
    async task(sid, ctx) {
      const isGpu = sid.startsWith('g');
      await ctx.withSlot(async () => {
        if (isGpu) gpuActive++;
        else cpuActive++;
        maxGpu = Math.max(maxGpu, gpuActive);
        if (gpuActive > 0 && cpuActive > 0) overlapWithCpu = true;
        events.push(sid);
        await tick(15);
        if (isGpu) gpuActive--;
        else cpuActive--;
      });
      return 'ok';
    },
  });
  assert.equal(maxGpu, 1);
  assert.ok(overlapWithCpu, 'cpu nodes are not blocked by the gpu pool');
  assert.equal([...out.values()].filter((o) => o === 'ok').length, 5);
});

test('a request above the pool capacity takes the whole pool instead of deadlocking', async () => {
  const r = recorder();
  const out = await schedule({ nodes: graph([], { a: { resources: { gpu: 4 } }, b: { resources: { gpu: 1 } } }), jobs: 2, capacities: { gpu: 2 }, keepGoing: false, task: r.task });
  assert.deepEqual([...out.values()], ['ok', 'ok']);
  assert.equal(r.maxActive, 1);
});

test('without --keep-going a failure stops new starts; running nodes finish; downstream is skipped', async () => {
  // jobs=1: a fails first; b (independent) has not started yet -> cancelled; c after a -> skipped.
  const r = recorder((s) => (s === 'a' ? 'failed' : 'ok'));
  const out = await schedule({ nodes: graph(['a>c', 'b']), jobs: 1, keepGoing: false, task: r.task });
  assert.equal(out.get(id('a')), 'failed');
  assert.equal(out.get(id('c')), 'skipped-upstream-failed');
  assert.equal(out.get(id('b')), 'cancelled');
  assert.deepEqual(r.log, ['start a', 'end a']);
});

test('a running node is allowed to finish after another fails', async () => {
  const r = recorder((s) => (s === 'a' ? 'failed' : 'ok'), 20);
  const out = await schedule({
    nodes: graph(['a', 'b']),
    jobs: 2,
    keepGoing: false,
    async task(sid, ctx) {
      if (sid === 'a') return (await ctx.withSlot(async () => (await tick(2), 'failed' as const))) ?? 'cancelled';
      return r.task(sid, ctx);
    },
  });
  assert.equal(out.get(id('b')), 'ok');
});

test('--keep-going runs independent branches and skips the failed branch transitively', async () => {
  const r = recorder((s) => (s === 'a' ? 'failed' : 'ok'));
  const notRun: string[] = [];
  const out = await schedule({
    nodes: graph(['a>c', 'c>d', 'b>e']),
    jobs: 1,
    keepGoing: true,
    task: r.task,
    onNotRun: (sid, o, why) => notRun.push(`${sid} ${o} ${why}`),
  });
  assert.equal(out.get(id('b')), 'ok');
  assert.equal(out.get(id('e')), 'ok');
  assert.equal(out.get(id('c')), 'skipped-upstream-failed');
  assert.equal(out.get(id('d')), 'skipped-upstream-failed');
  assert.deepEqual(notRun, ['c skipped-upstream-failed upstream stage a failed', 'd skipped-upstream-failed upstream stage c was skipped']);
});

test('abort cancels interruptible tasks, lets interrupt:false tasks finish, starts nothing new', async () => {
  const ac = new AbortController();
  const seen: string[] = [];
  const out = await schedule({
    nodes: graph(['soft>after', 'hard'], { hard: { interrupt: false } }),
    jobs: 2,
    keepGoing: false,
    signal: ac.signal,
    async task(sid, ctx) {
      const r = await ctx.withSlot(async () => {
        if (sid === 'soft') {
          setTimeout(() => ac.abort(), 5);
          await new Promise<void>((res) => ctx.signal.addEventListener('abort', () => res(), { once: true }));
          seen.push('soft saw abort');
          return 'cancelled' as const;
        }
        await tick(30);
        seen.push(`hard finished, aborted=${ctx.signal.aborted}`);
        return 'ok' as const;
      });
      return r ?? 'cancelled';
    },
  });
  assert.equal(out.get(id('soft')), 'cancelled');
  assert.equal(out.get(id('after')), 'cancelled');
  assert.equal(out.get(id('hard')), 'ok');
  assert.deepEqual(seen.sort(), ['hard finished, aborted=false', 'soft saw abort']);
});

test('tasks that never ask for a slot (fresh stages) do not queue behind running ones', async () => {
  const order: string[] = [];
  await schedule({
    nodes: graph(['slow', 'fresh']),
    jobs: 1,
    keepGoing: false,
    async task(sid, ctx) {
      if (sid === 'fresh') {
        order.push('fresh done');
        return 'ok';
      }
      await ctx.withSlot(async () => {
        await tick(20);
        order.push('slow done');
      });
      return 'ok';
    },
  });
  assert.deepEqual(order, ['fresh done', 'slow done']);
});

test('a throwing task counts as failed and is reported', async () => {
  const errors: string[] = [];
  const out = await schedule({
    nodes: graph(['a>b']),
    jobs: 1,
    keepGoing: false,
    task: async () => {
      throw new Error('boom');
    },
    onTaskError: (sid, e) => errors.push(`${sid}: ${(e as Error).message}`),
  });
  assert.equal(out.get(id('a')), 'failed');
  assert.equal(out.get(id('b')), 'skipped-upstream-failed');
  assert.deepEqual(errors, ['a: boom']);
});

test('failure groups: without keepGoing a failed node stops only its own group', async () => {
  // Two variants: v1 (a1 > b1 > c1) and v2 (a2 > b2 > c2); a1 fails.
  const nodes = graph(['a1>b1', 'b1>c1', 'a2>b2', 'b2>c2']).map((n) => ({ ...n, group: n.id.endsWith('1') ? 'v1' : 'v2' }));
  const r = recorder((s) => (s === 'a1' ? 'failed' : 'ok'));
  const out = await schedule({ nodes, jobs: 1, keepGoing: false, task: r.task });
  assert.equal(out.get(id('a1')), 'failed');
  assert.equal(out.get(id('b1')), 'skipped-upstream-failed');
  assert.deepEqual([out.get(id('a2')), out.get(id('b2')), out.get(id('c2'))], ['ok', 'ok', 'ok'], 'the other group runs to the end');
});

test('failure groups: a queued node of the failed group is not started, other groups are', async () => {
  // x1 fails while y1 (same group, independent) and y2 (other group) wait for the single slot.
  const nodes = graph([], { x1: { group: 'v1' }, y1: { group: 'v1' }, y2: { group: 'v2' } });
  const r = recorder((s) => (s === 'x1' ? 'failed' : 'ok'));
  const out = await schedule({ nodes, jobs: 1, keepGoing: false, task: r.task });
  assert.equal(out.get(id('y1')), 'cancelled');
  assert.equal(out.get(id('y2')), 'ok');
  assert.ok(!r.log.includes('start y1'));
});

test('failure groups: a failed node without a group stops every group', async () => {
  const nodes = graph([], { s: {}, y1: { group: 'v1' }, y2: { group: 'v2' } });
  const r = recorder((x) => (x === 's' ? 'failed' : 'ok'));
  const out = await schedule({ nodes, jobs: 1, keepGoing: false, task: r.task });
  assert.deepEqual([out.get(id('s')), out.get(id('y1')), out.get(id('y2'))], ['failed', 'cancelled', 'cancelled']);
});
