import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { deleteInstance, type InstanceDeps } from '../../src/domain/instances.ts';
import { lockChanges, moveChanges } from '../../src/domain/changes/change-requests.ts';
import { ParametersValidator } from '../../src/domain/parameters-schema.ts';
import type { Principal } from '../../src/domain/principal.ts';
import { insertChange, insertInstance, insertOrganization, instanceWritePayload } from '../support/change-fixtures.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { createLocalGitops, type LocalGitops } from '../support/gitops-harness.ts';

/** A later request supersedes an open pull request: the service closes it, or trims its batch. */
describe('withdrawing superseded changes', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  let gitops: LocalGitops;
  let deps: InstanceDeps;

  before(async () => {
    sequelize = createTestSequelize();
    gitops = await createLocalGitops(sequelize);
    deps = { sequelize, mergePolicy: 'pull-request', parameters: new ParametersValidator(), billing: { trialCurrency: 'EUR', trialCreditMinor: 0, holdTtlSeconds: 3600 } };
  });
  after(async () => {
    await gitops.cleanup();
    await sequelize.close();
  });

  const changeOf = async (id: string) =>
    (
      await sequelize.query<{ status: string; pull_request_number: number; branch: string; supersede_pending: boolean; superseded_by: string | null }>(
        'SELECT status, pull_request_number, branch, supersede_pending, superseded_by FROM change_requests WHERE id = $id',
        { type: QueryTypes.SELECT, bind: { id } },
      )
    )[0]!;

  async function requested(org: Awaited<ReturnType<typeof insertOrganization>>) {
    const { instanceId, instanceName } = await insertInstance(sequelize, org, { offering: 'studio', role: 'studio' });
    const changeId = await insertChange(sequelize, { kind: 'instance.create', orgId: org.orgId, instanceId, payload: instanceWritePayload(org.orgSlug, instanceName, { parameters: {} }) });
    return { instanceId, instanceName, changeId };
  }

  const principal = (org: { owner: string }): Principal => ({ subject: org.owner, platformAdmin: false, via: 'api-token' });

  it('closes a pull request whose only change was superseded, once, with a comment naming the change that replaced it', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, changeId } = await requested(org);
    await gitops.worker().runOnce();
    const open = await changeOf(changeId);
    assert.equal(open.status, 'open');

    // A later request of the instance supersedes it, as PATCH does (requestChange in instances.ts).
    const later = await insertChange(sequelize, { kind: 'instance.delete', orgId: org.orgId, instanceId, payload: { org: org.orgSlug, project: 'default', instanceName: 'x', offering: 'studio', role: 'studio' } });
    await sequelize.transaction(async (tx) => moveChanges(sequelize, tx, await lockChanges(sequelize, tx, [changeId]), 'superseded', { supersededBy: later }));
    await sequelize.query("UPDATE change_requests SET status = 'failed' WHERE id = $later", { bind: { later } }); // not published in this spec
    const superseded = await changeOf(changeId);
    assert.equal(superseded.status, 'superseded');
    assert.equal(superseded.supersede_pending, true);

    const worker = gitops.worker();
    assert.deepEqual((await worker.withdrawOnce()).closed, [open.pull_request_number]);
    const pr = await gitops.repository.getPullRequest(open.pull_request_number);
    assert.equal(pr?.state, 'closed');
    const [local] = await sequelize.query<{ body: string }>('SELECT body FROM local_pull_requests WHERE number = $n', { type: QueryTypes.SELECT, bind: { n: open.pull_request_number } });
    assert.match(local!.body, new RegExp(`superseded by a later request \\(change \`${superseded.superseded_by}\`\\)`));
    assert.equal((await changeOf(changeId)).supersede_pending, false);
    assert.deepEqual(await worker.withdrawOnce(), { closed: [], trimmed: [], merged: [] }, 'nothing left to withdraw');
    assert.equal((await changeOf(changeId)).status, 'superseded', 'our own close does not reject anything');
  });

  it('closes the pull request of a create cancelled by deleting an instance main never held, naming who cancelled it', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, changeId } = await requested(org);
    await gitops.worker().runOnce();
    const open = await changeOf(changeId);
    await sequelize.transaction((tx) => deleteInstance(deps, tx, principal(org), instanceId));
    assert.equal((await changeOf(changeId)).status, 'cancelled');
    assert.deepEqual((await gitops.worker().withdrawOnce()).closed, [open.pull_request_number]);
    const [local] = await sequelize.query<{ body: string }>('SELECT body FROM local_pull_requests WHERE number = $n', { type: QueryTypes.SELECT, bind: { n: open.pull_request_number } });
    assert.match(local!.body, new RegExp(`its change was cancelled by \`${org.owner}\``));
    const [row] = await sequelize.query<{ state: string }>('SELECT state FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: instanceId } });
    assert.equal(row!.state, 'deleted');
  });

  it("removes a withdrawn change's files from a batch branch that still carries other changes", async () => {
    const org = await insertOrganization(sequelize);
    const kept = await requested(org);
    const dropped = await requested(org);
    await gitops.worker().runOnce();
    const batch = await changeOf(kept.changeId);
    assert.equal((await changeOf(dropped.changeId)).pull_request_number, batch.pull_request_number, 'one batch pull request');
    const changed = async () => (await gitops.git('diff', '--name-only', 'main', batch.branch)).split('\n').filter(Boolean);
    assert.ok((await changed()).some((p) => p.includes(`/apps/${dropped.instanceName}/`)));

    await sequelize.transaction((tx) => deleteInstance(deps, tx, principal(org), dropped.instanceId));
    assert.deepEqual((await gitops.worker().withdrawOnce()).trimmed, [batch.pull_request_number]);
    const left = await changed();
    assert.ok(!left.some((p) => p.includes(`/apps/${dropped.instanceName}/`)), left.join('\n'));
    assert.ok(left.some((p) => p.includes(`/apps/${kept.instanceName}/`)));
    assert.equal((await gitops.repository.getPullRequest(batch.pull_request_number))?.state, 'open');
  });

  it('a pull request a person merged before it could be withdrawn is recorded merged, and main is read back', async () => {
    while (await gitops.worker().runOnce()); // what earlier specs left pending goes into its own batch
    const org = await insertOrganization(sequelize);
    const { instanceId, changeId } = await requested(org);
    await gitops.worker().runOnce();
    const open = await changeOf(changeId);
    await sequelize.transaction((tx) => deleteInstance(deps, tx, principal(org), instanceId));
    await gitops.repository.mergePullRequest(open.pull_request_number); // a person, first
    assert.deepEqual((await gitops.worker().withdrawOnce()).merged, [open.pull_request_number]);
    assert.equal((await changeOf(changeId)).status, 'merged');
    await gitops.converge();
    const [row] = await sequelize.query<{ state: string; observed_state: string }>('SELECT state, observed_state FROM instances WHERE id = $id', { type: QueryTypes.SELECT, bind: { id: instanceId } });
    assert.deepEqual(row, { state: 'deleting', observed_state: 'present' }, 'main holds it; the delete is on its way');
  });
});
