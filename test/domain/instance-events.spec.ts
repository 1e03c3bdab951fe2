import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { applyInstanceEvent, applyInstanceEvents } from '../../src/domain/instance-events.ts';
import { createTestSequelize, useSpecDatabase } from '../support/database.ts';
import { insertChange, insertInstance, insertOrganization } from '../support/change-fixtures.ts';

describe('applyInstanceEvent', () => {
  useSpecDatabase();
  let sequelize: Sequelize;
  before(() => {
    sequelize = createTestSequelize();
  });
  after(() => sequelize.close());

  /** An instance whose latest change (a create) has `status`, as the change's owner leaves it. */
  async function withLatestChange(org: Awaited<ReturnType<typeof insertOrganization>>, status: string, options: Parameters<typeof insertInstance>[2] = {}) {
    const { instanceId } = await insertInstance(sequelize, org, options);
    const changeId = await insertChange(sequelize, { kind: 'instance.create', payload: {}, orgId: org.orgId, instanceId });
    await sequelize.query('UPDATE change_requests SET status = $status::change_status WHERE id = $id', { bind: { id: changeId, status } });
    await sequelize.query('UPDATE instances SET last_change_id = $change WHERE id = $id', { bind: { id: instanceId, change: changeId } });
    return { instanceId, changeId };
  }

  const eventsOf = (id: string) =>
    sequelize.query<Record<string, unknown>>('SELECT from_state, to_state, cause, actor, change_id FROM instance_events WHERE instance_id = :id ORDER BY id', {
      type: QueryTypes.SELECT,
      replacements: { id },
    });

  it('derives the state from the facts the caller wrote, and records one event with cause, actor and change', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId, changeId } = await withLatestChange(org, 'open');
    const result = await sequelize.transaction((tx) =>
      applyInstanceEvent(sequelize, tx, instanceId, 'change.opened', { cause: 'change.opened', actor: 'control-plane', changeId }),
    );
    assert.deepEqual(result, { ok: true, to: 'pending_review', from: 'requested' });
    assert.deepEqual(await eventsOf(instanceId), [{ from_state: 'requested', to_state: 'pending_review', cause: 'change.opened', actor: 'control-plane', change_id: changeId }]);
  });

  it('returns a no-op without writing anything, and ignores Argo CD for what main does not hold', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId } = await withLatestChange(org, 'open', { state: 'pending_review' });
    const noop = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'change.opened', { cause: 'x', actor: 'control-plane' }));
    assert.equal(noop.ok, false);
    const healthy = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'sync.healthy', { cause: 'x', actor: 'argocd' }));
    assert.equal(healthy.ok, false, 'Healthy of an instance main does not hold moves nothing');
    assert.equal((await eventsOf(instanceId)).length, 0);
    const [row] = await sequelize.query<{ health: string }>('SELECT health FROM instances WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id: instanceId } });
    assert.equal(row!.health, 'unknown');
  });

  it('a removed instance is deleted once its Application is gone, and a late Healthy does not bring it back', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId } = await insertInstance(sequelize, org, { state: 'deleting', desired: 'absent' });
    const changeId = await insertChange(sequelize, { kind: 'instance.delete', payload: {}, orgId: org.orgId, instanceId });
    await sequelize.query("UPDATE change_requests SET status = 'merged' WHERE id = $id", { bind: { id: changeId } });
    await sequelize.query('UPDATE instances SET last_change_id = $change WHERE id = $id', { bind: { id: instanceId, change: changeId } });
    const gone = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'app.gone', { cause: 'x', actor: 'argocd' }));
    assert.deepEqual(gone, { ok: true, to: 'deleted', from: 'deleting' });
    const late = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'sync.healthy', { cause: 'x', actor: 'argocd' }));
    assert.equal(late.ok, false);
  });

  it('applies many events in order with the same statements whatever their count, as if one at a time', async () => {
    const org = await insertOrganization(sequelize);
    const instances = await Promise.all(Array.from({ length: 30 }, () => withLatestChange(org, 'merged', { state: 'syncing' })));
    const unmoved = await withLatestChange(org, 'open', { state: 'pending_review' });
    const events = [
      ...instances.flatMap(({ instanceId }) => [
        { instanceId, event: 'sync.degraded' as const, cause: { cause: 'sync.degraded', actor: 'argocd' } },
        { instanceId, event: 'sync.degraded' as const, cause: { cause: 'sync.degraded', actor: 'argocd', lastError: 'still degraded' } },
      ]),
      { instanceId: unmoved.instanceId, event: 'change.opened' as const, cause: { cause: 'change.opened', actor: 'control-plane' } },
    ];
    let statements = 0;
    const count = () => {
      statements += 1;
    };
    sequelize.addHook('afterQuery', 'count', count);
    const results = await sequelize.transaction((tx) => applyInstanceEvents(sequelize, tx, events)).finally(() => sequelize.removeHook('afterQuery', 'count'));
    // BEGIN, the name holders' check, lock + facts, update, insert, the setup fees' one read
    // (applySetupFees: every fee of the batch's instances in one query), COMMIT: neither 61
    // events nor 31 instances add statements (money moves only at ready and the end states, and
    // the instances that end are updated in a statement of their own; none here).
    assert.equal(statements, 7);
    assert.deepEqual(results.slice(0, 2), [
      { ok: true, to: 'degraded', from: 'syncing' },
      { ok: false, reason: 'no-op', detail: 'instance is already degraded', from: 'degraded' },
    ]);
    assert.equal(results.at(-1)!.ok, false);
    const history = await eventsOf(instances[0]!.instanceId);
    assert.deepEqual(history.map((e) => [e.from_state, e.to_state]), [['syncing', 'degraded']]);
    const states = await sequelize.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM instances WHERE organization_id = :org GROUP BY state ORDER BY state::text', {
      type: QueryTypes.SELECT,
      replacements: { org: org.orgId },
    });
    assert.deepEqual(states, [{ state: 'degraded', n: 30 }, { state: 'pending_review', n: 1 }]);
  });
});
