#!/usr/bin/env node
// Regenerates docs/stages.md from schemas/stages/*.json (run after `npm run build`).
import fs from 'node:fs';
import { stageReferenceFromRepo } from '../dist/src/docs/build.js';
fs.writeFileSync(new URL('../docs/stages.md', import.meta.url), await stageReferenceFromRepo());
console.log('wrote docs/stages.md');
