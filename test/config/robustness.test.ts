/**
 * No stack trace for bad input: many malformed pipelines (wrong shapes in
 * every field) must come back as diagnostics with a location, never throw.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { configRig } from './rig.js';

const rig = configRig();
after(() => rig.dispose());

const bodies = [
  'stages: {a: null}',
  'stages: {a: 3}',
  'stages: {a: [cmd, echo]}',
  'stages: {a: {cmd: [[1], {x: 1}]}}',
  'stages: {a: {cmd: []}}',
  'stages: {a: {cmd: ""}}',
  'stages: {a: {cmd: "   "}}',
  'stages: {a: {cmd: echo, deps: 3}}',
  'stages: {a: {cmd: echo, deps: [3, null, {stage: 3}, {stage: a, output: 4}, {}]}}',
  'stages: {a: {cmd: echo, outs: [3, {path: 4}, {cache: false}, null]}}',
  'stages: {a: {cmd: echo, metrics: {a: 1}}}',
  'stages: {a: {cmd: echo, params: [1, null, ""]}}',
  'stages: {a: {cmd: echo, needs: a}}',
  'stages: {a: {cmd: echo, needs: [null, 3, ""]}}',
  'stages: {a: {cmd: echo, env: [A]}}',
  'stages: {a: {cmd: echo, env: {A: {b: 1}, "1x": 2}}}',
  'stages: {a: {cmd: echo, resources: {gpu: -1, cpu: x}}}',
  'stages: {a: {cmd: echo, cwd: 3, interrupt: 1, description: [1]}}',
  'stages: {a: {cmd: echo, matrix: 3}}',
  'stages: {a: {cmd: echo, matrix: {}}}',
  'stages: {a: {cmd: echo, matrix: {x: 3}}}',
  'stages: {a: {cmd: echo, matrix: {x: "${params.nope}"}}}',
  'stages: {a: {cmd: echo, foreach: {a: 1}}}',
  'stages: {a: {cmd: echo, foreach: []}}',
  'stages: {a: {cmd: echo, foreach: "${item}"}}',
  'stages: {a: {cmd: echo, foreach: [[1], [2]], outs: ["${item}"]}}',
  'stages: {a: {uses: 3}}',
  'stages: {a: {uses: ingest, with: 3}}',
  'stages: {a: {uses: ingest, with: [1]}}',
  'stages: {a: {uses: ingest, with: {source: "${params}"}}}',
  'stages: {a: {uses: ingest, with: {source: d}, inputs: [a]}}',
  'stages: {a: {uses: ingest, with: {source: d}, inputs: {x: 3}}}',
  'stages: {a: {uses: resize, inputs: {images: a}}}',
  'stages: {a: {uses: ingest, with: {source: d}, out: 3}}',
  'stages: {a: {uses: ingest, with: {source: d}, out: "${stages.a.out}"}}',
  'stages: {a: {uses: ingest, with: {source: d}, out: .}}',
  'stages: {a: {uses: ingest, cmd: echo}}',
  'stages: {a: {cmd: "echo ${stages.a.out}", outs: [x]}}',
  'stages: {a: {cmd: "echo ${stages.zz.out}"}}',
  'stages: {a: {cmd: echo, outs: ["${stages.a.out}"]}}',
  'stages: {1: {cmd: echo}, 2: {cmd: echo, needs: [1]}, 3: {cmd: echo, needs: ["1"]}}',
  'stages: {"": {cmd: echo}}',
  'params: 3\nstages: {a: {cmd: "echo ${params.x}"}}',
  'params: [1]\nparams_files: 3\nstages: {}',
  'params_files: [3, null, ""]\nstages: {}',
  'cache: [1]\nstages: {}',
  'stages: {a: &x {cmd: echo}, b: *x}',
  'stages: {a: {cmd: echo, <<: {outs: [x]}}}',
  'stages: !!set {a}',
  'stages: {a: {cmd: !!binary aGVsbG8=}}',
  'stages: {a: {cmd: echo}}\n---\nname: second',
];

test('malformed pipelines give located diagnostics and never throw', async () => {
  for (const body of bodies) {
    const yaml = `name: x\n${body}\n`;
    let r;
    try {
      r = await rig.load(yaml);
    } catch (e) {
      assert.fail(`threw on ${JSON.stringify(body)}: ${(e as Error).stack}`);
    }
    if (r.ok) continue; // a few are valid (e.g. numeric stage names); that is fine
    for (const d of r.error) assert.ok(d.location, `diagnostic without location for ${JSON.stringify(body)}: ${d.message}`);
  }
});

test('these inputs are rejected (not silently accepted)', async () => {
  // Inputs that are legitimately valid (or harmlessly odd); the rest must be rejected.
  const mayPass = new Set([
    'stages: {a: {cmd: echo, foreach: [[1], [2]], outs: ["${item}"]}}',
    'stages: {1: {cmd: echo}, 2: {cmd: echo, needs: [1]}, 3: {cmd: echo, needs: ["1"]}}',
    'stages: {a: &x {cmd: echo}, b: *x}',
    'stages: {a: {cmd: echo, <<: {outs: [x]}}}',
    'stages: !!set {a}',
  ]);
  const mustFail = bodies.filter((b) => !mayPass.has(b));
  for (const body of mustFail) {
    const r = await rig.load(`name: x\n${body}\n`);
    assert.ok(!r.ok, `accepted ${JSON.stringify(body)}`);
  }
});
