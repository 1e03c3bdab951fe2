import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { applyInstanceEvent, type AppliedInstanceEvent } from '../../src/domain/instance-events.ts';
import type { InstanceEventType } from '../../src/domain/instance-state.ts';

/**
 * Specs that are about what follows a state (money, metering, readiness) and not about how
 * Git gets there: write the facts the real world would have written for `event` (the latest
 * change's status; for a merge, main holding the instance as convergence would record it),
 * then apply the event as the service does. The state is derived from those facts.
 */
export async function moveByFacts(sequelize: Sequelize, instanceId: string, event: InstanceEventType, options: { commitSha?: string } = {}): Promise<AppliedInstanceEvent> {
  return sequelize.transaction(async (tx) => {
    const status = ({ 'change.opened': 'open', 'change.merged': 'merged', 'change.closed': 'closed', 'change.failed': 'failed' } as Record<string, string>)[event];
    if (status) {
      await sequelize.query('UPDATE change_requests SET status = $status::change_status WHERE id = (SELECT last_change_id FROM instances WHERE id = $id)', {
        bind: { id: instanceId, status },
        transaction: tx,
      });
    }
    if (event === 'change.merged') await observe(sequelize, instanceId, options.commitSha ?? '0'.repeat(40), tx);
    return applyInstanceEvent(sequelize, tx, instanceId, event, { cause: event, actor: 'test' });
  });
}

/** Main holds what the instance row says, since `commitSha` (as convergence records it). */
export async function observe(sequelize: Sequelize, instanceId: string, commitSha: string, transaction?: Transaction): Promise<void> {
  const [latest] = await sequelize.query<{ kind: string }>(
    'SELECT c.kind FROM instances i JOIN change_requests c ON c.id = i.last_change_id WHERE i.id = $id',
    { type: QueryTypes.SELECT, bind: { id: instanceId }, transaction: transaction ?? null },
  );
  // A merged delete: main no longer holds it.
  const absent = latest?.kind === 'instance.delete';
  await sequelize.query(
    `UPDATE instances SET observed_state = $state, ever_present = true, observed_commit_sha = $sha, observed_at = now(),
       observed_offering_version_id = offering_version_id, observed_parameters = parameters,
       health = 'unknown', running_since = CASE WHEN $state = 'present' THEN running_since END
     WHERE id = $id`,
    { bind: { id: instanceId, sha: commitSha, state: absent ? 'absent' : 'present' }, transaction: transaction ?? null },
  );
}
