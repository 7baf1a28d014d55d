import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildCharts, renderReport, type ReportExperiment } from '../../src/report/html.js';

const exps: ReportExperiment[] = [
  {
    id: 'a1b2c3d',
    name: 'baseline',
    createdAt: '2026-11-28T10:01:00.000Z',
    params: { train: { lr: 0.001 }, resize: { size: [32, 32] } },
    metrics: { 'evaluate.accuracy': 0.81 },
    history: [
      { epoch: 1, loss: 1.2, acc: 0.6, val_loss: 1.1, val_acc: 0.62 },
      { epoch: 2, loss: 0.8, acc: 0.72, val_loss: 0.9, val_acc: 0.7 },
    ],
    confusion: { classes: ['cat', 'dog<&>'], matrix: [[5, 1], [2, 4]] },
  },
  {
    id: 'b2c3d4e',
    createdAt: '2026-11-28T10:02:00.000Z',
    params: { train: { lr: 0.01 }, resize: { size: [32, 32] } },
    metrics: { 'evaluate.accuracy': 0.86 },
    history: [
      { epoch: 1, loss: 1.0, acc: 0.65, val_loss: 1.0, val_acc: 0.66 },
      { epoch: 2, loss: 0.5, acc: 0.8, val_loss: 0.7, val_acc: 0.78 },
    ],
  },
];

test('report page holds curves for every experiment, confusion matrices, escaped labels and only differing params', () => {
  const charts = buildCharts(exps);
  assert.deepEqual(Object.keys(charts).sort(), ['accuracy.svg', 'confusion-a1b2c3d.svg', 'loss.svg']);
  const html = renderReport(exps, charts, { title: 'demo report', generatedAt: 'now' });
  assert.match(html, /a1b2c3d baseline train/);
  assert.match(html, /b2c3d4e val/);
  assert.match(html, /dog&lt;&amp;&gt;/);
  assert.doesNotMatch(html, /dog<&>/);
  assert.match(html, /<td>train\.lr<\/td><td>0\.001<\/td><td>0\.01<\/td>/);
  assert.doesNotMatch(html, /<td>resize\.size<\/td>/);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/);
});

const chromium = '/usr/bin/chromium';
const haveChromium = await fs.access(chromium).then(() => true, () => false);

test('report page renders in headless Chromium with no console errors', { skip: haveChromium ? false : 'Debian chromium not installed (.ci/run installs it)' }, async () => {
  const { chromium: pw } = await import('playwright-core');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'report-'));
  try {
    const file = path.join(dir, 'report.html');
    await fs.writeFile(file, renderReport(exps, buildCharts(exps), { title: 'demo report', generatedAt: 'now' }));
    const browser = await pw.launch({
      executablePath: chromium,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) problems.push(`network request: ${r.url()}`);
      });
      await page.goto(`file://${file}`);
      assert.equal(await page.title(), 'demo report');
      assert.equal(await page.locator('svg').count(), 3);
      const box = await page.locator('svg').first().boundingBox();
      assert.ok(box && box.width > 300 && box.height > 200, `chart is laid out: ${JSON.stringify(box)}`);
      await page.screenshot({ path: path.join(dir, 'shot.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('metrics table: one row per metric, evaluate first, metrics equal in every experiment folded under <details>', () => {
  const two: ReportExperiment[] = exps.map((e, i) => ({ ...e, metrics: { ...e.metrics, 'ingest.images': 400, 'train.loss': 0.5 - i * 0.1 } }));
  const html = renderReport(two, buildCharts(two), { title: 't', generatedAt: 'now' });
  const metrics = html.slice(html.indexOf('<h2>Metrics'), html.indexOf('<h2>Params'));
  assert.match(metrics, /<th>metric<\/th><th>a1b2c3d baseline<\/th><th>b2c3d4e<\/th>/);
  assert.ok(metrics.indexOf('evaluate.accuracy') < metrics.indexOf('train.loss'), 'evaluate before train');
  assert.match(metrics, /<details><summary>1 metric\(s\) equal in every experiment<\/summary>[\s\S]*<td>ingest\.images<\/td><td class="num">400<\/td><td class="num">400<\/td>[\s\S]*<\/details>/);
  assert.doesNotMatch(metrics.slice(0, metrics.indexOf('<details>')), /ingest\.images/, 'the equal metric is not in the main table');
  assert.ok(html.indexOf('<h2>Params') < html.indexOf('<h2>Learning curves'), 'params right after metrics');
});
