import type { InstanceEventType } from './instance-state.ts';

/**
 * What Argo CD says about one instance's Application, whether it came from a notification or
 * from reading the Application object. The same rules apply to both.
 */
export interface ApplicationObservation {
  application: string;
  /** The gsv.io/instance-id label; undefined for Applications that are not an instance's. */
  instanceId: string | undefined;
  syncStatus: 'Synced' | 'OutOfSync' | 'Unknown';
  syncRevision: string | null;
  operation: {
    phase: 'Running' | 'Terminating' | 'Failed' | 'Error' | 'Succeeded';
    finishedAt: string | null;
    revision: string | null;
    message: string | null;
  } | null;
  healthStatus: string;
  healthMessage: string | null;
  /** When the health was assessed (status.reconciledAt). */
  healthObservedAt: string | null;
  /** The Application is being or has been deleted. */
  deleting: boolean;
}

/** Ancestry facts the caller looked up in the GitOps repository. */
export interface RevisionFacts {
  /** The commit of the base branch that last changed the instance (observed); null while main holds nothing of it. */
  mergeCommitSha: string | null;
  /** status.sync.revision contains the merge commit. */
  syncRevisionContainsMerge: boolean;
  /** The last operation's revision contains the merge commit. */
  operationRevisionContainsMerge: boolean;
}

export interface Verdict {
  event: InstanceEventType | null;
  reason: string;
}

/**
 * The readiness rule, pure. An instance is ready only when its Application is Synced at a
 * revision that contains the instance's merge commit, Healthy, and that health was assessed
 * after the sync operation finished (health lags a sync; a Healthy from before it says
 * nothing about the new revision). Failures of an older revision's sync are not this change's.
 */
export function judgeApplication(observation: ApplicationObservation, facts: RevisionFacts): Verdict {
  if (observation.deleting) return { event: 'app.gone', reason: 'the Application is being deleted' };
  if (!facts.mergeCommitSha) return { event: null, reason: 'the base branch holds nothing of the instance (yet)' };

  const operation = observation.operation;
  if (operation && (operation.phase === 'Failed' || operation.phase === 'Error')) {
    return facts.operationRevisionContainsMerge
      ? { event: 'sync.failed', reason: `sync ${operation.phase.toLowerCase()}: ${operation.message ?? 'no message'}` }
      : { event: null, reason: `a sync of ${operation.revision ?? 'an unknown revision'} (older than the merge) failed` };
  }
  if (operation && (operation.phase === 'Running' || operation.phase === 'Terminating')) {
    return { event: null, reason: 'a sync operation is in progress' };
  }
  if (!facts.syncRevisionContainsMerge) {
    return { event: null, reason: `Argo CD is at ${observation.syncRevision ?? 'no revision'}, which does not contain ${facts.mergeCommitSha}` };
  }
  if (observation.syncStatus !== 'Synced') return { event: null, reason: `sync status is ${observation.syncStatus}` };

  const health = observation.healthStatus;
  if (health !== 'Healthy' && health !== 'Degraded' && health !== 'Missing') return { event: null, reason: `health is ${health}` };
  if (!healthIsFresh(observation)) {
    return { event: null, reason: `health ${health} was assessed at ${observation.healthObservedAt ?? 'an unknown time'}, not after the sync finished at ${operation?.finishedAt}` };
  }
  if (health === 'Healthy') return { event: 'sync.healthy', reason: 'Synced at a revision containing the merge commit, and Healthy' };
  return { event: 'sync.degraded', reason: `health is ${health}: ${observation.healthMessage ?? 'no message'}` };
}

function healthIsFresh(observation: ApplicationObservation): boolean {
  if (!observation.healthObservedAt) return false;
  const finishedAt = observation.operation?.finishedAt;
  if (!finishedAt) return true;
  // Strictly after: within the same second Argo CD may still report the previous health.
  return Date.parse(observation.healthObservedAt) > Date.parse(finishedAt);
}
