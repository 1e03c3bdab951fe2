import fs from 'node:fs/promises';
import path from 'node:path';
import type { RepositoryFile } from './repository.ts';

const LAYOUT_DIR = path.resolve(import.meta.dirname, '../../templates/repository');

/** The files of a new `gsv-gitops` repository, read from templates/repository/. */
export async function readInitialLayout(): Promise<RepositoryFile[]> {
  const files: RepositoryFile[] = [];
  for (const entry of await fs.readdir(LAYOUT_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const absolute = path.join(entry.parentPath, entry.name);
    files.push({
      path: path.relative(LAYOUT_DIR, absolute).split(path.sep).join('/'),
      content: await fs.readFile(absolute, 'utf8'),
    });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}
