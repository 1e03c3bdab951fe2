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

export interface LocalGitops {
  dir: string;
  repository: LocalRepository;
  catalog: TemplateCatalog;
  git(...args: string[]): Promise<string>;
  worker(overrides?: Partial<ChangeWorkerOptions>): ReturnType<typeof createChangeWorker>;
  /** Reads main back into the database, as the service does after every move of main. */
  converge(): Promise<ConvergenceResult | undefined>;
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
