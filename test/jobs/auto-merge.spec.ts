import assert from 'node:assert/strict';
import type { Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import type { GitopsRepository, PullRequest } from '../../src/gitops/repository.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';
import { reconcilePullRequests, type ReconcileDeps } from '../../src/jobs/reconcilers.ts';
import { getChange } from '../../src/domain/changes/change-views.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { startGithubDouble, type GithubDouble } from '../support/github-double.ts';
import { instanceEvents, instanceState } from '../support/webhook-fixtures.ts';

const MERGE_ROUTE = 'PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge';

async function counted(metrics: Metrics, outcome: string): Promise<number> {
  const metric = await metrics.autoMergeAttempts.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

/** The repository with its mergePullRequest replaced (what happens to the publisher's first merge). */
function withMerge<T extends GitopsRepository>(repository: T, merge: (number: number) => Promise<PullRequest>): T {
  return new Proxy(repository, {
    get(target, property) {
      if (property === 'mergePullRequest') return merge;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('auto-merge: the PR reconciler merges what could not be merged when it was opened', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let catalog: TemplateCatalog;

  before(async () => {
    sequelize = createTestSequelize();
    catalog = await loadTemplateCatalog();
  });
  after(() => sequelize.close());

  async function autoMergeChange() {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const payload = instanceWritePayload(org.orgSlug, instanceName, { offering: 'runtime', parameters: { replicas: 2 } });
    const changeId = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload, mergePolicy: 'auto-merge' });
    return { changeId, instanceId };
  }

  function worker(repository: GitopsRepository, metrics: Metrics) {
    return createChangeWorker({ sequelize, repository, catalog, logger: createLogger('silent'), windowMs: 0, maxBatch: 100, leaseMs: 60_000, pollMs: 20, maxAttempts: 5, metrics });
  }

  async function reconcileUntilMerged(deps: ReconcileDeps, changeId: string, passes: number): Promise<number> {
    for (let pass = 1; pass <= passes; pass += 1) {
      await reconcilePullRequests(deps);
      if ((await getChange(sequelize, changeId)).status === 'merged') return pass;
    }
    return passes + 1;
  }

  describe('github driver against the GitHub double', () => {
    let double: GithubDouble;
    let repository: GithubRepository;
    beforeEach(async () => {
      double = await startGithubDouble();
      const octokit = await createGithubClient({ auth: { token: 'test-token' }, baseUrl: double.url, retries: 0, throttle: false });
      repository = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
    });
    afterEach(async () => {
      assert.deepEqual(double.violations, [], 'every request matched the GitHub OpenAPI description');
      await double.close();
    });

    it('a pull request GitHub calls not mergeable for a few polls is merged by a later pass, with one successful merge call', async () => {
      double.mergeableAfterPolls(4);
      const metrics = createMetrics({ collectDefaults: false });
      const { changeId, instanceId } = await autoMergeChange();
      await worker(repository, metrics).runOnce();

      let change = await getChange(sequelize, changeId);
      assert.equal(change.status, 'open', 'the first merge, right after opening, was refused');
      assert.match(change.lastError!, /^auto-merge will be retried: pull request #1 is not mergeable yet: GitHub answered 405/);
      assert.equal(await counted(metrics, 'waiting'), 1);

      const deps: ReconcileDeps = { sequelize, repository, applications: undefined, logger: createLogger('silent'), metrics };
      const passes = await reconcileUntilMerged(deps, changeId, 6);
      assert.ok(passes > 1 && passes <= 3, `merged after ${passes} passes`);
      change = await getChange(sequelize, changeId);
      assert.equal(change.status, 'merged');
      assert.equal(change.lastError, null);
      assert.equal(change.mergeCommitSha, double.pulls[0]!.mergeCommitSha);
      assert.equal(double.branch('main'), change.mergeCommitSha);
      assert.equal(await instanceState(sequelize, instanceId), 'syncing');
      assert.deepEqual((await instanceEvents(sequelize, instanceId)).map((e) => e.cause).slice(-1), ['reconciler.pull_request.merged']);

      const merges = double.calls.filter((c) => c.route === `PUT ${MERGE_ROUTE.slice(4)}`);
      assert.deepEqual(merges.map((c) => c.status), [405, 200], 'one refused merge when opened, then one that merged; none while GitHub said unknown');
      assert.equal(double.pulls.length, 1);
      assert.equal(await counted(metrics, 'merged'), 1);

      // Another pass finds nothing open: no further call to merge.
      await reconcilePullRequests(deps);
      assert.equal(double.calls.filter((c) => c.route === MERGE_ROUTE).length, 2);
    });

    it('a pull request with conflicts stays open with a clear last_error and no merge call; once fixed on the branch it is merged', async () => {
      const metrics = createMetrics({ collectDefaults: false });
      const { changeId } = await autoMergeChange();
      const deps: ReconcileDeps = { sequelize, repository, applications: undefined, logger: createLogger('silent'), metrics };
      // The base moves under the PR with a conflicting edit of a file the PR writes.
      double.mergeableAfterPolls(2);
      await worker(repository, metrics).runOnce();
      const change = await getChange(sequelize, changeId);
      const file = change.files[0]!.path;
      const main = double.branch('main')!;
      const conflicting = await repository.createCommit({ parent: main, changes: [{ path: file, content: 'someone else: 1\n' }], message: 'conflict' });
      await repository.updateBranch('main', conflicting, { expected: main });

      double.resetCalls();
      await reconcilePullRequests(deps);
      await reconcilePullRequests(deps);
      const waiting = await getChange(sequelize, changeId);
      assert.equal(waiting.status, 'open');
      assert.match(waiting.lastError!, /^auto-merge waits for a person: pull request #1 conflicts with the base branch: GitHub reports merge conflicts .*mergeable_state dirty.*resolve the conflict/);
      assert.equal(double.calls.filter((c) => c.route === MERGE_ROUTE).length, 0, 'a conflict is never sent to pulls.merge');
      assert.equal(await counted(metrics, 'conflict'), 2);

      // A person resolves it: the branch is rebuilt on the new base.
      const tip = double.branch(change.branch!)!;
      const resolved = await repository.createCommit({ parent: conflicting, changes: [{ path: file, content: 'resolved: 1\n' }], message: 'resolve' });
      await repository.updateBranch(change.branch!, resolved, { expected: tip, force: true });
      await reconcilePullRequests(deps);
      assert.equal((await getChange(sequelize, changeId)).status, 'merged', (await getChange(sequelize, changeId)).lastError ?? '');
      assert.equal(double.files('main').get(file), 'resolved: 1\n');
    });
  });

  describe('local driver (real git)', () => {
    let gitops: LocalGitops;
    beforeEach(async () => {
      gitops = await createLocalGitops(sequelize);
    });
    afterEach(() => gitops.cleanup());

    it('a merge that failed when the pull request was opened is done by the next pass, once', async () => {
      const metrics = createMetrics({ collectDefaults: false });
      const { changeId, instanceId } = await autoMergeChange();
      // The publisher's merge fails (say, the process lost the race for the base branch).
      let refused = 0;
      const flaky = withMerge(gitops.repository, () => Promise.reject(new Error(`transient failure ${++refused}`)));
      await worker(flaky, metrics).runOnce();
      assert.equal(refused, 1);
      const opened = await getChange(sequelize, changeId);
      assert.equal(opened.status, 'open');
      assert.equal(opened.lastError, 'auto-merge will be retried: transient failure 1');
      const mainBefore = await gitops.git('rev-parse', 'main');

      const deps: ReconcileDeps = { sequelize, repository: gitops.repository, applications: undefined, logger: createLogger('silent'), metrics };
      const result = await reconcilePullRequests(deps);
      assert.deepEqual(result.autoMerges, [{ pullRequest: opened.pullRequestNumber, outcome: 'merged' }]);
      const merged = await getChange(sequelize, changeId);
      assert.equal(merged.status, 'merged');
      assert.equal(merged.lastError, null);
      assert.equal(await gitops.git('rev-parse', 'main'), merged.mergeCommitSha);
      assert.equal(await gitops.git('rev-parse', `${merged.mergeCommitSha}^1`), mainBefore);
      assert.equal(await gitops.git('rev-parse', `${merged.mergeCommitSha}^2`), merged.commitSha);
      assert.equal(await instanceState(sequelize, instanceId), 'syncing');

      await reconcilePullRequests(deps);
      assert.equal(await gitops.git('rev-parse', 'main'), merged.mergeCommitSha, 'no second merge');
      assert.equal(await gitops.git('rev-list', '--merges', '--count', 'main'), '1');
      assert.equal(await counted(metrics, 'merged'), 1);
      assert.equal(await counted(metrics, 'error'), 1);
    });

    it('a conflict is recorded on the change (GET /changes/:id lastError) and the PR stays open until the branch is fixed', async () => {
      const { changeId } = await autoMergeChange();
      const deps: ReconcileDeps = { sequelize, repository: gitops.repository, applications: undefined, logger: createLogger('silent') };
      const base = await gitops.git('rev-parse', 'main');
      // Someone lands a conflicting version of the same file on main before the worker merges.
      const target = gitops.repository;
      const blocker = withMerge(target, async (number) => {
        const pr = (await target.getPullRequest(number))!;
        const file = (await gitops.git('diff', '--name-only', base, pr.headSha)).split('\n')[0]!;
        const conflicting = await target.createCommit({ parent: base, changes: [{ path: file, content: 'someone else: 1\n' }], message: 'conflict' });
        await target.updateBranch('main', conflicting, { expected: base });
        return target.mergePullRequest(number);
      });
      await worker(blocker, createMetrics({ collectDefaults: false })).runOnce();
      let change = await getChange(sequelize, changeId);
      assert.equal(change.status, 'open');
      assert.match(change.lastError!, /^auto-merge waits for a person: pull request #\d+ conflicts with the base branch: control-plane\/batch-.* conflicts with main.*resolve the conflict on the branch/);

      const result = await reconcilePullRequests(deps);
      assert.deepEqual(result.autoMerges.map((a) => a.outcome), ['conflict']);
      change = await getChange(sequelize, changeId);
      assert.equal(change.status, 'open', 'kept open for a person');

      // The person rebuilds the branch on main; the next pass merges it.
      const main = await gitops.git('rev-parse', 'main');
      const file = change.files[0]!.path;
      const resolved = await gitops.repository.createCommit({ parent: main, changes: [{ path: file, content: 'resolved: 1\n' }], message: 'resolve' });
      await gitops.repository.updateBranch(change.branch!, resolved, { expected: change.commitSha!, force: true });
      await reconcilePullRequests(deps);
      change = await getChange(sequelize, changeId);
      assert.equal(change.status, 'merged');
      assert.equal(await gitops.git('show', `main:${file}`), 'resolved: 1');
    });
  });
});
