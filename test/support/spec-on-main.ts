import { git } from '../../src/gitops/local/git.ts';
import { readObservedDirectory, type InstanceSpec } from '../../src/gitops/instance-spec.ts';

/** The spec that `ref` of the repository at `gitDir` holds in an instance directory (undefined: none). */
export async function specOnMain(gitDir: string, ref: string, dir: string): Promise<InstanceSpec | undefined> {
  const paths = (await git(['ls-tree', '-r', '--name-only', ref, '--', `${dir}/`], { gitDir })).split('\n').filter(Boolean);
  const files = new Map<string, string>();
  for (const path of paths) files.set(path, await git(['cat-file', 'blob', `${ref}:${path}`], { gitDir }));
  return readObservedDirectory(files).spec;
}
