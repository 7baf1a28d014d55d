/**
 * Locations inside the installed package (schemas, stage host script). Does not
 * know anything about workspaces or caches.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'schemas'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package root not found');
    dir = parent;
  }
}

/** Absolute path of the package root (the directory holding package.json and schemas/). */
export const packageRoot: string = findPackageRoot();

/** Absolute path of the JSON Schema directory. */
export const schemasDir: string = path.join(packageRoot, 'schemas');
