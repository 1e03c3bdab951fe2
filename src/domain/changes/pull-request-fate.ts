import type { Sequelize, Transaction } from 'sequelize';
import { applyInstanceEvents, lockInstances, type InstanceEventCause } from '../instance-events.ts';
import type { InstanceEventType, InstanceState } from '../instance-state.ts';
import { findChangesOfPullRequest, lockChanges, moveChanges, type ChangeMove } from './change-requests.ts';
import type { ChangeEvent } from './change-status.ts';

/** A pull request as its backend reports it, whoever reported it. */
export interface PullRequestFate {
  number: number;
  /** Head branch: finds changes whose PR number the worker has not recorded yet. */
  branch: string | null;
  state: 'open' | 'merged' | 'closed';
  mergeCommitSha: string | undefined;
}

/** Who reported the fate; the change id is filled in per change. */
export type FateCause = Omit<InstanceEventCause, 'changeId'>;

export interface ChangeOutcome extends ChangeMove {
  instance?: { id: string; from: InstanceState; to: InstanceState | null };
}

const EVENTS: Record<PullRequestFate['state'], { change: ChangeEvent; instance: InstanceEventType }> = {
  merged: { change: 'merged', instance: 'change.merged' },
  closed: { change: 'closed', instance: 'change.closed' },
  open: { change: 'reopened', instance: 'change.reopened' },
};

/**
 * The one place a pull request's fate reaches its changes and their instances: the GitHub
 * webhook, the PR reconciler, POST /changes/:id/merge and the publisher all call this. Every
 * change of the PR moves through the status machine (a merge is recorded whatever the change
 * was: Git is the truth; a duplicate or stale report moves nothing), and each instance's state
 * is derived again from its facts. Instances are locked before changes, as everywhere.
 */
export async function recordPullRequestFate(sequelize: Sequelize, tx: Transaction, pr: PullRequestFate, cause: FateCause): Promise<ChangeOutcome[]> {
  const seen = await findChangesOfPullRequest(sequelize, tx, pr);
  await lockInstances(sequelize, tx, seen.flatMap((c) => (c.instance_id ? [c.instance_id] : [])));
  const changes = await lockChanges(sequelize, tx, seen.map((c) => c.id));
  if (pr.state === 'merged' && !pr.mergeCommitSha) return [];
  const { change: event, instance: instanceEvent } = EVENTS[pr.state];
  const moves = await moveChanges(sequelize, tx, changes, event, { mergeCommitSha: pr.mergeCommitSha, authoritative: true, ...(event === 'merged' ? { lastError: null } : {}) });
  return withInstances(sequelize, tx, moves, instanceEvent, cause);
}

/** Derives the instances of moved changes again, one event per change. */
export async function withInstances(sequelize: Sequelize, tx: Transaction, moves: ChangeMove[], event: InstanceEventType, cause: FateCause): Promise<ChangeOutcome[]> {
  const withInstance = moves.filter((m): m is ChangeMove & { instanceId: string } => m.instanceId !== null);
  const applied = await applyInstanceEvents(
    sequelize,
    tx,
    withInstance.map((m) => ({ instanceId: m.instanceId, event, cause: { ...cause, changeId: m.changeId, detail: { ...cause.detail, change: { from: m.from, to: m.to } } } })),
  );
  const byChange = new Map(withInstance.map((m, i) => [m.changeId, applied[i]!]));
  return moves.map((m) => {
    const result = byChange.get(m.changeId);
    return result && m.instanceId ? { ...m, instance: { id: m.instanceId, from: result.from, to: result.ok ? result.to : null } } : m;
  });
}
