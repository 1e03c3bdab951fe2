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

  it('moves the instance and records one event with cause, actor and change', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId } = await insertInstance(sequelize, org);
    const changeId = await insertChange(sequelize, { kind: 'instance.create', payload: {}, orgId: org.orgId, instanceId });
    const result = await sequelize.transaction((tx) =>
      applyInstanceEvent(sequelize, tx, instanceId, 'change.opened', { cause: 'change.opened', actor: 'control-plane', changeId }),
    );
    assert.deepEqual(result, { ok: true, to: 'pending_review', from: 'requested' });
    const [instance] = await sequelize.query<{ state: string }>('SELECT state FROM instances WHERE id = :id', { type: QueryTypes.SELECT, replacements: { id: instanceId } });
    assert.equal(instance!.state, 'pending_review');
    const events = await sequelize.query<Record<string, unknown>>('SELECT from_state, to_state, cause, actor, change_id FROM instance_events WHERE instance_id = :id', { type: QueryTypes.SELECT, replacements: { id: instanceId } });
    assert.deepEqual(events, [{ from_state: 'requested', to_state: 'pending_review', cause: 'change.opened', actor: 'control-plane', change_id: changeId }]);
  });

  it('returns a no-op or not-allowed result without writing anything', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId } = await insertInstance(sequelize, org, { state: 'pending_review' });
    const noop = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'change.opened', { cause: 'x', actor: 'control-plane' }));
    assert.equal(noop.ok, false);
    const denied = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'app.gone', { cause: 'x', actor: 'argocd' }));
    assert.equal(denied.ok, false);
    assert.equal(denied.ok === false && denied.reason, 'not-allowed');
    const events = await sequelize.query('SELECT 1 FROM instance_events WHERE instance_id = :id', { type: QueryTypes.SELECT, replacements: { id: instanceId } });
    assert.equal(events.length, 0);
  });

  it('uses the desired state: a merged delete moves to deleting', async () => {
    const org = await insertOrganization(sequelize);
    const { instanceId } = await insertInstance(sequelize, org, { state: 'deleting', desired: 'absent' });
    const result = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, instanceId, 'change.merged', { cause: 'change.merged', actor: 'control-plane' }));
    assert.equal(result.ok, false); // deleting → deleting is a no-op
    const { instanceId: live } = await insertInstance(sequelize, org, { state: 'pending_review', desired: 'absent' });
    const moved = await sequelize.transaction((tx) => applyInstanceEvent(sequelize, tx, live, 'change.merged', { cause: 'change.merged', actor: 'control-plane' }));
    assert.deepEqual(moved, { ok: true, to: 'deleting', from: 'pending_review' });
  });

  it('applies many events in order with the same statements whatever their count, as if one at a time', async () => {
    const org = await insertOrganization(sequelize);
    const instances = await Promise.all(Array.from({ length: 30 }, () => insertInstance(sequelize, org)));
    const denied = await insertInstance(sequelize, org, { state: 'ready' });
    const events = [
      ...instances.flatMap(({ instanceId }) => [
        { instanceId, event: 'change.opened' as const, cause: { cause: 'change.opened', actor: 'control-plane' } },
        { instanceId, event: 'change.merged' as const, cause: { cause: 'change.merged', actor: 'control-plane', lastError: null } },
      ]),
      { instanceId: denied.instanceId, event: 'change.opened' as const, cause: { cause: 'change.opened', actor: 'control-plane' } },
    ];
    let statements = 0;
    const count = () => {
      statements += 1;
    };
    sequelize.addHook('afterQuery', 'count', count);
    const results = await sequelize.transaction((tx) => applyInstanceEvents(sequelize, tx, events)).finally(() => sequelize.removeHook('afterQuery', 'count'));
    // BEGIN, lock, update, insert, COMMIT: neither 61 events nor 31 instances add statements.
    assert.equal(statements, 5);
    assert.deepEqual(results.slice(0, 2), [
      { ok: true, to: 'pending_review', from: 'requested' },
      { ok: true, to: 'syncing', from: 'pending_review' },
    ]);
    assert.equal(results.at(-1)!.ok, false);
    const [first] = instances;
    const history = await sequelize.query<{ from_state: string; to_state: string }>('SELECT from_state, to_state FROM instance_events WHERE instance_id = :id ORDER BY id', {
      type: QueryTypes.SELECT,
      replacements: { id: first!.instanceId },
    });
    assert.deepEqual(history, [{ from_state: 'requested', to_state: 'pending_review' }, { from_state: 'pending_review', to_state: 'syncing' }]);
    const states = await sequelize.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM instances WHERE organization_id = :org GROUP BY state ORDER BY state::text', {
      type: QueryTypes.SELECT,
      replacements: { org: org.orgId },
    });
    assert.deepEqual(states, [{ state: 'ready', n: 1 }, { state: 'syncing', n: 30 }]);
  });
});
