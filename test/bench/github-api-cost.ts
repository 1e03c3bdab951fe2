import { randomUUID } from 'node:crypto';
import { Octokit } from 'octokit';
import { composeCreatePullRequest } from 'octokit-plugin-create-pull-request';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { readInitialLayout } from '../../src/gitops/initial-layout.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { renderInstance } from '../../src/gitops/render/change-renderer.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';
import type { BatchCommitMode } from '../../src/domain/changes/change-kinds.ts';
import { createSequelize } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/logger.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { startGithubDouble } from '../support/github-double.ts';
import { createDatabaseOn } from '../support/scratch-service.ts';
import { startPluginCompatProxy } from './plugin-compat-proxy.ts';
import type { Benchmark, BenchContext, Measurement } from './measurement.ts';

const TITLE = 'GitHub API cost per instance';
const BURSTS = [1, 10, 100];
/** GitHub's secondary limit on content-creating requests. */
const CONTENT_REQUESTS_PER_HOUR = 500;
const MAX_BATCH = 1000; // GITOPS_BATCH_MAX's default
const ORGS_IN_BATCH = 10;

interface Cost {
  calls: number;
  writes: number;
  pullRequests: number;
}

/**
 * REST calls our github driver (through the change worker, as it runs in the service) makes
 * for bursts of 1, 10 and 100 instance requests against the GitHub double, next to
 * octokit-plugin-create-pull-request (what Backstage's publish:github:pull-request uses)
 * opening one pull request per instance with the same rendered files against the same double.
 */
export const githubApiCost: Benchmark = {
  id: 'github-api-cost',
  title: TITLE,
  async run(context: BenchContext): Promise<Measurement[]> {
    const catalog = await loadTemplateCatalog();
    const layout = Object.fromEntries((await readInitialLayout()).map((f) => [f.path, f.content]));
    const database = await createDatabaseOn(context.adminDatabaseUrl, 'bench_github');
    const logger = createLogger('silent');
    const sequelize = createSequelize({ url: database.url, poolMax: 5, logger });
    const rows: Measurement[] = [];
    try {
      await migrate(database.url, sequelize, logger);
      for (const burst of BURSTS) {
        const ours = await driverCost(sequelize, catalog, layout, burst);
        const theirs = await pluginCost(catalog, layout, burst);
        const perInstance = ours.calls / burst;
        const writesPerInstance = ours.writes / burst;
        rows.push({
          benchmark: TITLE,
          case: `burst of ${burst}: REST calls per pull request`,
          value: ours.calls / ours.pullRequests,
          unit: 'calls',
          baseline: { label: 'plugin', value: theirs.calls / theirs.pullRequests },
          target: '≤ 5',
          met: ours.calls / ours.pullRequests <= 5,
          note: `${ours.pullRequests} PR(s), ${ours.calls} calls`,
        });
        rows.push({
          benchmark: TITLE,
          case: `burst of ${burst}: REST calls per instance`,
          value: perInstance,
          unit: 'calls',
          baseline: { label: 'plugin', value: theirs.calls / burst },
          ...(burst === 100 ? { target: '≤ 0.2', met: perInstance <= 0.2 } : {}),
        });
        rows.push({
          benchmark: TITLE,
          case: `burst of ${burst}: instances/hour under 500 content-creating requests/hour`,
          value: CONTENT_REQUESTS_PER_HOUR / writesPerInstance,
          unit: 'instances/h',
          baseline: { label: 'plugin', value: CONTENT_REQUESTS_PER_HOUR / (theirs.writes / burst) },
          note: `${writesPerInstance.toFixed(2)} writes/instance vs plugin ${(theirs.writes / burst).toFixed(2)}`,
        });
      }
      // GITOPS_BATCH_COMMITS: what per-org commits (the default) cost against one shared commit,
      // for a batch of changes from 10 orgs (one each), and what that leaves of the hour's budget.
      const perOrg = await driverCost(sequelize, catalog, layout, ORGS_IN_BATCH, { orgs: ORGS_IN_BATCH, batchCommits: 'per-org-commits' });
      const shared = await driverCost(sequelize, catalog, layout, ORGS_IN_BATCH, { orgs: ORGS_IN_BATCH, batchCommits: 'shared' });
      rows.push({
        benchmark: TITLE,
        case: `batch of ${ORGS_IN_BATCH} orgs: content-creating requests, per-org commits (GITOPS_BATCH_COMMITS default)`,
        value: perOrg.writes,
        unit: 'writes',
        baseline: { label: 'shared commit', value: shared.writes },
        note: `${perOrg.pullRequests} PR, ${perOrg.calls} calls (shared: ${shared.calls}); 2 writes per org more: ${Math.floor(CONTENT_REQUESTS_PER_HOUR / perOrg.writes)} such batches/h vs ${Math.floor(CONTENT_REQUESTS_PER_HOUR / shared.writes)}`,
      });
      return rows;
    } finally {
      await sequelize.close();
      await database.drop();
    }
  },
};


/** Content-creating requests (GitHub's secondary limit); a GraphQL query creates nothing. */
const isWrite = (call: { method: string; path?: string; route?: string }) => call.method !== 'GET' && call.method !== 'HEAD' && call.path !== '/graphql';

async function driverCost(
  sequelize: ReturnType<typeof createSequelize>,
  catalog: TemplateCatalog,
  layout: Record<string, string>,
  burst: number,
  options: { orgs?: number; batchCommits?: BatchCommitMode } = {},
): Promise<Cost> {
  // Counts calls only: the limits are the sustained-load benchmark's subject (a 100-instance
  // burst of the plugin alone passes GitHub's 80 writes a minute).
  const double = await startGithubDouble({ initialFiles: layout, limits: false });
  try {
    const octokit = await createGithubClient({ auth: { token: 'bench-token' }, baseUrl: double.url, retries: 0 });
    const repository = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
    const orgs: Awaited<ReturnType<typeof insertOrganization>>[] = [];
    for (let i = 0; i < (options.orgs ?? 1); i++) orgs.push(await insertOrganization(sequelize));
    for (let i = 0; i < burst; i++) {
      const org = orgs[i % orgs.length]!;
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) });
    }
    const worker = createChangeWorker({
      sequelize,
      repository,
      catalog,
      logger: createLogger('silent'),
      windowMs: 0,
      maxBatch: MAX_BATCH,
      leaseMs: 60_000,
      pollMs: 20,
      maxAttempts: 5,
      ...(options.batchCommits ? { batchCommits: options.batchCommits } : {}),
    });
    while (await worker.runOnce()) {
      // drain the burst
    }
    if (double.violations.length) throw new Error(`the driver made calls GitHub's OpenAPI does not describe: ${double.violations.join('; ')}`);
    return { calls: double.calls.length, writes: double.calls.filter(isWrite).length, pullRequests: double.pulls.length };
  } finally {
    await double.close();
  }
}

async function pluginCost(catalog: TemplateCatalog, layout: Record<string, string>, burst: number): Promise<Cost> {
  // Counts calls only: the limits are the sustained-load benchmark's subject (a 100-instance
  // burst of the plugin alone passes GitHub's 80 writes a minute).
  const double = await startGithubDouble({ initialFiles: layout, limits: false });
  const proxy = await startPluginCompatProxy(double.url);
  try {
    // Backstage turns throttling off for this plugin; with it on, its one-second spacing of
    // writes would make this count take minutes without changing it.
    const octokit = new Octokit({ auth: 'bench-token', baseUrl: proxy.url, throttle: { enabled: false } });
    for (let i = 0; i < burst; i++) {
      const name = `plugin-${i}`;
      // As Backstage's publish:github:pull-request passes them: base64 File objects, one blob each.
      const files: Record<string, { content: string; encoding: 'base64'; mode: '100644' }> = {};
      for (const change of renderInstance(catalog, instanceWritePayload('bench-org', name), randomUUID(), 'bucketed')) {
        if ('content' in change) files[change.path] = { content: Buffer.from(change.content).toString('base64'), encoding: 'base64', mode: '100644' };
      }
      await composeCreatePullRequest(octokit as never, {
        owner: double.owner,
        repo: double.repo,
        title: `Add instance ${name}`,
        body: 'benchmark',
        head: `bench/${name}`,
        base: 'main',
        changes: [{ files, commit: `Add instance ${name}` }],
      });
    }
    return { calls: proxy.calls.length, writes: proxy.calls.filter(isWrite).length, pullRequests: double.pulls.length };
  } finally {
    await proxy.close();
    await double.close();
  }
}
