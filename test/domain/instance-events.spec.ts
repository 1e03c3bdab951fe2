import assert from 'node:assert/strict';
import { QueryTypes, type Sequelize } from 'sequelize';
import { applyInstanceEvent } from '../../src/domain/instance-events.ts';
import { createTestSequelize } from '../support/database.ts';
import { insertChange, insertInstance, insertOrganization } from '../support/change-fixtures.ts';

describe('applyInstanceEvent', () => {
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
});
