import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { LocalRepository } from '../../src/gitops/local/local-repository.ts';
import { LocalPullRequests } from '../../src/gitops/local/local-pull-requests.ts';
import { createKubernetesApplicationLister, type ArgocdApplication } from '../../src/jobs/argocd-applications.ts';
import { reconcileOnce, reconcilePullRequests, RECONCILE_LOCK_KEY, type ReconcileDeps } from '../../src/jobs/reconcilers.ts';
import { runAsLeader } from '../../src/jobs/leader-lock.ts';
import { childApplication, parentApplication, type NoticeTarget } from '../support/argocd-notices.ts';
import { observe } from '../support/instance-facts.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { startFakeKubernetes, type FakeKubernetes } from '../support/fake-kubernetes.ts';
import { changeRow, insertMergedChange, insertOpenChange, instanceEvents, instanceState } from '../support/webhook-fixtures.ts';

const require = createRequire(import.meta.url);
const RECORDED = require('../fixtures/argocd/application-synced-healthy.json') as ArgocdApplication;


/** What the lister sees for an instance: its parent Synced at `revision`, and the instance Application on main's spec. */
function listed(target: NoticeTarget, revision: string, change: (app: ArgocdApplication) => void = () => {}): ArgocdApplication[] {
  return [parentApplication(target, revision), childApplication(target, change)];
}

describe('reconcilers (webhooks switched off)', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let dir: string;
  let repository: LocalRepository;
  let kubernetes: FakeKubernetes;
  let deps: ReconcileDeps;

  before(async () => {
    sequelize = createTestSequelize();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-reconcilers-'));
    const gitDir = path.join(dir, 'gsv-gitops.git');
    repository = new LocalRepository({ gitDir, baseBranch: 'main', pullRequests: new LocalPullRequests({ sequelize, repository: gitDir }) });
    await repository.ensureInitialized([{ path: 'README.md', content: 'gsv-gitops\n' }]);
    kubernetes = await startFakeKubernetes();
    deps = {
      sequelize,
      repository,
      // A page size of 2 makes the lister follow `continue` tokens.
      applications: createKubernetesApplicationLister(kubernetes.kubeConfig(), 'argocd', 2),
      logger: createLogger('silent'),
    };
  });
  after(async () => {
    await kubernetes.close();
    await sequelize.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A change committed on a branch with its local PR open, as the change worker leaves it. */
  async function openPullRequest(name: string) {
    const base = (await repository.getBranch('main'))!;
    const commit = await repository.createCommit({ parent: base, changes: [{ path: `tenants/acme/${name}.yaml`, content: `name: ${name}\n` }], message: `Add ${name}` });
    const branch = `control-plane/${name}`;
    await repository.createBranch(branch, commit);
    const pr = await repository.openPullRequest({ branch, title: name, body: '' });
    const change = await insertOpenChange(sequelize, { commitSha: commit });
    await sequelize.query('UPDATE change_requests SET pull_request_number = $number, branch = $branch WHERE id = $id', { bind: { id: change.changeId, number: pr.number, branch } });
    return { ...change, pullRequestNumber: pr.number, branch };
  }

  it('walks every open pull request across passes: old ones nobody merges do not hide a newer one whose webhook was lost', async () => {
    // Found by the model-based suite: each pass read the same lowest-numbered pull requests.
    const walk = { ...deps, pullRequestCursor: { after: 0 } };
    const old = [await openPullRequest(`old-a${Date.now()}`), await openPullRequest(`old-b${Date.now()}`)];
    const newer = await openPullRequest(`newer${Date.now()}`);
    await repository.pullRequests!.setState(newer.pullRequestNumber, 'closed'); // a person closes it; the webhook is lost
    const limit = (await openCount()) - 1; // one pass cannot read them all
    const seen: number[] = [];
    for (let pass = 0; pass < 3 && (await changeRow(sequelize, newer.changeId)).status === 'open'; pass += 1) {
      seen.push((await reconcilePullRequests(walk, limit)).checked);
    }
    assert.equal((await changeRow(sequelize, newer.changeId)).status, 'closed', `passes read ${seen.join(', ')} pull requests`);
    assert.equal(await instanceState(sequelize, newer.instanceId), 'rejected');
    for (const pr of old) assert.equal((await changeRow(sequelize, pr.changeId)).status, 'open');
  });

  async function openCount(): Promise<number> {
    const [row] = await sequelize.query<{ n: number }>("SELECT count(DISTINCT pull_request_number)::int AS n FROM change_requests WHERE status = 'open'", { type: QueryTypes.SELECT });
    return row!.n;
  }

  it('bring an instance from pending_review to ready: the PR poller sees the merge, the Application lister sees it Synced and Healthy', async () => {
    const change = await openPullRequest(`a${Date.now()}`);
    const other = await openPullRequest(`b${Date.now()}`);
    kubernetes.setApplications([]);

    // Nothing happened yet: a round changes nothing.
    assert.ok((await reconcileOnce(deps)).leader);
    assert.equal(await instanceState(sequelize, change.instanceId), 'pending_review');

    // A reviewer merges on the "GitHub" side; the webhook is lost.
    const merged = await repository.mergePullRequest(change.pullRequestNumber);
    await reconcileOnce(deps);
    assert.deepEqual(await changeRow(sequelize, change.changeId), { status: 'merged', merge_commit_sha: merged.mergeCommitSha });
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing');
    assert.equal((await changeRow(sequelize, other.changeId)).status, 'open', 'the other PR is still open');
    // Main holds it from the merge on, as convergence records it (its files here are no instance's).
    await observe(sequelize, change.instanceId, merged.mergeCommitSha!);

    // Argo CD synced an older revision first: not ready.
    const older = (await repository.getBranch('main'))!;
    kubernetes.setApplications([
      ...listed(change, merged.mergeCommitSha!, (app) => (app.status!.reconciledAt = '2026-11-28T03:40:02Z')),
      ...listed(other, older),
      structuredClone(RECORDED),
      { ...structuredClone(RECORDED), metadata: { ...RECORDED.metadata, name: 'not-ours', labels: { 'app.kubernetes.io/managed-by': 'someone-else' } } },
    ]);
    await reconcileOnce(deps);
    assert.equal(await instanceState(sequelize, change.instanceId), 'syncing', 'health assessed before the sync finished is not trusted');

    // Listed children before parents: the lister applies parents first.
    kubernetes.setApplications([...listed(change, merged.mergeCommitSha!), ...listed(other, older)].reverse());
    await reconcileOnce(deps);
    assert.equal(await instanceState(sequelize, change.instanceId), 'ready');
    assert.equal(await instanceState(sequelize, other.instanceId), 'pending_review');
    const events = await instanceEvents(sequelize, change.instanceId);
    assert.deepEqual(events.map((e) => [e.from_state, e.to_state, e.cause, e.change_id]), [
      ['pending_review', 'syncing', 'reconciler.pull_request.merged', change.changeId],
      ['syncing', 'ready', 'reconciler.argocd', change.changeId],
    ]);

    // The client listed through the Kubernetes API with the selector and the token, following pages.
    const lists = kubernetes.requests.filter((r) => r.path === '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications');
    assert.ok(lists.length > 0);
    assert.ok(lists.every((r) => r.query.get('labelSelector') === 'app.kubernetes.io/managed-by=control-plane' && r.authorization === 'Bearer fake-kubernetes-token'));
    assert.ok(lists.some((r) => r.query.get('continue')), 'the lister followed a continue token');
  });

  it('deletes an instance whose delete change merged once its Application is no longer listed', async () => {
    const head = (await repository.getBranch('main'))!;
    const change = await insertMergedChange(sequelize, { mergeCommitSha: head, state: 'deleting', desired: 'absent', kind: 'instance.delete' });
    kubernetes.setApplications([childApplication(change)]);
    await reconcileOnce(deps);
    assert.equal(await instanceState(sequelize, change.instanceId), 'deleting', 'still listed: not gone');
    kubernetes.setApplications([]);
    await reconcileOnce(deps);
    assert.equal(await instanceState(sequelize, change.instanceId), 'deleted');
  });

  it('concludes nothing when the Kubernetes API fails, and the rest of the pass still runs', async () => {
    const head = (await repository.getBranch('main'))!;
    const change = await insertMergedChange(sequelize, { mergeCommitSha: head, state: 'deleting', desired: 'absent', kind: 'instance.delete' });
    kubernetes.setApplications([]);
    kubernetes.setFailure(503);
    try {
      const run = await reconcileOnce(deps);
      assert.ok(run.leader);
      assert.deepEqual(run.result.applications, { skipped: 'unavailable' });
    } finally {
      kubernetes.setFailure(undefined);
    }
    assert.equal(await instanceState(sequelize, change.instanceId), 'deleting');
  });

  it('says what RBAC is missing when Kubernetes refuses the list (403), counts it, and fails nothing else', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const warnings: { fields: Record<string, unknown>; message: string }[] = [];
    const logger = createLogger('silent');
    const listening = Object.assign(Object.create(logger) as typeof logger, {
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    });
    kubernetes.setForbidden(true);
    try {
      const run = await reconcileOnce({ ...deps, metrics, logger: listening });
      assert.ok(run.leader);
      assert.deepEqual(run.result.applications, { skipped: 'forbidden' });
    } finally {
      kubernetes.setForbidden(false);
    }
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.fields.reason, 'forbidden');
    assert.match(warnings[0]!.message, /needs a Role there with get, list and watch on applications \(argoproj\.io\)/);
    const counted = (await metrics.argocdApplicationListFailures.get()).values.find((v) => v.labels.reason === 'forbidden');
    assert.equal(counted?.value, 1);
  });

  it('starts the list again when a continue token expires mid-way (410), and reads every Application', async () => {
    const head = (await repository.getBranch('main'))!;
    const changes = await Promise.all([1, 2, 3].map(() => insertMergedChange(sequelize, { mergeCommitSha: head, state: 'syncing' })));
    kubernetes.setApplications(changes.map((c) => childApplication(c)));
    kubernetes.expireContinueTokens(1);
    const before = kubernetes.requests.length;
    const run = await reconcileOnce(deps);
    assert.ok(run.leader);
    const result = run.result.applications;
    assert.ok(result && 'applications' in result, JSON.stringify(result));
    assert.equal(result.applications, 3, 'a page size of 2: the second page expired once, the list started again');
    const lists = kubernetes.requests.slice(before).map((r) => r.query.get('continue') ?? '');
    assert.deepEqual(lists, ['', '2', '', '2'], 'page one, page two expired, page one again, page two');
  });

  it('runs on one replica at a time (advisory lock)', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const leader = runAsLeader(sequelize, RECONCILE_LOCK_KEY, () => held);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await reconcileOnce(deps);
    assert.equal(second.leader, false);
    release();
    assert.equal((await leader).leader, true);
    assert.equal((await reconcileOnce(deps)).leader, true);
  });
});
