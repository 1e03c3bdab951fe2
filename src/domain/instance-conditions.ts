import type { InstanceState } from './instance-state.ts';

/**
 * Why an instance is in its state, shaped like Kubernetes' metav1.Condition (type, status
 * True/False/Unknown, a stable CamelCase reason, a message, lastTransitionTime), as Crossplane's
 * Synced and Ready are: `state` is the one-word summary, the conditions say why.
 */
export interface InstanceCondition {
  type: 'Synced' | 'Ready';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** What the conditions are derived from, as the instance row and its latest change hold it. */
export interface ConditionFacts {
  state: InstanceState;
  desiredState: 'present' | 'absent';
  observedPresent: boolean;
  drift: string | null;
  lastError: string | null;
  latest: { status: string; pullRequestUrl: string | null; lastError: string | null; updatedAt: Date; cancelledBy?: string | null } | null;
  /** When the instance's state last changed (its latest event that moved it). */
  stateChangedAt: Date;
  /** When the reconciler found its latest merged change past the progress deadline (null: not past it). */
  pastDeadlineAt: Date | null;
}

export const SYNCED_REASONS = ['MainHoldsRequest', 'RemovedFromMain', 'ChangePending', 'PullRequestOpen', 'ChangeFailed', 'ChangeClosed', 'ChangeSuperseded', 'ChangeCancelled', 'Drift', 'AwaitingMainReadBack'] as const;
export const READY_REASONS = ['Healthy', 'AwaitingArgoCD', 'ProgressDeadlineExceeded', 'Degraded', 'SyncFailed', 'Suspended', 'NotOnMain', 'Deleting', 'Deleted', 'Rejected'] as const;

/** Synced: main holds what was last asked for (the instance's directory, or its absence). */
export function syncedCondition(facts: ConditionFacts): InstanceCondition {
  const latest = facts.latest;
  const at = (latest?.updatedAt ?? facts.stateChangedAt).toISOString();
  const condition = (status: InstanceCondition['status'], reason: (typeof SYNCED_REASONS)[number], message: string): InstanceCondition => ({ type: 'Synced', status, reason, message, lastTransitionTime: at });
  switch (latest?.status) {
    case 'pending':
      return condition('False', 'ChangePending', 'The latest request waits to be committed to the GitOps repository.');
    case 'open':
      return condition('False', 'PullRequestOpen', `The latest request waits for its pull request to be merged${latest.pullRequestUrl ? `: ${latest.pullRequestUrl}` : ''}.${latest.lastError ? ` ${latest.lastError}` : ''}`);
    case 'failed':
      return condition('False', 'ChangeFailed', `The latest request could not be committed: ${latest.lastError ?? 'no reason recorded'}. Send it again (PATCH or DELETE).`);
    case 'closed':
      return condition('False', 'ChangeClosed', `The pull request of the latest request was closed without merging; main holds ${facts.observedPresent ? 'the earlier spec' : 'nothing of the instance'}.`);
    case 'superseded':
      return condition('False', 'ChangeSuperseded', 'The latest request was superseded.');
    case 'cancelled':
      // What is asked is what main holds again: synced when main holds the instance.
      return condition(
        facts.observedPresent ? 'True' : 'False',
        'ChangeCancelled',
        `The latest request was cancelled${latest.cancelledBy ? ` by ${latest.cancelledBy}` : ''}; main holds ${facts.observedPresent ? 'the spec that runs' : 'nothing of the instance'}.`,
      );
    default:
      break;
  }
  if (facts.drift) return condition('False', 'Drift', facts.drift);
  const wantPresent = facts.desiredState === 'present';
  if (wantPresent !== facts.observedPresent) {
    return condition('False', 'AwaitingMainReadBack', `The latest request is merged; the service has not yet read main ${wantPresent ? 'holding' : 'without'} the instance.`);
  }
  return wantPresent
    ? condition('True', 'MainHoldsRequest', 'The base branch holds what was last asked for.')
    : condition('True', 'RemovedFromMain', 'The base branch no longer holds the instance, as asked.');
}

/** Ready: Argo CD reports the instance healthy at the spec main holds. */
export function readyCondition(facts: ConditionFacts): InstanceCondition {
  const at = facts.stateChangedAt.toISOString();
  const condition = (status: InstanceCondition['status'], reason: (typeof READY_REASONS)[number], message: string): InstanceCondition => ({ type: 'Ready', status, reason, message, lastTransitionTime: at });
  switch (facts.state) {
    case 'ready':
      return condition('True', 'Healthy', "Argo CD reports the instance Application Healthy on main's spec, applied by its parent.");
    case 'degraded':
      return condition('False', 'Degraded', facts.lastError ?? 'Argo CD reports the instance Degraded.');
    case 'failed':
      return condition('False', 'SyncFailed', facts.lastError ?? 'The sync of what main holds failed.');
    case 'suspended':
      return condition('False', 'Suspended', 'The wallet ran out: the instance is suspended.');
    case 'deleting':
      return condition('False', 'Deleting', facts.observedPresent ? 'A delete is on its way to main.' : 'Removed from main; waiting for Argo CD to remove the Application and what it deployed.');
    case 'deleted':
      return condition('False', 'Deleted', 'The instance is deleted.');
    case 'rejected':
      return condition('False', 'Rejected', 'Its create was closed without merging; main never held it.');
    case 'requested':
    case 'pending_review':
      return condition('False', 'NotOnMain', 'The base branch does not hold the instance yet.');
    case 'syncing':
    case 'updating':
      if (facts.pastDeadlineAt) {
        return {
          ...condition(
            'False',
            'ProgressDeadlineExceeded',
            "Not ready within the progress deadline after its change merged: Argo CD has not reported the instance Application Healthy on main's spec. Look at the Application in Argo CD (image pulls, volumes, quota); it may still turn ready.",
          ),
          lastTransitionTime: facts.pastDeadlineAt.toISOString(),
        };
      }
      return condition(
        'Unknown',
        'AwaitingArgoCD',
        facts.observedPresent
          ? "Main holds it; waiting for Argo CD to report the parent Synced at that commit and the instance Application Healthy on main's spec."
          : 'Merged; waiting for the service to read main back.',
      );
  }
}

export function instanceConditions(facts: ConditionFacts): InstanceCondition[] {
  return [syncedCondition(facts), readyCondition(facts)];
}
