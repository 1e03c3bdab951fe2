/**
 * A change worker as a process of its own, for crash tests: `node test/support/change-worker-process.ts`
 * with TEST_DATABASE_URL and GIT_DIR set. It drains the outbox until killed.
 */
import { createSequelize } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { loadTemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';

const url = process.env.TEST_DATABASE_URL!;
const gitDir = process.env.GIT_DIR_UNDER_TEST!;
const sequelize = createSequelize({ url, poolMax: 2, logger: createLogger('silent') });
const repository = new LocalRepository({ gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize, repository: gitDir }) });
const worker = createChangeWorker({
  sequelize,
  repository,
  catalog: await loadTemplateCatalog(),
  logger: createLogger('silent'),
  windowMs: 0,
  maxBatch: Number(process.env.MAX_BATCH ?? '1'),
  leaseMs: Number(process.env.LEASE_MS ?? '1000'),
  pollMs: 20,
  maxAttempts: 20,
});
worker.start();
process.stdout.write('worker started\n');
