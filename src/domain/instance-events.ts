import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { NotFoundError } from '../errors.ts';
import { transition, type InstanceEventType, type InstanceState, type Transition } from './instance-state.ts';
import { applySetupFeeOutcome } from './billing/instance-billing.ts';

/** Why an event happened and who caused it; written to instance_events with the transition. */
export interface InstanceEventCause {
  /** Short machine-readable reason, e.g. 'change.opened', 'github.pull_request.closed'. */
  cause: string;
  /** 'control-plane', a user's subject, 'github', 'argocd', ... */
  actor: string;
  changeId?: string;
  deliveryId?: string;
  detail?: Record<string, unknown>;
  /** Set instances.last_error (or clear it with null); left alone when undefined. */
  lastError?: string | null;
}

export type AppliedInstanceEvent = Transition & { from: InstanceState };

/**
 * The one way to move an instance: locks its row, asks the state machine, and on a real
 * transition updates the row and records an instance_events row, all in the caller's
 * transaction. A no-op or a not-allowed event changes nothing and is returned, not thrown:
 * webhooks and workers see duplicates and stale events, and decide themselves what they mean.
 */
export async function applyInstanceEvent(
  sequelize: Sequelize,
  tx: Transaction,
  instanceId: string,
  event: InstanceEventType,
  cause: InstanceEventCause,
): Promise<AppliedInstanceEvent> {
  const rows = await sequelize.query<{ state: InstanceState; desired_state: 'present' | 'absent' }>(
    'SELECT state, desired_state FROM instances WHERE id = :id FOR UPDATE',
    { type: QueryTypes.SELECT, replacements: { id: instanceId }, transaction: tx },
  );
  const row = rows[0];
  if (!row) throw new NotFoundError(`Instance ${instanceId} does not exist.`);

  const result = transition(row.state, event, { desired: row.desired_state });
  if (!result.ok) return { ...result, from: row.state };

  await sequelize.query(
    `UPDATE instances SET state = :to, updated_at = now(),
       last_error = CASE WHEN :setError THEN :lastError ELSE last_error END
     WHERE id = :id`,
    {
      type: QueryTypes.UPDATE,
      transaction: tx,
      replacements: { id: instanceId, to: result.to, setError: cause.lastError !== undefined, lastError: cause.lastError ?? null },
    },
  );
  await sequelize.query(
    `INSERT INTO instance_events (instance_id, from_state, to_state, cause, actor, change_id, delivery_id, detail)
     VALUES (:id, :from, :to, :cause, :actor, :changeId, :deliveryId, :detail)`,
    {
      type: QueryTypes.INSERT,
      transaction: tx,
      replacements: {
        id: instanceId,
        from: row.state,
        to: result.to,
        cause: cause.cause,
        actor: cause.actor,
        changeId: cause.changeId ?? null,
        deliveryId: cause.deliveryId ?? null,
        detail: JSON.stringify({ event, ...cause.detail }),
      },
    },
  );
  // The setup fee follows the state in this same transaction: captured at ready, released
  // when the instance ends before it ever ran.
  await applySetupFeeOutcome({ sequelize, now: () => new Date() }, tx, instanceId, result.to);
  return { ...result, from: row.state };
}
