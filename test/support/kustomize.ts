import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Writes files (path → content) under a temporary root and runs `kubectl kustomize` on every
 * directory with a kustomization; returns how many it built.
 */
export async function kustomizeAll(files: { path: string; content: string }[]): Promise<number> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-render-'));
  try {
    const dirs: string[] = [];
    for (const file of files) {
      const target = path.join(root, file.path);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, file.content);
      if (path.basename(file.path) === 'kustomization.yaml') dirs.push(path.dirname(target));
    }
    for (const dir of dirs) {
      const { stdout } = await run('kubectl', ['kustomize', dir]);
      assert.ok(stdout.includes('kind:'), `kustomize of ${dir} produced no objects`);
    }
    return dirs.length;
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}
