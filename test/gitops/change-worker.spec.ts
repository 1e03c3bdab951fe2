import { instanceDir, tenantBaseDir, tenantDir } from '../../src/gitops/tenant-paths.ts';
import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';
import { mergeChange } from '../../src/domain/changes/change-merge.ts';

interface ChangeRow {
  status: string;
  branch: string | null;
  pull_request_number: number | null;
  commit_sha: string | null;
  merge_commit_sha: string | null;
  last_error: string | null;
  batch_id: string | null;
  files: { path: string; action: string }[] | null;
}

describe('change worker with the local driver (real git)', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());
  beforeEach(async () => {
    gitops = await createLocalGitops(sequelize);
  });
  afterEach(() => gitops.cleanup());

  const change = async (id: string) =>
    (await sequelize.query<ChangeRow>('SELECT * FROM change_requests WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id } }))[0]!;
  const instanceState = async (id: string) =>
    (await sequelize.query<{ state: string }>('SELECT state FROM instances WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id } }))[0]!.state;
  const events = async (id: string) =>
    sequelize.query<{ to_state: string; cause: string; actor: string; change_id: string }>('SELECT to_state, cause, actor, change_id FROM instance_events WHERE instance_id = :id ORDER BY id', {
      type: QueryTypes.SELECT,
      replacements: { id },
    });

  async function workspace() {
    const org = await insertOrganization(sequelize);
    const id = await insertChange(sequelize, { kind: 'workspace.create', orgId: org.orgId, payload: { org: org.orgSlug, orgName: 'Acme', keycloakGroup: `/orgs/${org.orgSlug}` } });
    return { org, id };
  }

  it('workspace → files under tenants/<org>/ on a PR branch; merge → on main', async () => {
    const { org, id } = await workspace();
    assert.equal(await gitops.worker().runOnce(), true);
    const row = await change(id);
    assert.equal(row.status, 'open');
    assert.ok(row.branch && row.pull_request_number && row.commit_sha);
    const onBranch = (await gitops.git('ls-tree', '-r', '--name-only', row.branch!)).split('\n');
    const tenantFiles = onBranch.filter((f) => f.startsWith(`${tenantDir(org.orgSlug, 'bucketed')}/`));
    assert.ok(tenantFiles.includes(`${tenantBaseDir(org.orgSlug, 'bucketed')}/appproject.yaml`));
    assert.ok(tenantFiles.includes(`${tenantBaseDir(org.orgSlug, 'bucketed')}/studio/namespace.yaml`));
    assert.deepEqual(row.files!.map((f) => f.path).sort(), tenantFiles.sort());
    assert.equal(await gitops.git('ls-tree', '-r', '--name-only', 'main', `${tenantDir(org.orgSlug, 'bucketed')}`), '', 'not on main before the merge');

    const merged = await mergeChange({ sequelize, repository: gitops.repository, afterMerge: gitops.converge }, id, 'admin');
    const afterMerge = await change(id);
    assert.equal(afterMerge.status, 'merged');
    assert.equal(afterMerge.merge_commit_sha, merged.mergeCommitSha);
    assert.equal(await gitops.git('rev-parse', 'main'), merged.mergeCommitSha);
    assert.ok((await gitops.git('ls-tree', '-r', '--name-only', 'main')).includes(`${tenantBaseDir(org.orgSlug, 'bucketed')}/appproject.yaml`));
    // Merging again answers with the same merge.
    assert.equal((await mergeChange({ sequelize, repository: gitops.repository, afterMerge: gitops.converge }, id, 'admin')).mergeCommitSha, merged.mergeCommitSha);
  });

  it('instance create → update → delete: expected diffs, trailers, and instance events', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const dir = `${instanceDir(org.orgSlug, instanceName, 'bucketed')}`;
    const create = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, requestedBy: 'alice', payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: { size: 'small' } }) });
    await gitops.worker().runOnce();
    assert.equal(await instanceState(instanceId), 'pending_review');
    await mergeChange({ sequelize, repository: gitops.repository, afterMerge: gitops.converge }, create, 'admin');
    assert.equal(await instanceState(instanceId), 'syncing');
    assert.match(await gitops.git('show', `main:${dir}/application.yaml`), /cpu: 500m/);

    const message = await gitops.git('log', '-1', '--format=%B', (await change(create)).commit_sha!);
    assert.match(message, new RegExp(`^Change-Id: ${create}$`, 'm'));
    assert.match(message, new RegExp(`^Instance-Id: ${instanceId}$`, 'm'));
    assert.match(message, new RegExp(`^Org: ${org.orgSlug}$`, 'm'));
    assert.match(message, /^Offering: studio\/1\.0\.0$/m);
    assert.match(message, /^Requested-By: alice$/m);
    const logged = await gitops.git('log', '--format=%(trailers:key=Change-Id,valueonly)', 'main', '--', `${tenantDir(org.orgSlug, 'bucketed')}/`);
    assert.ok(logged.includes(create));

    const update = await insertChange(sequelize, { kind: 'instance.update', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: { size: 'large', storageSize: 20 } }) });
    await gitops.worker().runOnce();
    const updateRow = await change(update);
    const diff = await gitops.git('diff', 'main', updateRow.branch!, '--', dir);
    assert.match(diff, /^-\s+cpu: 500m$/m);
    assert.match(diff, /^\+\s+cpu: "2"$/m);
    assert.match(diff, /^\+\s+size: 20Gi$/m);
    assert.deepEqual((await gitops.git('diff', '--name-only', 'main', updateRow.branch!)).split('\n'), [`${dir}/application.yaml`]);
    await mergeChange({ sequelize, repository: gitops.repository, afterMerge: gitops.converge }, update, 'admin');

    const remove = await insertChange(sequelize, {
      kind: 'instance.delete',
      orgId: org.orgId,
      instanceId,
      payload: { org: org.orgSlug, project: 'default', instanceName, offering: 'studio', role: 'studio' },
    });
    await gitops.worker().runOnce();
    const removeRow = await change(remove);
    const removed = (await gitops.git('diff', '--name-status', 'main', removeRow.branch!)).split('\n').sort();
    assert.deepEqual(removed, [`D\t${dir}/application.yaml`, `D\t${dir}/kustomization.yaml`]);
    await mergeChange({ sequelize, repository: gitops.repository, afterMerge: gitops.converge }, remove, 'admin');
    assert.equal(await gitops.git('ls-tree', 'main', `${dir}`), '');
    assert.equal(await instanceState(instanceId), 'deleting');

    const history = await events(instanceId);
    // Each state derived from what main holds and the latest change: the update is in flight
    // (updating), lands (syncing), the delete is in flight and then main no longer holds it.
    assert.deepEqual(history.map((e) => e.to_state), ['pending_review', 'syncing', 'updating', 'syncing', 'deleting']);
    assert.ok(history.every((e) => e.actor === 'control-plane' || e.actor === 'admin'));
    assert.equal(history[0]!.change_id, create);
  });

  it('direct merge policy: the commit lands on main and the instance is syncing right away', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const id = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, mergePolicy: 'direct', payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: {} }) });
    const before = await gitops.git('rev-parse', 'main');
    await gitops.worker().runOnce();
    const row = await change(id);
    assert.equal(row.status, 'merged');
    assert.equal(await gitops.git('rev-parse', 'main'), row.commit_sha);
    assert.equal(await gitops.git('rev-parse', `${row.commit_sha}^`), before);
    assert.equal(row.merge_commit_sha, row.commit_sha);
    assert.equal(await instanceState(instanceId), 'syncing');
    // Straight onto main: requested → syncing, no pull request in between.
    assert.deepEqual((await events(instanceId)).map((e) => e.cause), ['change.merged']);
  });

  it('batches changes that arrive together into one commit and one pull request', async () => {
    const org = await insertOrganization(sequelize);
    const ids: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const { instanceId, instanceName } = await insertInstance(sequelize, org);
      ids.push(await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: {} }) }));
    }
    await gitops.worker().runOnce();
    const rows = await Promise.all(ids.map(change));
    assert.equal(new Set(rows.map((r) => r.pull_request_number)).size, 1);
    assert.equal(new Set(rows.map((r) => r.commit_sha)).size, 1);
    assert.ok(rows.every((r) => r.status === 'open'));
    const message = await gitops.git('log', '-1', '--format=%B', rows[0]!.commit_sha!);
    assert.equal(message.match(/^Change-Id: /gm)!.length, 10);
    assert.equal(await gitops.worker().runOnce(), false, 'nothing left to claim');
  });

  it('marks a change with a bad payload failed with the reason, and its instance failed', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, instanceName } = await insertInstance(sequelize, org);
    const id = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: { size: 'gigantic' } }) });
    await gitops.worker().runOnce();
    const row = await change(id);
    assert.equal(row.status, 'failed');
    assert.match(row.last_error!, /parameters do not match/);
    assert.equal(await instanceState(instanceId), 'failed');
    assert.equal(row.branch !== null && (await gitops.repository.getBranch(row.branch)), undefined, 'nothing was written to Git');
  });

  it('retries a transient failure later with backoff, keeping the batch and its branch', async () => {
    const { id } = await workspace();
    const failing = Object.create(gitops.repository) as typeof gitops.repository;
    failing.createCommit = () => Promise.reject(new Error('disk full'));
    const worker = gitops.worker({ repository: failing });
    await worker.runOnce();
    const row = await change(id);
    assert.equal(row.status, 'pending');
    assert.equal(row.last_error, 'disk full');
    const [timing] = await sequelize.query<{ delay: number }>('SELECT extract(epoch FROM next_attempt_at - now()) AS delay FROM change_requests WHERE id = :id', {
      type: QueryTypes.SELECT,
      replacements: { id },
    });
    assert.ok(Number(timing!.delay) > 0.5, `next attempt is in the future (${timing!.delay})`);
    await sequelize.query('UPDATE change_requests SET next_attempt_at = now() WHERE id = :id', { replacements: { id } });
    await gitops.worker().runOnce();
    const retried = await change(id);
    assert.equal(retried.status, 'open');
    assert.equal(retried.batch_id, row.batch_id);
  });
});

/** The window depends on what else is queued, so these run on a database of their own. */
describe('change worker: the batching window', function () {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());
  beforeEach(async () => {
    gitops = await createLocalGitops(sequelize);
    await sequelize.query("DELETE FROM change_requests WHERE status = 'pending'");
  });
  afterEach(() => gitops.cleanup());

  const change = async (id: string) =>
    (await sequelize.query<ChangeRow>('SELECT * FROM change_requests WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id } }))[0]!;
  async function workspace() {
    const org = await insertOrganization(sequelize);
    const id = await insertChange(sequelize, { kind: 'workspace.create', orgId: org.orgId, payload: { org: org.orgSlug, orgName: 'Acme', keycloakGroup: `/orgs/${org.orgSlug}` } });
    return { org, id };
  }

  it('waits for the batching window when other changes are queued, so they share one pull request', async () => {
    const first = await workspace();
    const second = await workspace();
    await sequelize.query('UPDATE change_requests SET created_at = now() WHERE id IN (:ids)', { replacements: { ids: [first.id, second.id] } });
    assert.equal(await gitops.worker({ windowMs: 60_000 }).runOnce(), false);
    assert.equal(await gitops.worker({ windowMs: 0 }).runOnce(), true);
    // Two orgs: one batch and pull request, a commit for each (GITOPS_BATCH_COMMITS=per-org-commits).
    assert.equal((await change(first.id)).pull_request_number, (await change(second.id)).pull_request_number);
    assert.equal((await change(first.id)).batch_id, (await change(second.id)).batch_id);
  });

  it('publishes a change with nothing else queued at once: the window adds no latency when idle (issue 13)', async () => {
    const { id } = await workspace();
    await sequelize.query('UPDATE change_requests SET created_at = now() WHERE id = :id', { replacements: { id } });
    assert.equal(await gitops.worker({ windowMs: 60_000 }).runOnce(), true);
    assert.equal((await change(id)).status, 'open');
  });
});
