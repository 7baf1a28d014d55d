/**
 * A temp directory for one test: `await using t = await tempDir('x-')`. The
 * path is the realpath (so paths a CLI prints match it); the directory and
 * everything in it is removed on dispose. Does not create any files in it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A temp directory removed on dispose (see module doc). */
export interface TempDir extends AsyncDisposable {
  /** Absolute realpath of the directory. */
  readonly dir: string;
}

/** Makes a temp directory under the OS temp dir whose name starts with `prefix`. */
export async function tempDir(prefix = 'test-'): Promise<TempDir> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
  return {
    dir,
    async [Symbol.asyncDispose]() {
      // Cache objects are read-only; root ignores that, but stay robust for non-root users too.
      await fs.chmod(dir, 0o755).catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
