import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { createChangeWorker, type ChangeWorkerOptions } from '../../src/jobs/change-worker.ts';
import { git } from '../../src/gitops/local/git.ts';
import { createConverger } from '../../src/domain/convergence/converger.ts';
import type { ConvergenceResult } from '../../src/domain/convergence/base-branch-convergence.ts';
import type { FileChange } from '../../src/gitops/repository.ts';

export interface LocalGitops {
  dir: string;
  repository: LocalRepository;
  catalog: TemplateCatalog;
  git(...args: string[]): Promise<string>;
  worker(overrides?: Partial<ChangeWorkerOptions>): ReturnType<typeof createChangeWorker>;
  /** Reads main back into the database, as the service does after every move of main. */
  converge(): Promise<ConvergenceResult | undefined>;
  /** An engineer commits straight to main, as a person with their own identity (default Erin Engineer). */
  commitAsPerson(changes: FileChange[], message: string, person?: { name: string; email: string }): Promise<string>;
  cleanup(): Promise<void>;
}

/** A fresh bare repository with the initial layout, and workers that publish to it. */
export async function createLocalGitops(sequelize: Sequelize): Promise<LocalGitops> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-gitops-'));
  const gitDir = path.join(dir, 'gsv-gitops.git');
  const repository = new LocalRepository({ gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize, repository: gitDir }) });
  await repository.ensureInitialized(await readInitialLayout());
  const catalog = await loadTemplateCatalog();
  const converger = createConverger({ sequelize, repository, mergePolicy: 'pull-request' });
  const converge = () => converger.converge();
  return {
    converge,
    dir,
    repository,
    catalog,
    git: async (...args) => (await git(args, { gitDir })).trim(),
    commitAsPerson: async (changes, message, person = { name: 'Erin Engineer', email: 'erin@example.test' }) => {
      const base = (await repository.getBranch('main'))!;
      const scratch = await repository.createCommit({ parent: base, changes, message: 'scratch' });
      const tree = (await git(['rev-parse', `${scratch}^{tree}`], { gitDir })).trim();
      const env = { GIT_AUTHOR_NAME: person.name, GIT_AUTHOR_EMAIL: person.email, GIT_COMMITTER_NAME: person.name, GIT_COMMITTER_EMAIL: person.email };
      const commit = (await git(['commit-tree', tree, '-p', base, '-F', '-'], { gitDir, env, input: message })).trim();
      await repository.updateBranch('main', commit, { expected: base });
      return commit;
    },
    worker: (overrides = {}) =>
      createChangeWorker({
        sequelize,
        repository,
        catalog,
        logger: createLogger('silent'),
        windowMs: 0,
        maxBatch: 100,
        leaseMs: 60_000,
        pollMs: 20,
        maxAttempts: 5,
        afterLanding: converge,
        ...overrides,
      }),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
