/**
 * Paths and commands under hostile input.
 *
 * Paths: every way an output (`outs`, `metrics`, a built-in's `out`, `cwd`)
 * can leave the workspace (`../`, absolute, `foo/../../x`, Windows drive and
 * UNC spellings, backslashes, NUL bytes, interpolated or overridden values)
 * is refused with a diagnostic located at the value; a symbolic link inside
 * the workspace that leads an output outside is refused when the pipeline is
 * loaded (also from the graph cache), and nothing is written through it.
 * Dependencies outside the workspace are allowed on purpose (they are only
 * read: pipelines/fashion-mnist.yaml reads its dataset from outside), and
 * this file pins that too.
 *
 * Commands: a value holding shell metacharacters reaches the command as one
 * argv element, through params, `-S`, foreach items and embedded
 * interpolation, checked with a real child process that prints its argv.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { configRig } from '../config/rig.js';
import { tempDir } from '../helpers/temp-dir.js';
import { e2eRig, ndjson, pipelineYaml, statuses } from '../helpers/rig.js';

const rig = configRig();
after(() => rig.dispose());

/** Loads `yaml` (with overrides) and returns the single diagnostic's message and the source text it points at. */
async function refusal(yaml: string, overrides: { path: string; value: string }[] = []): Promise<{ message: string; at: string }> {
  const r = await rig.load(yaml, { overrides });
  assert.ok(!r.ok, `accepted:\n${yaml}`);
  assert.equal(r.error.length, 1, r.error.map((d) => d.message).join('\n'));
  const d = r.error[0];
  assert.ok(d.location, `unlocated: ${d.message}`);
  assert.equal(d.location.file, path.join(rig.dir, 'pipeline.yaml'));
  return { message: d.message, at: yaml.slice(d.location.offset, d.location.offset + d.location.length) };
}

const escaping: readonly [string, string][] = [
  ['parent', '../x'],
  ['parent via a subdirectory', 'foo/../../x'],
  ['absolute', '/etc/passwd'],
  ['absolute, dotted', '/tmp/../etc/x'],
  ['backslash parent', '..\\..\\x'],
  ['Windows drive', 'C:\\Windows\\x'],
  ['Windows drive, forward slashes', 'c:/x'],
  ['UNC share', '\\\\server\\share\\x'],
  ['the workspace itself', '.'],
  ['the workspace via ..', 'out/..'],
];

test('outs, metrics and a built-in out that leave the workspace are refused, located at the value', async () => {
  for (const [what, p] of escaping) {
    const q = JSON.stringify(p);
    for (const [field, yaml] of [
      ['outs', `name: p\nstages:\n  a:\n    cmd: echo\n    outs: [${q}]\n`],
      ['outs path', `name: p\nstages:\n  a:\n    cmd: echo\n    outs: [{path: ${q}, cache: false}]\n`],
      ['metrics', `name: p\nstages:\n  a:\n    cmd: echo\n    metrics: [${q}]\n`],
      ['built-in out', `name: p\nstages:\n  a:\n    uses: ingest\n    with: {source: d}\n    out: ${q}\n`],
    ] as const) {
      const r = await refusal(yaml);
      assert.match(r.message, /must be a path inside the workspace, got '/, `${field}, ${what}`);
      assert.equal(r.at, q, `${field}, ${what}: points at the value`);
    }
  }
});

test('a NUL byte in an output, a dependency or cwd is refused (file system calls would throw on it)', async () => {
  for (const [field, yaml] of [
    ['outs', 'name: p\nstages:\n  a:\n    cmd: echo\n    outs: ["out/a\\0b"]\n'],
    ['deps', 'name: p\nstages:\n  a:\n    cmd: echo\n    deps: ["in\\0put"]\n'],
    ['cwd', 'name: p\nstages:\n  a:\n    cmd: echo\n    cwd: "sub\\0dir"\n'],
  ] as const) {
    const r = await refusal(yaml);
    assert.match(r.message, /contains a NUL character/, field);
    assert.match(r.at, /\\0/, `${field}: points at the value`);
  }
});

test('cwd outside the workspace is refused', async () => {
  for (const p of ['..', '../other', '/tmp', 'a/../../b', 'C:\\x']) {
    const r = await refusal(`name: p\nstages:\n  a:\n    cmd: echo\n    cwd: ${JSON.stringify(p)}\n`);
    assert.match(r.message, /^stages\.a\.cwd must be a directory inside the workspace/);
    assert.equal(r.at, JSON.stringify(p));
  }
});

test('an escaping output that comes from a param, an -S override or a foreach item is refused at the reference', async () => {
  let r = await refusal('name: p\nparams: {dir: ../up}\nstages:\n  a:\n    cmd: echo\n    outs: ["${params.dir}/x"]\n');
  assert.match(r.message, /got '\.\.\/up\/x'/);
  assert.equal(r.at, '"${params.dir}/x"');
  r = await refusal('name: p\nparams: {dir: out}\nstages:\n  a:\n    cmd: echo\n    outs: ["${params.dir}/x"]\n', [{ path: 'dir', value: '/etc' }]);
  assert.match(r.message, /got '\/etc\/x'/);
  r = await refusal('name: p\nstages:\n  a:\n    foreach: [ok, ../../bad]\n    cmd: echo\n    outs: ["out/${item}"]\n');
  assert.match(r.message, /got 'out\/\.\.\/\.\.\/bad'/);
});

test('dependencies outside the workspace are refused unless their folder is listed under external:', async () => {
  for (const dep of ['../data.csv', '/srv/datasets/x', 'foo/../../y']) {
    const r = await refusal(`name: p\nstages:\n  a:\n    cmd: echo\n    deps: [${JSON.stringify(dep)}]\n`);
    assert.match(r.message, /^stages\.a\.deps\[0\] '.*' is outside the workspace; list its folder under `external:` to read it$/);
    assert.equal(r.at, JSON.stringify(dep));
  }
  // Listed folders (relative to the file, absolute, or from a param, so -S moves a dataset and its permission together).
  const g = await rig.graph('name: p\nparams:\n  src: /srv/datasets\nexternal: [.., "${params.src}"]\nstages:\n  a:\n    cmd: echo\n    deps: [../data.csv, /srv/datasets/x, "foo/../../y"]\n');
  const a = g.stages.get('a' as never)!;
  assert.deepEqual(
    a.deps.map((d) => (d.kind === 'path' ? d.path : d.stage)),
    ['../data.csv', '/srv/datasets/x', '../y'],
  );
  const moved = await refusal('name: p\nparams:\n  src: /srv/datasets\nexternal: ["${params.src}"]\nstages:\n  a:\n    cmd: echo\n    deps: ["${params.src}/x", /srv/other/y]\n');
  assert.match(moved.message, /deps\[1\] '\/srv\/other\/y' is outside the workspace; .*\(listed: '\/srv\/datasets'\)/);
  const inside = await refusal('name: p\nexternal: [data]\nstages:\n  a:\n    cmd: echo\n');
  assert.match(inside.message, /^external\[0\] must name a folder outside the workspace, got 'data' \(it is inside the workspace/);
  assert.equal(inside.at, 'data');
});

test('run time: a dependency through a symlinked folder that leads outside is refused, unless that folder is listed under external:', async () => {
  await using e2e = await e2eRig();
  await using outsideDir = await tempDir('outside-');
  const outside = outsideDir.dir;
  await fs.writeFile(path.join(outside, 'x.csv'), 'a,b\n');
  await fs.symlink(outside, path.join(e2e.dir, 'data'));
  const stages = { use: { cmd: e2e.step('use', '--in', 'data/x.csv', '--out', 'copy.csv'), deps: ['data/x.csv'], outs: ['copy.csv'] } };
  await e2e.write('pipeline.yaml', pipelineYaml({ name: 'link', stages }));
  const r = await e2e.cli(['run']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /pipeline\.yaml:\d+:\d+: error: dependency 'data\/x\.csv' of stage 'use' reads outside the workspace: 'data' is a symbolic link to .*; list that folder under `external:` to read it/);
  assert.equal(await e2e.count('use'), 0);
  await e2e.write('pipeline.yaml', pipelineYaml({ name: 'link', external: [outside], stages }));
  const ok = await e2e.cli(['run']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(await e2e.read('copy.csv'), 'a,b\n');
});

test('run time: an output through a symlinked directory that leads outside is refused, and nothing is written there', async () => {
  await using e2e = await e2eRig();
  await using outsideDir = await tempDir('outside-');
  const outside = outsideDir.dir;
  await fs.writeFile(path.join(outside, 'keep.txt'), 'precious');
  await e2e.write('pipeline.yaml', pipelineYaml({ name: 'link', stages: { make: { cmd: e2e.step('make', '--out', 'out/x.txt', '--text', 'hi'), outs: ['out/x.txt'] } } }));
  await fs.symlink(outside, path.join(e2e.dir, 'out'));
  for (const cmd of [['run'], ['status'], ['dag']]) {
    const r = await e2e.cli(cmd);
    assert.equal(r.code, 3, `${cmd[0]}: ${r.stderr}`);
    assert.match(r.stderr, /pipeline\.yaml:\d+:\d+: error: output 'out\/x\.txt' of stage 'make' would be written outside the workspace: 'out' \(in 'out\/x\.txt'\) is a symbolic link to /);
    assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, 'no stack trace');
  }
  assert.equal(await e2e.count('make'), 0, 'the stage never ran');
  assert.deepEqual(await fs.readdir(outside), ['keep.txt'], 'nothing written outside');
  assert.equal(await fs.readFile(path.join(outside, 'keep.txt'), 'utf8'), 'precious');
});

test('run time: an output file that is itself a symlink to outside is refused, also when the graph comes from the cache', async () => {
  await using e2e = await e2eRig();
  await using outsideDir = await tempDir('outside-');
  const outside = outsideDir.dir;
  await fs.writeFile(path.join(outside, 'victim.txt'), 'precious');
  await e2e.write('pipeline.yaml', pipelineYaml({ name: 'link', stages: { make: { cmd: e2e.step('make', '--out', 'result.txt', '--text', 'hi'), outs: ['result.txt'] } } }));
  // First run: no link yet, so it runs (and the analysed graph is cached).
  let r = await e2e.cli(['run']);
  assert.equal(r.code, 0, r.stderr);
  await e2e.rm('result.txt');
  await fs.symlink(path.join(outside, 'victim.txt'), path.join(e2e.dir, 'result.txt'));
  r = await e2e.cli(['run']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /output 'result\.txt' of stage 'make' would be written outside the workspace: 'result\.txt' is a symbolic link to /);
  assert.equal(await fs.readFile(path.join(outside, 'victim.txt'), 'utf8'), 'precious', 'the restore did not write through the link');
  // A dangling link to outside is refused as well.
  await fs.rm(path.join(e2e.dir, 'result.txt'));
  await fs.symlink('/nonexistent-dir/x.txt', path.join(e2e.dir, 'result.txt'));
  r = await e2e.cli(['status']);
  assert.equal(r.code, 3, r.stderr);
});

test('run time: links that stay inside the workspace are fine; a dependency that links into an external: folder is read, never written', async () => {
  await using e2e = await e2eRig();
  await using outsideDir = await tempDir('outside-');
  const outside = outsideDir.dir;
  await fs.writeFile(path.join(outside, 'data.txt'), 'external data');
  await fs.mkdir(path.join(e2e.dir, 'real-out'));
  await fs.symlink('real-out', path.join(e2e.dir, 'out'));
  await fs.symlink(path.join(outside, 'data.txt'), path.join(e2e.dir, 'data.txt'));
  await e2e.write('pipeline.yaml', pipelineYaml({ name: 'ok', external: [outside], stages: { copy: { cmd: e2e.step('copy', '--in', 'data.txt', '--out', 'out/copy.txt'), deps: ['data.txt'], outs: ['out/copy.txt'] } } }));
  const r = await e2e.cli(['run', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r.stdout), { copy: 'ran' });
  assert.equal(await e2e.read('real-out/copy.txt'), 'external data');
  assert.deepEqual(await fs.readdir(outside), ['data.txt']);
  assert.equal(await fs.readFile(path.join(outside, 'data.txt'), 'utf8'), 'external data');
});

/** Values full of shell syntax; each must arrive as exactly one argv element. */
const metachars: readonly string[] = [
  'a; touch pwned',
  'a | touch pwned',
  'a && touch pwned',
  'a || touch pwned',
  '`touch pwned`',
  '$(touch pwned)',
  'line1\ntouch pwned',
  '"; touch pwned; echo "',
  "'; touch pwned; echo '",
  '*',
  '?',
  '[a-z]*',
  '> pwned',
  '2>&1 >pwned',
  '$HOME ~ ${HOME}',
  '& touch pwned &',
  '\\ back\\slash',
  '# not a comment',
  '{a,b}',
  '  spaces  around  ',
  '',
];

test('shell metacharacters stay one argv element: through params, -S, foreach items and embedded interpolation (real child process)', async () => {
  await using e2e = await e2eRig();
  const step = (name: string): string[] => e2e.step(name, '--echo-args');
  const stages: Record<string, unknown> = {
    // cmd as a list: the whole param is one element.
    list: { cmd: [...step('list'), ...metachars.map((_, i) => `\${params.m${i}}`)] },
    // cmd as a string: split into tokens BEFORE interpolation.
    string: { cmd: `${step('string').map((a) => `'${a}'`).join(' ')} ${metachars.map((_, i) => `\${params.m${i}}`).join(' ')}` },
    // embedded in a longer token.
    embedded: { cmd: [...step('embedded'), ...metachars.map((_, i) => `pre-\${params.m${i}}-post`)] },
    // a foreach item (one stage per value).
    item: { foreach: metachars.map((_, i) => i), cmd: [...step('item'), '${params.m${item}}'] },
    // the overridden param.
    override: { cmd: [...step('override'), '${params.over}'] },
  };
  // `${params.m${item}}` is not a nested reference (unsupported): use the item value itself.
  stages['item'] = { foreach: [...metachars], cmd: [...step('item'), '${item}', 'x${item}y'] };
  const params: Record<string, string> = { over: 'safe' };
  metachars.forEach((m, i) => (params[`m${i}`] = m));
  await e2e.write('pipeline.yaml', pipelineYaml({ name: 'inject', params, stages }));
  const evil = 'x; touch pwned && echo `id` $(touch pwned2) | cat > pwned3\n*';
  const r = await e2e.cli(['run', '--json', '-S', `over=${JSON.stringify(evil)}`]);
  assert.equal(r.code, 0, r.stderr);
  const argsOf = new Map<string, string[]>();
  for (const e of ndjson(r.stdout)) {
    const line = typeof e['line'] === 'string' ? e['line'] : undefined;
    if (line?.startsWith('ARGS ') && typeof e.stage === 'string') argsOf.set(e.stage, JSON.parse(line.slice(5)) as string[]);
  }
  assert.deepEqual(argsOf.get('list'), ['--echo-args', ...metachars]);
  assert.deepEqual(argsOf.get('string'), ['--echo-args', ...metachars]);
  assert.deepEqual(argsOf.get('embedded'), ['--echo-args', ...metachars.map((m) => `pre-${m}-post`)]);
  assert.deepEqual(argsOf.get('override'), ['--echo-args', evil]);
  const items = [...argsOf].filter(([s]) => s.startsWith('item@'));
  assert.equal(items.length, metachars.length, `one stage per item: ${[...argsOf.keys()].join(', ')}`);
  for (const [, args] of items) {
    assert.equal(args.length, 3);
    assert.ok(metachars.includes(args[1]!), JSON.stringify(args));
    assert.equal(args[2], `x${args[1]}y`);
  }
  for (const f of ['pwned', 'pwned2', 'pwned3']) assert.equal(await e2e.exists(f), false, `${f} was created: something ran a shell`);
});

test('unquoted shell operators written in a cmd string are refused (they would be passed as arguments), located at the operator', async () => {
  for (const op of [';', '|', '&&', '||', '>', '>>', '<', '&', '2>&1']) {
    const yaml = `name: p\nstages:\n  a:\n    cmd: "echo hi ${op} rm -rf x"\n`;
    const r = await refusal(yaml);
    assert.match(r.message, /commands run without a shell/, op);
    assert.equal(r.at, op);
  }
  // Quoted, the same characters are plain arguments.
  const g = await rig.graph(`name: p\nstages:\n  a:\n    cmd: "echo ';' '|' '&&' '>'"\n`);
  const a = g.stages.get('a' as never)!;
  assert.ok(a.kind === 'cmd');
  assert.deepEqual(a.argv, ['echo', ';', '|', '&&', '>']);
});
