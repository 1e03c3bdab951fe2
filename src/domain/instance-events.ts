import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { NotFoundError } from '../errors.ts';
import type { InstanceChangeKind } from './changes/change-kinds.ts';
import type { ChangeStatus } from './changes/change-status.ts';
import { moveChanges, supersedableChangesOf } from './changes/change-requests.ts';
import { applyEventToFacts, deriveInstanceState, type Health, type InstanceEventType, type InstanceFacts, type InstanceState } from './instance-state.ts';
import { applySetupFees } from './billing/instance-billing.ts';

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
  /** Record the event even when the state does not move (an engineer's commit, say). */
  recordUnchanged?: boolean;
}

export type AppliedInstanceEvent = ({ ok: true; to: InstanceState } | { ok: false; reason: 'no-op'; detail: string }) & { from: InstanceState };

/** One event for applyInstanceEvents. */
export interface InstanceEventInput {
  instanceId: string;
  event: InstanceEventType;
  cause: InstanceEventCause;
}

interface FactsRow {
  id: string;
  state: InstanceState;
  observed_state: 'present' | 'absent';
  ever_present: boolean;
  health: Health;
  suspended: boolean;
  latest_kind: InstanceChangeKind | null;
  latest_status: ChangeStatus | null;
  displaced: boolean;
  read_back: boolean;
  desired_state: 'present' | 'absent';
}

/** Locks instance rows in id order (so two callers cannot deadlock); lock instances before their change rows. */
export async function lockInstances(sequelize: Sequelize, tx: Transaction, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sequelize.query('SELECT id FROM instances WHERE id IN (:ids) ORDER BY id FOR UPDATE', { type: QueryTypes.SELECT, replacements: { ids: [...new Set(ids)] }, transaction: tx });
}

/** applyInstanceEvents for one event. */
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
 * The one way to move an instance: locks the rows, reads each instance's facts (its observed
 * spec, its latest change and that change's status as the caller has just written it, health,
 * suspension), applies each event to the facts, derives the state, and writes the state and
 * one instance_events row per transition; money follows in the same transaction. A fixed
 * number of statements whatever the count. Nothing is thrown for an event that moves nothing:
 * webhooks and workers see duplicates and stale events, and decide themselves what they mean.
 */
export async function applyInstanceEvents(sequelize: Sequelize, tx: Transaction, events: InstanceEventInput[]): Promise<AppliedInstanceEvent[]> {
  if (events.length === 0) return [];
  const requested = events.length;
  // One path, one instance: an instance main holds displaces any other live instance of its
  // name (a person merged an old create after the name was taken again); those are derived
  // again in the same batch, so that the name's holder changes in one transaction.
  const displacedBy = await displacedInstances(sequelize, tx, [...new Set(events.map((e) => e.instanceId))]);
  // Their changes on the way are withdrawn (their pull requests closed by the withdrawal outbox):
  // merging one would put the yielding instance back over the one main holds.
  const withdrawn = await moveChanges(sequelize, tx, await supersedableChangesOf(sequelize, tx, [...displacedBy.keys()]), 'superseded', {
    lastError: 'Main holds another instance at this path: the instance this change is for yielded its name.',
  });
  events = events.concat(
    [...displacedBy].map(([displaced, holder]): InstanceEventInput => ({
      instanceId: displaced,
      event: 'main.observed',
      cause: {
        cause: 'git.name-held',
        actor: 'git',
        lastError: `Main holds another instance (${holder}) at this instance's path; this one yields the name.`,
        detail: { holder, withdrawn: withdrawn.filter((m) => m.instanceId === displaced).map((m) => m.changeId) },
      },
    })),
  );
  const ids = [...new Set(events.map((e) => e.instanceId))].sort();
  const rows = await sequelize.query<FactsRow>(
    `SELECT i.id, i.state, i.observed_state, i.ever_present, i.desired_state, i.health, i.suspended, c.kind AS latest_kind, c.status AS latest_status,
            i.observed_state = 'absent' AND EXISTS (
              SELECT 1 FROM instances o
               WHERE o.organization_id = i.organization_id AND o.name = i.name AND o.id <> i.id
                 AND (o.observed_state = 'present' OR (o.state <> 'deleted' AND NOT o.id = ANY (CAST(:displaced AS uuid[]))))
            ) AS displaced,
            c.status IS DISTINCT FROM 'merged' OR i.observed_at >= c.updated_at AS read_back
       FROM instances i LEFT JOIN change_requests c ON c.id = i.last_change_id
      WHERE i.id IN (:ids) ORDER BY i.id FOR UPDATE OF i`,
    { type: QueryTypes.SELECT, replacements: { ids, displaced: `{${[...displacedBy.keys()].join(',')}}` }, transaction: tx },
  );
  const current = new Map(
    rows.map((row) => [
      row.id,
      { state: row.state, facts: factsOf(row), initialHealth: row.health, initialSuspended: row.suspended, lastError: undefined as string | null | undefined, moved: false },
    ]),
  );
  const results: AppliedInstanceEvent[] = [];
  const transitions: { instance_id: string; from_state: InstanceState; to_state: InstanceState; cause: string; actor: string; change_id: string | null; delivery_id: string | null; detail: Record<string, unknown> }[] = [];
  for (const { instanceId, event, cause } of events) {
    const row = current.get(instanceId);
    if (!row) throw new NotFoundError(`Instance ${instanceId} does not exist.`);
    row.facts = applyEventToFacts(row.facts, event);
    const to = deriveInstanceState(row.facts);
    const from = row.state;
    results.push(to === from ? { ok: false, reason: 'no-op', detail: `instance is already ${from}`, from } : { ok: true, to, from });
    if (cause.lastError !== undefined) row.lastError = cause.lastError;
    row.moved ||= to !== from || cause.lastError !== undefined || row.facts.health !== row.initialHealth || row.facts.suspended !== row.initialSuspended;
    if (to === from && !cause.recordUnchanged) continue;
    transitions.push({
      instance_id: instanceId,
      from_state: from,
      to_state: to,
      cause: cause.cause,
      actor: cause.actor,
      change_id: cause.changeId ?? null,
      delivery_id: cause.deliveryId ?? null,
      detail: { event, ...cause.detail },
    });
    row.state = to;
  }
  const moved = [...current]
    .filter(([, row]) => row.moved)
    .map(([id, row]) => ({ id, state: row.state, health: row.facts.health, suspended: row.facts.suspended, set_error: row.lastError !== undefined, last_error: row.lastError ?? null }));
  // Those that end are written first: the name's unique index (instances_org_name_live) is
  // checked row by row, so the instance yielding a name must leave it before the holder enters.
  for (const batch of [moved.filter((m) => m.state === 'deleted'), moved.filter((m) => m.state !== 'deleted')]) {
    if (batch.length === 0) continue;
    // running_since is metering's clock: it starts when Argo CD first reports Healthy what main
    // holds (whatever change is in flight meanwhile) and stops when the directory leaves main.
    await sequelize.query(
      `UPDATE instances i SET state = m.state::instance_state, health = m.health, suspended = m.suspended, updated_at = now(),
         running_since = CASE WHEN i.observed_state = 'absent' THEN NULL
                              WHEN m.health = 'healthy' AND i.running_since IS NULL THEN now() ELSE i.running_since END,
         last_error = CASE WHEN m.set_error THEN m.last_error ELSE i.last_error END
       FROM jsonb_to_recordset(CAST(:moved AS jsonb)) AS m(id uuid, state text, health text, suspended boolean, set_error boolean, last_error text)
       WHERE i.id = m.id`,
      { type: QueryTypes.UPDATE, transaction: tx, replacements: { moved: JSON.stringify(batch) } },
    );
  }
  // The caller asked about its own events; the displaced ones it did not name are not its answer.
  results.length = requested;
  // WITH ORDINALITY keeps the events' order in their ids.
  if (transitions.length > 0) await sequelize.query(
    `INSERT INTO instance_events (instance_id, from_state, to_state, cause, actor, change_id, delivery_id, detail)
     SELECT e.instance_id, e.from_state::instance_state, e.to_state::instance_state, e.cause, e.actor, e.change_id, e.delivery_id, e.detail
     FROM ROWS FROM (jsonb_to_recordset(CAST(:transitions AS jsonb))
       AS (instance_id uuid, from_state text, to_state text, cause text, actor text, change_id uuid, delivery_id text, detail jsonb))
       WITH ORDINALITY AS e(instance_id, from_state, to_state, cause, actor, change_id, delivery_id, detail, n)
     ORDER BY e.n`,
    { type: QueryTypes.INSERT, transaction: tx, replacements: { transitions: JSON.stringify(transitions) } },
  );
  // Setup fees follow what runs, in this same transaction: captured at ready, released when
  // their version is no longer asked for; a fee the wallet cannot pay at ready suspends.
  const { unpaid } = await applySetupFees({ sequelize, now: () => new Date() }, tx, [...current.keys()]);
  if (unpaid.length > 0) {
    await applyInstanceEvents(
      sequelize,
      tx,
      unpaid.map((instanceId) => ({
        instanceId,
        event: 'wallet.exhausted' as const,
        cause: { cause: 'wallet.exhausted', actor: 'control-plane', lastError: 'The wallet cannot pay the setup fee of the version main runs: the instance is suspended.' },
      })),
    );
  }
  return results;
}

/**
 * The live instances that an instance main holds (among `ids`) displaces: same org, same name,
 * not deleted, main holding nothing of them. Locked here, in id order, before the batch's rows.
 */
async function displacedInstances(sequelize: Sequelize, tx: Transaction, ids: string[]): Promise<Map<string, string>> {
  const rows = await sequelize.query<{ id: string; holder: string }>(
    `SELECT o.id, i.id AS holder
       FROM instances i JOIN instances o ON o.organization_id = i.organization_id AND o.name = i.name AND o.id <> i.id
      WHERE i.id IN (:ids) AND i.observed_state = 'present' AND o.state <> 'deleted' AND o.observed_state = 'absent'
      ORDER BY o.id FOR UPDATE OF o`,
    { type: QueryTypes.SELECT, replacements: { ids }, transaction: tx },
  );
  return new Map(rows.map((r) => [r.id, r.holder]));
}

function factsOf(row: FactsRow): InstanceFacts {
  return {
    observed: row.observed_state,
    everPresent: row.ever_present,
    latest: row.latest_kind && row.latest_status ? { kind: row.latest_kind, status: row.latest_status } : undefined,
    health: row.health,
    suspended: row.suspended,
    displaced: row.displaced,
    readBack: row.read_back === true,
    wanted: row.desired_state,
  };
}
