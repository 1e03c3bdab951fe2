import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { git } from '../../src/gitops/local/git.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';

const IDENTITY = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** A throwaway local GitOps repository and a helper that appends empty commits to its main branch. */
export async function createScratchRepository(): Promise<{ repository: LocalRepository; commit(message: string): Promise<string>; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-webhooks-'));
  const repository = new LocalRepository({ gitDir: path.join(dir, 'repo.git'), baseBranch: 'main' });
  await repository.ensureInitialized([{ path: 'README.md', content: 'scratch\n' }]);
  const gitDir = repository.gitDir;
  return {
    repository,
    commit: async (message) => {
      const parent = (await git(['rev-parse', 'refs/heads/main'], { gitDir })).trim();
      const tree = (await git(['rev-parse', 'refs/heads/main^{tree}'], { gitDir })).trim();
      const sha = (await git(['commit-tree', tree, '-p', parent, '-m', message], { gitDir, env: IDENTITY })).trim();
      await git(['update-ref', 'refs/heads/main', sha, parent], { gitDir });
      return sha;
    },
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
