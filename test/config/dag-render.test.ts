/** `pipeline dag` text and mermaid output, exact. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { renderDagMermaid, renderDagText } from '../../src/dag-render.js';
import { configRig } from './rig.js';

const rig = configRig();
after(() => rig.dispose());

test('text and mermaid renderings', async () => {
  const g = await rig.graph(
    [
      'name: demo',
      'stages:',
      '  images: {uses: ingest, with: {source: d}}',
      '  small: {uses: resize}',
      '  per:',
      '    foreach: [a, "b\\"q"]',
      '    cmd: [echo, "${item}"]',
      '    needs: [small]',
      '  all: {cmd: "python3 all.py", needs: [per, images]}',
    ].join('\n'),
  );
  assert.equal(
    renderDagText(g),
    [
      'demo: 5 stages',
      'images   (uses ingest)',
      'small    (uses resize)  <- images',
      'per@a    (cmd echo)     <- small',
      'per@b"q  (cmd echo)     <- small',
      'all      (cmd python3)  <- images, per@a, per@b"q',
      '',
    ].join('\n'),
  );
  assert.equal(
    renderDagMermaid(g),
    [
      'flowchart TD',
      '  n0["images<br/><small>uses ingest</small>"]',
      '  n1["small<br/><small>uses resize</small>"]',
      '  n2["per@a<br/><small>cmd echo</small>"]',
      '  n3["per@b#quot;q<br/><small>cmd echo</small>"]',
      '  n4["all<br/><small>cmd python3</small>"]',
      '  n0 --> n1',
      '  n1 --> n2',
      '  n1 --> n3',
      '  n0 --> n4',
      '  n2 --> n4',
      '  n3 --> n4',
      '',
    ].join('\n'),
  );
});
