/**
 * Reads the artefacts a report needs from the cache, by experiment: the train
 * stage's `history.jsonl` and the evaluate stage's `confusion.json`, found by
 * file name in each stage's recorded output manifest. Read-only; a missing
 * record or file just means the report leaves that chart out.
 */
import fs from 'node:fs/promises';
import type { CacheStore } from '../cache/store.js';
import type { ExperimentRecord } from './record.js';
import type { EpochRow, ReportExperiment } from '../report/html.js';

async function readOutput(store: CacheStore, rec: ExperimentRecord, fileName: string): Promise<string | undefined> {
  for (const stage of Object.values(rec.stages)) {
    const run = await store.readRecord(stage.key, { checkObjects: false });
    const f = run?.outputs.files.find((x) => x.path === fileName || x.path.endsWith(`/${fileName}`));
    if (f) {
      try {
        return await fs.readFile(store.objectPath(f.sha256), 'utf8');
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Parses a history.jsonl (Keras-style keys `acc`/`accuracy`, `val_acc`/`val_accuracy`). */
export function parseHistory(text: string): EpochRow[] {
  const rows: EpochRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const epoch = num(o['epoch']) ?? i + 1;
    const row: { -readonly [K in keyof EpochRow]: EpochRow[K] } = { epoch };
    const loss = num(o['loss']);
    const acc = num(o['acc']) ?? num(o['accuracy']);
    const vl = num(o['val_loss']);
    const va = num(o['val_acc']) ?? num(o['val_accuracy']);
    if (loss !== undefined) row.loss = loss;
    if (acc !== undefined) row.acc = acc;
    if (vl !== undefined) row.val_loss = vl;
    if (va !== undefined) row.val_acc = va;
    rows.push(row);
  });
  return rows;
}

/** Builds the report data of one experiment. */
export async function reportDataFor(store: CacheStore, rec: ExperimentRecord): Promise<ReportExperiment> {
  const history = await readOutput(store, rec, 'history.jsonl');
  const confusionText = await readOutput(store, rec, 'confusion.json');
  let confusion: ReportExperiment['confusion'];
  if (confusionText) {
    try {
      const c = JSON.parse(confusionText) as { classes?: unknown; matrix?: unknown };
      if (Array.isArray(c.classes) && Array.isArray(c.matrix)) confusion = { classes: c.classes.map(String), matrix: c.matrix as number[][] };
    } catch {
      /* not a confusion matrix */
    }
  }
  return {
    id: rec.id,
    ...(rec.name !== undefined && { name: rec.name }),
    createdAt: rec.createdAt,
    params: rec.params,
    metrics: rec.metrics,
    ...(history !== undefined && { history: parseHistory(history) }),
    ...(confusion !== undefined && { confusion }),
  };
}
