/**
 * Golden diagnostics: each kind of config error, printed exactly as the CLI
 * prints it (file:line:col, source line, squiggle, notes), asserted against
 * literal text. Uses the test-only registry and stage schemas from ./rig.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { configRig } from './rig.js';

const rig = configRig();
after(() => rig.dispose());

/** Joins lines with '\n', so each case reads line by line like the file and the terminal output. */
function lines(...ls: string[]): string {
  return ls.join('\n');
}

test("yaml syntax error: an unclosed bracket is located at the bracket, with where YAML gave up", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: [echo, hi",
    "  b: {cmd: echo}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:10: error: invalid YAML: '[' is never closed",
      "  4 |     cmd: [echo, hi",
      "    |          ~",
      "pipeline.yaml:5:3: note: YAML gave up here: Flow sequence in block collection must be sufficiently indented and end with a ]",
      "  5 |   b: {cmd: echo}",
      "    |   ~",
      "",
      "1 error",
    ),
  );
});

test("yaml indentation error is located", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: echo",
    "   outs: [a]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:1: error: invalid YAML: All mapping items must start at the same column",
      "  5 |    outs: [a]",
      "    | ~",
      "",
      "1 error",
    ),
  );
});

test("duplicate stage key is a located YAML error", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a: {cmd: echo}",
    "  a: {cmd: ls}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:3: error: invalid YAML: Map keys must be unique",
      "  4 |   a: {cmd: ls}",
      "    |   ~",
      "",
      "1 error",
    ),
  );
});

test("unknown top-level key: did you mean, and no redundant missing-key error", async () => {
  const yaml = lines(
    "name: x",
    "stagse:",
    "  a: {cmd: echo}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:2:1: error: unknown key 'stagse' in the pipeline file; did you mean 'stages'?",
      "  2 | stagse:",
      "    | ~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("unknown stage key: did you mean", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  report:",
    "    cmd: [python3, r.py]",
    "    dep: [r.py]",
    "    outs: [r.txt]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:5: error: unknown key 'dep' in stages.report; did you mean 'deps'?",
      "  5 |     dep: [r.py]",
      "    |     ~~~",
      "",
      "1 error",
    ),
  );
});

test("unknown key far from every allowed key lists them", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  ingest:",
    "    uses: ingest",
    "    with: {source: d}",
    "    zzzzzz: 1",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:6:5: error: unknown key 'zzzzzz' in stages.ingest (expected one of: uses, with, inputs, out, needs, env, resources, interrupt, description, matrix, foreach)",
      "  6 |     zzzzzz: 1",
      "    |     ~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("wrong types", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  report:",
    "    cmd: [python3, r.py]",
    "    outs: r.txt",
    "    interrupt: \"no\"",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:11: error: stages.report.outs must be a list, got string 'r.txt'",
      "  5 |     outs: r.txt",
      "    |           ~~~~~",
      "",
      "pipeline.yaml:6:16: error: stages.report.interrupt must be a boolean, got string 'no'",
      "  6 |     interrupt: \"no\"",
      "    |                ~~~~",
      "",
      "2 errors",
    ),
  );
});

test("top-level wrong types", async () => {
  const yaml = lines(
    "name: 3",
    "stages: []",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:1:7: error: name must be a string, got number 3",
      "  1 | name: 3",
      "    |       ~",
      "",
      "pipeline.yaml:2:9: error: stages must be a mapping, got a list",
      "  2 | stages: []",
      "    |         ~~",
      "",
      "2 errors",
    ),
  );
});

test("stage with neither cmd nor uses", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  report:",
    "    outs: [r.txt]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:3:3: error: stage 'report' needs either 'uses:' (a built-in stage) or 'cmd:' (a command)",
      "  3 |   report:",
      "    |   ~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("unknown stage in needs: did you mean", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  train: {cmd: [echo]}",
    "  report:",
    "    cmd: [echo]",
    "    needs: [trian]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:6:13: error: needs: 'trian' is not a stage in this pipeline; did you mean 'train'?",
      "  6 |     needs: [trian]",
      "    |             ~~~~~",
      "",
      "1 error",
    ),
  );
});

test("unknown stage, unknown output and misspelt key in deps", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  train: {cmd: [echo], outs: [model.json]}",
    "  report:",
    "    cmd: [echo]",
    "    deps: [{stage: evaluate}, {stage: train, output: modle.json}, {stag: train}]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:6:20: error: dep 'evaluate' is not a stage in this pipeline",
      "  6 |     deps: [{stage: evaluate}, {stage: train, output: modle.json}, {stag: train}]",
      "    |                    ~~~~~~~~",
      "",
      "pipeline.yaml:6:54: error: stage 'train' has no output 'modle.json'; did you mean 'model.json'?",
      "  6 |     deps: [{stage: evaluate}, {stage: train, output: modle.json}, {stag: train}]",
      "    |                                                      ~~~~~~~~~~",
      "",
      "pipeline.yaml:6:68: error: unknown key 'stag' in stages.report.deps[2]; did you mean 'stage'?",
      "  6 |     deps: [{stage: evaluate}, {stage: train, output: modle.json}, {stag: train}]",
      "    |                                                                    ~~~~",
      "",
      "3 errors",
    ),
  );
});

test("unknown params in ${...} and params: list", async () => {
  const yaml = lines(
    "name: x",
    "params:",
    "  train: {lr: 0.1}",
    "stages:",
    "  report:",
    "    cmd: \"python3 r.py --lr ${params.train.lrr} --x ${params.trian.lr}\"",
    "    params: [train.epochs]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:6:29: error: unknown param 'params.train.lrr': params.train has no key 'lrr'; did you mean 'params.train.lr'?",
      "  6 |     cmd: \"python3 r.py --lr ${params.train.lrr} --x ${params.trian.lr}\"",
      "    |                             ~~~~~~~~~~~~~~~~~~~",
      "",
      "pipeline.yaml:6:53: error: unknown param 'params.trian.lr': params has no key 'trian'; did you mean 'params.train'?",
      "  6 |     cmd: \"python3 r.py --lr ${params.train.lrr} --x ${params.trian.lr}\"",
      "    |                                                     ~~~~~~~~~~~~~~~~~~",
      "",
      "pipeline.yaml:7:14: error: unknown param 'train.epochs': params.train has no key 'epochs'",
      "  7 |     params: [train.epochs]",
      "    |              ~~~~~~~~~~~~",
      "",
      "3 errors",
    ),
  );
});

test("bad interpolation syntax", async () => {
  const yaml = lines(
    "name: x",
    "params: {a: 1}",
    "stages:",
    "  report:",
    "    cmd: [echo, \"${params.a\", \"${foo.bar}\", \"${}\", \"${stages.x}\"]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:18: error: unterminated '${': missing '}'",
      "  5 |     cmd: [echo, \"${params.a\", \"${foo.bar}\", \"${}\", \"${stages.x}\"]",
      "    |                  ~~",
      "",
      "pipeline.yaml:5:32: error: unknown namespace 'foo' (expected params, item or stages) in '${foo.bar}'",
      "  5 |     cmd: [echo, \"${params.a\", \"${foo.bar}\", \"${}\", \"${stages.x}\"]",
      "    |                                ~~~~~~~~~~",
      "",
      "pipeline.yaml:5:46: error: empty reference in '${}'",
      "  5 |     cmd: [echo, \"${params.a\", \"${foo.bar}\", \"${}\", \"${stages.x}\"]",
      "    |                                              ~~~",
      "",
      "pipeline.yaml:5:53: error: stage references have the form ${stages.<id>.out} in '${stages.x}'",
      "  5 |     cmd: [echo, \"${params.a\", \"${foo.bar}\", \"${}\", \"${stages.x}\"]",
      "    |                                                     ~~~~~~~~~~~",
      "",
      "4 errors",
    ),
  );
});

test("cycle with full path and one location per edge", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: [echo]",
    "    needs: [c]",
    "    outs: [a.txt]",
    "  b:",
    "    cmd: [echo]",
    "    deps: [{stage: a}]",
    "    outs: [b.txt]",
    "  c:",
    "    cmd: [cat, \"${stages.b.out}\"]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:3:3: error: dependency cycle: a -> c -> b -> a",
      "  3 |   a:",
      "    |   ~",
      "pipeline.yaml:5:13: note: 'a' needs 'c' (needs)",
      "  5 |     needs: [c]",
      "    |             ~",
      "pipeline.yaml:12:17: note: 'c' needs 'b' (${stages.b.out})",
      "  12 |     cmd: [cat, \"${stages.b.out}\"]",
      "     |                 ~~~~~~~~~~~~~~~",
      "pipeline.yaml:9:20: note: 'b' needs 'a' (deps)",
      "  9 |     deps: [{stage: a}]",
      "    |                    ~",
      "",
      "1 error",
    ),
  );
});

test("self-dependency is a cycle", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: [echo]",
    "    needs: [a]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:3:3: error: dependency cycle: a -> a",
      "  3 |   a:",
      "    |   ~",
      "pipeline.yaml:5:13: note: 'a' needs 'a' (needs)",
      "  5 |     needs: [a]",
      "    |             ~",
      "",
      "1 error",
    ),
  );
});

test("cycle through an inferred path dependency", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  prep:",
    "    cmd: [prep]",
    "    deps: [data/clean/part1.csv]",
    "    outs: [data/raw]",
    "  clean:",
    "    cmd: [clean]",
    "    deps: [data/raw]",
    "    outs: [data/clean]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:3:3: error: dependency cycle: prep -> clean -> prep",
      "  3 |   prep:",
      "    |   ~~~~",
      "pipeline.yaml:5:12: note: 'prep' needs 'clean' (reads 'data/clean/part1.csv', an output of 'clean')",
      "  5 |     deps: [data/clean/part1.csv]",
      "    |            ~~~~~~~~~~~~~~~~~~~~",
      "pipeline.yaml:9:12: note: 'clean' needs 'prep' (reads 'data/raw', an output of 'prep')",
      "  9 |     deps: [data/raw]",
      "    |            ~~~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("duplicate and overlapping outputs", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: [echo]",
    "    outs: [data/out.txt]",
    "  b:",
    "    cmd: [echo]",
    "    outs: [data/out.txt, data]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:8:12: error: stage 'b' declares output 'data/out.txt', which stage 'a' already declares",
      "  8 |     outs: [data/out.txt, data]",
      "    |            ~~~~~~~~~~~~",
      "pipeline.yaml:5:12: note: 'data/out.txt' first declared by stage 'a' here",
      "  5 |     outs: [data/out.txt]",
      "    |            ~~~~~~~~~~~~",
      "",
      "pipeline.yaml:8:26: error: output 'data' of stage 'b' overlaps output 'data/out.txt' of stage 'a' ('data/out.txt' is inside 'data')",
      "  8 |     outs: [data/out.txt, data]",
      "    |                          ~~~~",
      "pipeline.yaml:5:12: note: stage 'a' declares 'data/out.txt' here",
      "  5 |     outs: [data/out.txt]",
      "    |            ~~~~~~~~~~~~",
      "",
      "2 errors",
    ),
  );
});

test("built-in output dir overlapping a cmd output", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  images: {uses: ingest, with: {source: d}, out: build/images}",
    "  pack:",
    "    cmd: [tar]",
    "    outs: [build]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:6:12: error: output 'build' of stage 'pack' overlaps output 'build/images' of stage 'images' ('build/images' is inside 'build')",
      "  6 |     outs: [build]",
      "    |            ~~~~~",
      "pipeline.yaml:3:50: note: stage 'images' declares 'build/images' here",
      "  3 |   images: {uses: ingest, with: {source: d}, out: build/images}",
      "    |                                                  ~~~~~~~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("unknown built-in: did you mean", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  ingest:",
    "    uses: ingset",
    "    with: {source: data}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:11: error: unknown built-in stage 'ingset'; did you mean 'ingest'?",
      "  4 |     uses: ingset",
      "    |           ~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("missing required input slot", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  shrink:",
    "    uses: resize",
    "    with: {size: [32, 32]}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:11: error: built-in 'resize' needs input 'images', but there is no stage named 'images'; add one or map it with inputs: {images: <stage>}",
      "  4 |     uses: resize",
      "    |           ~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("with: validated against the built-in schema, unknown slots", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  images:",
    "    uses: ingest",
    "    with: {source: data, sorce: x}",
    "  small:",
    "    uses: resize",
    "    inputs: {images: images}",
    "    with:",
    "      size: [32, \"32\"]",
    "      interpolation: bilnear",
    "  features:",
    "    uses: resize",
    "    inputs: {imgs: images}",
    "  train:",
    "    uses: train",
    "    with: {epochs: 0}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:26: error: unknown key 'sorce' in stages.images.with; did you mean 'source'?",
      "  5 |     with: {source: data, sorce: x}",
      "    |                          ~~~~~",
      "",
      "pipeline.yaml:10:18: error: stages.small.with.size[1] must be an integer, got string '32'",
      "  10 |       size: [32, \"32\"]",
      "     |                  ~~~~",
      "",
      "pipeline.yaml:11:22: error: stages.small.with.interpolation must be one of \"bilinear\", \"nearest\", got \"bilnear\"; did you mean \"bilinear\"?",
      "  11 |       interpolation: bilnear",
      "     |                      ~~~~~~~",
      "",
      "pipeline.yaml:14:14: error: built-in 'resize' has no input slot 'imgs'; did you mean 'images'?",
      "  14 |     inputs: {imgs: images}",
      "     |              ~~~~",
      "",
      "pipeline.yaml:17:5: error: stages.train.with is missing required key 'lr'",
      "  17 |     with: {epochs: 0}",
      "     |     ~~~~",
      "",
      "pipeline.yaml:17:20: error: stages.train.with.epochs must be >= 1, got number 0",
      "  17 |     with: {epochs: 0}",
      "     |                    ~",
      "",
      "6 errors",
    ),
  );
});

test("with: type errors after interpolation", async () => {
  const yaml = lines(
    "name: x",
    "params: {train: {lr: \"fast\"}}",
    "stages:",
    "  features: {cmd: [echo], outs: [f]}",
    "  train:",
    "    uses: train",
    "    with: {lr: \"${params.train.lr}\"}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:7:16: error: stages.train.with.lr must be a number, got string 'fast'",
      "  7 |     with: {lr: \"${params.train.lr}\"}",
      "    |                ~~~~~~~~~~~~~~~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("foreach and matrix errors", async () => {
  const yaml = lines(
    "name: x",
    "params: {lrs: 3}",
    "stages:",
    "  a:",
    "    foreach: [1, 2]",
    "    matrix: {x: [1]}",
    "    cmd: [echo]",
    "  b:",
    "    cmd: [echo, \"${item}\"]",
    "  c:",
    "    foreach: \"${params.lrs}\"",
    "    cmd: [echo]",
    "  d:",
    "    matrix: {lr: []}",
    "    cmd: [echo, \"${item.lrr}\"]",
    "  e:",
    "    foreach: [{k: 1}]",
    "    cmd: [echo, \"${item.kk}\"]",
    "  f:",
    "    foreach: [x, x]",
    "    cmd: [echo]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:5: error: stage 'a' has both foreach: and matrix:; use one",
      "  5 |     foreach: [1, 2]",
      "    |     ~~~~~~~",
      "",
      "pipeline.yaml:9:18: error: '${item}' is only available in a stage with foreach: or matrix:",
      "  9 |     cmd: [echo, \"${item}\"]",
      "    |                  ~~~~~~~",
      "",
      "pipeline.yaml:11:14: error: stages.c.foreach must resolve to a non-empty list, got 3",
      "  11 |     foreach: \"${params.lrs}\"",
      "     |              ~~~~~~~~~~~~~~~",
      "",
      "pipeline.yaml:14:18: error: stages.d.matrix.lr must have at least 1 item",
      "  14 |     matrix: {lr: []}",
      "     |                  ~~",
      "",
      "pipeline.yaml:18:18: error: cannot resolve '${item.kk}': item has no key 'kk'; did you mean 'item.k'?",
      "  18 |     cmd: [echo, \"${item.kk}\"]",
      "     |                  ~~~~~~~~~~",
      "",
      "pipeline.yaml:20:5: error: stage 'f' expands to 'f@x' twice; foreach/matrix values must be unique",
      "  20 |     foreach: [x, x]",
      "     |     ~~~~~~~",
      "",
      "6 errors",
    ),
  );
});

test("ambiguous reference to an expanded stage", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  sweep:",
    "    foreach: [1, 2]",
    "    cmd: [echo]",
    "    outs: [\"o${item}\"]",
    "  report:",
    "    cmd: [cat, \"${stages.sweep.out}\"]",
    "  images:",
    "    foreach: [a, b]",
    "    uses: ingest",
    "    with: {source: \"${item}\"}",
    "  small:",
    "    uses: resize",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:8:17: error: stage 'sweep' is ambiguous: it expands to 2 stages ('sweep@1', 'sweep@2'); name one of them",
      "  8 |     cmd: [cat, \"${stages.sweep.out}\"]",
      "    |                 ~~~~~~~~~~~~~~~~~~~",
      "",
      "pipeline.yaml:14:11: error: built-in 'resize' needs input 'images', and stage 'images' expands to several stages; map one with inputs: {images: <stage id>}",
      "  14 |     uses: resize",
      "     |           ~~~~~~",
      "",
      "2 errors",
    ),
  );
});

test("root is not a mapping", async () => {
  const yaml = lines(
    "- a",
    "- b",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:1:1: error: the pipeline file must be a mapping with name: and stages:, got a list",
      "  1 | - a",
      "    | ~~~",
      "",
      "1 error",
    ),
  );
});

test("empty file", async () => {
  const yaml = lines(
    "# nothing",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:1:1: error: the pipeline file is empty; it needs at least name: and stages:",
      "  1 | # nothing",
      "    | ~",
      "",
      "1 error",
    ),
  );
});

test("shell operators and unterminated quotes in a cmd string", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: python3 r.py > out.txt",
    "  b:",
    "    cmd: \"echo 'unterminated\"",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:23: error: '>' in cmd: commands run without a shell, so it would be passed as an argument; quote it to mean that, or use cmd: [sh, -c, '...']",
      "  4 |     cmd: python3 r.py > out.txt",
      "    |                       ~",
      "",
      "pipeline.yaml:6:16: error: unterminated single quote in cmd",
      "  6 |     cmd: \"echo 'unterminated\"",
      "    |                ~~~~~~~~~~~~~",
      "",
      "2 errors",
    ),
  );
});

test("params files: syntax error inside, missing file", async () => {
  rig.write({"params.yaml":"a: [1\n"});
  const yaml = lines(
    "name: x",
    "params_files: [params.yaml, missing.yaml]",
    "stages:",
    "  a: {cmd: echo}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "params.yaml:1:4: error: invalid YAML: '[' is never closed",
      "  1 | a: [1",
      "    |    ~",
      "params.yaml:1:6: note: YAML gave up here: Flow sequence in block collection must be sufficiently indented and end with a ]",
      "  1 | a: [1",
      "    |      ~",
      "",
      "pipeline.yaml:2:29: error: params file 'missing.yaml' does not exist",
      "  2 | params_files: [params.yaml, missing.yaml]",
      "    |                             ~~~~~~~~~~~~",
      "",
      "2 errors",
    ),
  );
});

test("invalid stage names", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  \"a@b\": {cmd: echo}",
    "  \"a b\": {cmd: echo}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:3:3: error: invalid stage name 'a@b': use letters, digits, '_', '.', '-' (and no '@', which marks foreach/matrix expansions)",
      "  3 |   \"a@b\": {cmd: echo}",
      "    |   ~~~~~",
      "",
      "pipeline.yaml:4:3: error: invalid stage name 'a b': use letters, digits, '_', '.', '-' (and no '@', which marks foreach/matrix expansions)",
      "  4 |   \"a b\": {cmd: echo}",
      "    |   ~~~~~",
      "",
      "2 errors",
    ),
  );
});

test("outputs outside the workspace", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a: {cmd: echo, outs: [../x, /abs]}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:3:25: error: stages.a.outs[0] must be a path inside the workspace, got '../x'",
      "  3 |   a: {cmd: echo, outs: [../x, /abs]}",
      "    |                         ~~~~",
      "",
      "pipeline.yaml:3:31: error: stages.a.outs[1] must be a path inside the workspace, got '/abs'",
      "  3 |   a: {cmd: echo, outs: [../x, /abs]}",
      "    |                               ~~~~",
      "",
      "2 errors",
    ),
  );
});

test("every error at once", async () => {
  const yaml = lines(
    "name: x",
    "params: {lr: 0.1}",
    "stages:",
    "  a:",
    "    cmd: [echo, \"${params.rl}\"]",
    "    needs: [b, zz]",
    "    dep: [x]",
    "  b:",
    "    cmd: [echo]",
    "    needs: [a]",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:3: error: dependency cycle: a -> b -> a",
      "  4 |   a:",
      "    |   ~",
      "pipeline.yaml:6:13: note: 'a' needs 'b' (needs)",
      "  6 |     needs: [b, zz]",
      "    |             ~",
      "pipeline.yaml:10:13: note: 'b' needs 'a' (needs)",
      "  10 |     needs: [a]",
      "     |             ~",
      "",
      "pipeline.yaml:5:18: error: unknown param 'params.rl': params has no key 'rl'; did you mean 'params.lr'?",
      "  5 |     cmd: [echo, \"${params.rl}\"]",
      "    |                  ~~~~~~~~~~~~",
      "",
      "pipeline.yaml:6:16: error: needs: 'zz' is not a stage in this pipeline",
      "  6 |     needs: [b, zz]",
      "    |                ~~",
      "",
      "pipeline.yaml:7:5: error: unknown key 'dep' in stages.a; did you mean 'deps'?",
      "  7 |     dep: [x]",
      "    |     ~~~",
      "",
      "4 errors",
    ),
  );
});

test("yaml syntax error: an unterminated quoted string", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  a:",
    "    cmd: \"echo hi",
    "  b:",
    "    cmd: echo",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:10: error: invalid YAML: string opened with \" is never closed",
      "  4 |     cmd: \"echo hi",
      "    |          ~",
      "pipeline.yaml:6:13: note: YAML gave up here: Missing closing \"quote",
      "  6 |     cmd: echo",
      "    |             ~",
      "",
      "1 error",
    ),
  );
});

test("missing input slot with a similarly named stage suggests the mapping", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  imagse: {uses: ingest, with: {source: d}}",
    "  small:",
    "    uses: resize",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:5:11: error: built-in 'resize' needs input 'images', but there is no stage named 'images'; map it with inputs: {images: imagse}?",
      "  5 |     uses: resize",
      "    |           ~~~~~~",
      "",
      "1 error",
    ),
  );
});

test("with: a failed reference does not hide the other problems in the block", async () => {
  const yaml = lines(
    "name: x",
    "params: {size: 32}",
    "stages:",
    "  images: {uses: ingest, with: {source: d}}",
    "  small:",
    "    uses: resize",
    "    with:",
    "      size: [\"${params.sise}\", \"${params.size}\"]",
    "      interpolaton: nearest",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:8:15: error: unknown param 'params.sise': params has no key 'sise'; did you mean 'params.size'?",
      "  8 |       size: [\"${params.sise}\", \"${params.size}\"]",
      "    |               ~~~~~~~~~~~~~~",
      "",
      "pipeline.yaml:9:7: error: unknown key 'interpolaton' in stages.small.with; did you mean 'interpolation'?",
      "  9 |       interpolaton: nearest",
      "    |       ~~~~~~~~~~~~",
      "",
      "2 errors",
    ),
  );
});

test("a misspelt uses: suggests uses and does not also demand cmd:", async () => {
  const yaml = lines(
    "name: x",
    "stages:",
    "  images:",
    "    use: ingest",
    "    with: {source: d}",
  );
  assert.equal(
    await rig.diagnose(yaml),
    lines(
      "pipeline.yaml:4:5: error: unknown key 'use' in stages.images; did you mean 'uses'?",
      "  4 |     use: ingest",
      "    |     ~~~",
      "",
      "pipeline.yaml:5:5: error: unknown key 'with' in stages.images: 'with:' belongs to built-in stages, which need 'uses:'",
      "  5 |     with: {source: d}",
      "    |     ~~~~",
      "",
      "2 errors",
    ),
  );
});
