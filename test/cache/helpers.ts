/** Temp-dir helpers for cache tests (real files, removed on dispose). */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface TempDir extends AsyncDisposable {
  readonly dir: string;
}

export async function tempDir(prefix = 'cache-test-'): Promise<TempDir> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    dir,
    async [Symbol.asyncDispose]() {
      // Objects are read-only; root ignores that, but make it robust for non-root users too.
      await fsp.chmod(dir, 0o755).catch(() => undefined);
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

export function write(root: string, rel: string, content: string | Buffer): string {
  const f = path.join(root, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
  return f;
}

export function read(root: string, rel: string): string {
  return fs.readFileSync(path.join(root, rel), 'utf8');
}
