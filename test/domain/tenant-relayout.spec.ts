import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { mergeChange } from '../../src/domain/changes/change-merge.ts';
import { getChange } from '../../src/domain/changes/change-views.ts';
import { proposeTenantRelayout } from '../../src/domain/tenant-relayout.ts';
import { instanceDir, tenantBaseDir, tenantDir } from '../../src/gitops/tenant-paths.ts';
import { createLogger } from '../../src/logger.ts';
import { reconcilePullRequests } from '../../src/jobs/reconcilers.ts';
import { createChangeWorker } from '../../src/jobs/change-worker.ts';
import { createGithubClient, GithubRepository } from '../../src/gitops/github/github-repository.ts';
import { startGithubDouble } from '../support/github-double.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';

/**
 * The one-change migration of a repository from the flat layout (tenants/<org>/) to the
 * bucketed one (tenants/_<bucket>/<org>/), against real git: what it moves, what waits for it,
 * and that the database follows main.
 */
describe('tenant relayout: flat workspaces move to tenants/_<bucket>/<org>/ in one reviewed change', function () {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  beforeEach(async () => {
    sequelize = createTestSequelize();
    gitops = await createLocalGitops(sequelize);
  });
  afterEach(async () => {
    // Each spec starts with no relayout in flight (they are global, not per org).
    await sequelize.query(`UPDATE change_requests SET status = 'failed' WHERE kind = 'tenants.relayout' AND status IN ('pending', 'open')`);
    await gitops.cleanup();
    await sequelize.close();
  });

  const layoutOf = async (slug: string) =>
    (await sequelize.query<{ tenant_layout: string }>('SELECT tenant_layout FROM organizations WHERE slug = :slug', { type: QueryTypes.SELECT, replacements: { slug } }))[0]!.tenant_layout;
  const onMain = async (dir: string) => (await gitops.git('ls-tree', '-r', '--name-only', 'main', '--', `${dir}/`)).split('\n').filter(Boolean);
  const merge = (changeId: string) => mergeChange({ sequelize, repository: gitops.repository, afterMerge: gitops.converge }, changeId, 'admin');
  const instance = async (id: string) =>
    (
      await sequelize.query<{ state: string; observed_state: string; observed_parameters: unknown; observed_offering_version_id: string; drift: string | null }>(
        'SELECT state, observed_state, observed_parameters, observed_offering_version_id, drift FROM instances WHERE id = :id',
        { type: QueryTypes.SELECT, replacements: { id } },
      )
    )[0]!;

  /** A workspace created before the bucketed layout (flat), with one instance on main. */
  async function flatWorkspace() {
    const org = await insertOrganization(sequelize);
    await sequelize.query(`UPDATE organizations SET tenant_layout = 'flat' WHERE id = :id`, { replacements: { id: org.orgId } });
    const workspace = await insertChange(sequelize, { kind: 'workspace.create', orgId: org.orgId, payload: { org: org.orgSlug, orgName: 'Acme', keycloakGroup: `/orgs/${org.orgSlug}` } });
    const { instanceId, instanceName } = await insertInstance(sequelize, org, { offering: 'studio', role: 'studio' });
    const create = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) });
    while (await gitops.worker().runOnce()) {
      // publish both
    }
    await merge(workspace);
    await merge(create);
    assert.ok((await onMain(instanceDir(org.orgSlug, instanceName, 'flat'))).length > 0, 'the instance is on main at the flat path');
    return { org, instanceId, instanceName };
  }

  it('moves every file of every flat org, the instance stays where it was in the database, and a change asked for meanwhile waits and lands in the bucket', async () => {
    const { org, instanceId, instanceName } = await flatWorkspace();
    const before = new Map<string, string>();
    for (const path of await onMain(tenantDir(org.orgSlug, 'flat'))) before.set(path, await gitops.git('show', `main:${path}`));
    const proposed = await proposeTenantRelayout(sequelize, 'platform-admin', 'pull-request', 'repository at 100,000 tenants');
    assert.ok(proposed.created && proposed.changeId);
    assert.ok(proposed.orgs.includes(org.orgSlug));
    assert.deepEqual(await proposeTenantRelayout(sequelize, 'platform-admin', 'pull-request'), { ...proposed, created: false }, 'one relayout at a time');
    // Asked for after the relayout: waits for it.
    const update = await insertChange(sequelize, {
      kind: 'instance.update',
      orgId: org.orgId,
      instanceId,
      payload: { ...instanceWritePayload(org.orgSlug, instanceName, { parameters: { size: 'large' } }), previousTemplatePath: 'templates/offerings/studio/1.0.0' },
      createdAt: new Date(),
    });
    const stateBefore = await instance(instanceId);

    assert.equal(await gitops.worker().runOnce(), true, 'the relayout is published');
    const relayout = await getChange(sequelize, proposed.changeId!);
    assert.equal(relayout.status, 'open');
    assert.equal(await gitops.worker().runOnce(), false, 'the update waits while the relayout is open');
    assert.equal((await getChange(sequelize, update)).status, 'pending');
    const message = await gitops.git('log', '-1', '--format=%B', relayout.commitSha!);
    assert.match(message, /^Move \d+ workspaces? to tenants\/_<bucket>\/<org>\//);
    assert.match(message, /^Reason: repository at 100,000 tenants$/m);

    await merge(proposed.changeId!);
    assert.deepEqual(await onMain(tenantDir(org.orgSlug, 'flat')), [], 'nothing is left at the flat path');
    for (const [path, content] of before) {
      const moved = path.replace(`${tenantDir(org.orgSlug, 'flat')}/`, `${tenantDir(org.orgSlug, 'bucketed')}/`);
      assert.equal(await gitops.git('show', `main:${moved}`), content, `${moved} holds what ${path} held`);
    }
    assert.equal(await layoutOf(org.orgSlug), 'bucketed', 'convergence read where the org sits from main');
    const after = await instance(instanceId);
    assert.equal(after.observed_state, 'present');
    assert.deepEqual([after.observed_parameters, after.observed_offering_version_id], [stateBefore.observed_parameters, stateBefore.observed_offering_version_id], 'main holds the same spec for it');
    assert.equal(after.state, 'updating', 'what its pending update makes it: the move itself changed nothing');
    const events = await sequelize.query<{ to_state: string }>('SELECT to_state FROM instance_events WHERE instance_id = :id', { type: QueryTypes.SELECT, replacements: { id: instanceId } });
    assert.ok(!events.some((e) => ['deleting', 'deleted', 'failed'].includes(e.to_state)), JSON.stringify(events));
    assert.equal(after.drift, null);
    const unknown = await sequelize.query('SELECT path FROM unknown_tenant_paths WHERE resolved_at IS NULL AND path LIKE :p', { type: QueryTypes.SELECT, replacements: { p: `%/${org.orgSlug}/%` } });
    assert.deepEqual(unknown, []);

    assert.equal(await gitops.worker().runOnce(), true, 'the update goes once the relayout is merged');
    const published = await getChange(sequelize, update);
    assert.equal(published.status, 'open');
    assert.ok(published.files!.every((f) => f.path.startsWith(`${instanceDir(org.orgSlug, instanceName, 'bucketed')}/`)), JSON.stringify(published.files));
    assert.ok((await onMain(tenantBaseDir(org.orgSlug, 'bucketed'))).length > 0);
  });

  it('waits for a change asked for before it that is still open, and does not block it', async () => {
    const { org } = await flatWorkspace();
    const { instanceId, instanceName } = await insertInstance(sequelize, org, { offering: 'studio', role: 'studio' });
    const earlier = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName) });
    assert.equal(await gitops.worker().runOnce(), true);
    assert.equal((await getChange(sequelize, earlier)).status, 'open');
    const proposed = await proposeTenantRelayout(sequelize, 'platform-admin', 'pull-request');
    assert.equal(await gitops.worker().runOnce(), false, 'the relayout waits for the open pull request');
    await merge(earlier);
    assert.equal(await gitops.worker().runOnce(), true);
    assert.equal((await getChange(sequelize, proposed.changeId!)).status, 'open');
    await merge(proposed.changeId!);
    assert.ok((await onMain(instanceDir(org.orgSlug, instanceName, 'bucketed'))).length > 0, 'the earlier instance moved with the rest');
    assert.equal((await instance(instanceId)).observed_state, 'present');
  });

  it('closed unmerged, it leaves every org where it was and releases what waited', async () => {
    const { org, instanceId, instanceName } = await flatWorkspace();
    const proposed = await proposeTenantRelayout(sequelize, 'platform-admin', 'pull-request');
    assert.equal(await gitops.worker().runOnce(), true);
    const relayout = await getChange(sequelize, proposed.changeId!);
    const update = await insertChange(sequelize, {
      kind: 'instance.update',
      orgId: org.orgId,
      instanceId,
      payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: { size: 'large' } }),
      createdAt: new Date(),
    });
    await gitops.repository.closePullRequest(relayout.pullRequestNumber!, 'not now');
    await reconcilePullRequests({ sequelize, repository: gitops.repository, applications: undefined, logger: createLogger('silent') });
    assert.equal((await getChange(sequelize, proposed.changeId!)).status, 'closed');
    assert.equal(await layoutOf(org.orgSlug), 'flat');
    assert.equal(await gitops.worker().runOnce(), true, 'the update is released');
    const files = (await getChange(sequelize, update)).files!;
    const dir = instanceDir(org.orgSlug, instanceName, 'flat');
    assert.ok(files.length > 0 && files.every((f) => f.path === dir || f.path.startsWith(`${dir}/`)), JSON.stringify(files));
  });

  it('answers that nothing is left to move once every org is bucketed', async () => {
    await sequelize.query(`UPDATE organizations SET tenant_layout = 'bucketed'`);
    assert.deepEqual(await proposeTenantRelayout(sequelize, 'platform-admin', 'pull-request'), { changeId: null, orgs: [], created: false });
  });

  it('on GitHub: one tree of per-file deletes and writes, no directory deleted, every call as GitHub documents it', async () => {
    const org = await insertOrganization(sequelize);
    await sequelize.query(`UPDATE organizations SET tenant_layout = 'flat' WHERE id = :id`, { replacements: { id: org.orgId } });
    const flat = tenantDir(org.orgSlug, 'flat');
    const files = { [`${flat}/base/kustomization.yaml`]: 'resources: []\n', [`${flat}/apps/x/application.yaml`]: 'kind: Application\n', [`${flat}/apps/x/kustomization.yaml`]: 'resources:\n  - application.yaml\n' };
    const double = await startGithubDouble({ initialFiles: { 'README.md': '# gsv-gitops\n', ...files } });
    try {
      const octokit = await createGithubClient({ auth: { token: 'relayout-spec' }, baseUrl: double.url, retries: 0, throttle: false });
      const repository = new GithubRepository({ octokit, owner: double.owner, repo: double.repo, baseBranch: 'main' });
      const proposed = await proposeTenantRelayout(sequelize, 'platform-admin', 'pull-request');
      const worker = createChangeWorker({ sequelize, repository, catalog: gitops.catalog, logger: createLogger('silent'), windowMs: 0, maxBatch: 100, leaseMs: 60_000, pollMs: 20, maxAttempts: 5 });
      while (await worker.runOnce()) {
        // publish the relayout (and nothing else of this org)
      }
      const change = await getChange(sequelize, proposed.changeId!);
      assert.equal(change.status, 'open', change.lastError ?? '');
      assert.deepEqual(double.violations, []);
      const onBranch = double.files(change.branch!);
      for (const [path, content] of Object.entries(files)) {
        assert.equal(onBranch.has(path), false, `${path} is gone`);
        assert.equal(onBranch.get(path.replace(`${flat}/`, `${tenantDir(org.orgSlug, 'bucketed')}/`)), content);
      }
    } finally {
      await double.close();
    }
  });
});
