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

/** One event for applyInstanceEvents. */
export interface InstanceEventInput {
  instanceId: string;
  event: InstanceEventType;
  cause: InstanceEventCause;
}

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
  const [applied] = await applyInstanceEvents(sequelize, tx, [{ instanceId, event, cause }]);
  return applied!;
}

/**
 * applyInstanceEvent for many events at once, in order (several may name one instance), with a
 * fixed number of statements whatever their count: the rows are locked in id order (so two
 * callers cannot deadlock), the state machine runs here, then one UPDATE moves every instance
 * to its last state and one INSERT records every transition. Returns one result per input.
 */
export async function applyInstanceEvents(sequelize: Sequelize, tx: Transaction, events: InstanceEventInput[]): Promise<AppliedInstanceEvent[]> {
  if (events.length === 0) return [];
  const ids = [...new Set(events.map((e) => e.instanceId))].sort();
  const rows = await sequelize.query<{ id: string; state: InstanceState; desired_state: 'present' | 'absent' }>(
    'SELECT id, state, desired_state FROM instances WHERE id IN (:ids) ORDER BY id FOR UPDATE',
    { type: QueryTypes.SELECT, replacements: { ids }, transaction: tx },
  );
  const current = new Map(rows.map((row) => [row.id, { state: row.state, desired: row.desired_state, lastError: undefined as string | null | undefined, moved: false }]));
  const results: AppliedInstanceEvent[] = [];
  const transitions: { instance_id: string; from_state: InstanceState; to_state: InstanceState; cause: string; actor: string; change_id: string | null; delivery_id: string | null; detail: Record<string, unknown> }[] = [];
  for (const { instanceId, event, cause } of events) {
    const row = current.get(instanceId);
    if (!row) throw new NotFoundError(`Instance ${instanceId} does not exist.`);
    const result = transition(row.state, event, { desired: row.desired });
    results.push({ ...result, from: row.state });
    if (!result.ok) continue;
    transitions.push({
      instance_id: instanceId,
      from_state: row.state,
      to_state: result.to,
      cause: cause.cause,
      actor: cause.actor,
      change_id: cause.changeId ?? null,
      delivery_id: cause.deliveryId ?? null,
      detail: { event, ...cause.detail },
    });
    row.state = result.to;
    row.moved = true;
    if (cause.lastError !== undefined) row.lastError = cause.lastError;
  }
  if (transitions.length === 0) return results;

  const moved = [...current].filter(([, row]) => row.moved).map(([id, row]) => ({ id, state: row.state, set_error: row.lastError !== undefined, last_error: row.lastError ?? null }));
  await sequelize.query(
    `UPDATE instances i SET state = m.state::instance_state, updated_at = now(),
       last_error = CASE WHEN m.set_error THEN m.last_error ELSE i.last_error END
     FROM jsonb_to_recordset(CAST(:moved AS jsonb)) AS m(id uuid, state text, set_error boolean, last_error text)
     WHERE i.id = m.id`,
    { type: QueryTypes.UPDATE, transaction: tx, replacements: { moved: JSON.stringify(moved) } },
  );
  // WITH ORDINALITY keeps the events' order in their ids.
  await sequelize.query(
    `INSERT INTO instance_events (instance_id, from_state, to_state, cause, actor, change_id, delivery_id, detail)
     SELECT e.instance_id, e.from_state::instance_state, e.to_state::instance_state, e.cause, e.actor, e.change_id, e.delivery_id, e.detail
     FROM ROWS FROM (jsonb_to_recordset(CAST(:transitions AS jsonb))
       AS (instance_id uuid, from_state text, to_state text, cause text, actor text, change_id uuid, delivery_id text, detail jsonb))
       WITH ORDINALITY AS e(instance_id, from_state, to_state, cause, actor, change_id, delivery_id, detail, n)
     ORDER BY e.n`,
    { type: QueryTypes.INSERT, transaction: tx, replacements: { transitions: JSON.stringify(transitions) } },
  );
  // The setup fee follows the state in this same transaction: captured at ready, released
  // when the instance ends before it ever ran.
  for (const t of transitions) await applySetupFeeOutcome({ sequelize, now: () => new Date() }, tx, t.instance_id, t.to_state);
  return results;
}
