import type { FileChange } from '../repository.ts';

/**
 * What one create-tree call on a base tree must say for an ordered list of FileChanges, in
 * the terms GitHub documents: inline content for a write, `sha: null` for a delete (a file or
 * a whole directory). A directory deleted and then written below in the same list is a
 * replace; what one call that deletes D and writes D/x yields is not documented, so such a
 * directory is reported in `replaced` and the driver turns it into per-file deletes of what
 * the base has there and the writes do not cover.
 */
export interface TreeChanges {
  writes: Map<string, string>;
  /** Paths to delete; none is below another, below a replaced directory, or written. */
  deletes: Set<string>;
  /** Those of `deletes` the changes said are directories (their files must be listed). */
  directories: Set<string>;
  /** Directories whose old content must go, except the paths in `writes`. */
  replaced: Set<string>;
}

const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

/** Applies `changes` in order (a delete removes what earlier changes wrote below it) and keeps the net effect. */
export function planTreeChanges(changes: FileChange[]): TreeChanges {
  const plan: TreeChanges = { writes: new Map(), deletes: new Set(), directories: new Set(), replaced: new Set() };
  for (const change of changes) {
    if ('delete' in change) {
      for (const path of plan.writes.keys()) if (within(path, change.path)) plan.writes.delete(path);
      for (const set of [plan.deletes, plan.directories, plan.replaced]) for (const path of set) if (within(path, change.path)) set.delete(path);
      // Below a directory already deleted or replaced, there is nothing more to say.
      if (![...plan.replaced, ...plan.deletes].some((dir) => within(change.path, dir))) {
        plan.deletes.add(change.path);
        if (change.directory) plan.directories.add(change.path);
      }
    } else {
      plan.writes.set(change.path, change.content);
      for (const path of plan.deletes) {
        if (path === change.path) {
          plan.deletes.delete(path);
          plan.directories.delete(path);
        } else if (within(change.path, path)) {
          plan.deletes.delete(path);
          plan.directories.delete(path);
          plan.replaced.add(path);
        }
      }
    }
  }
  return plan;
}
