import type { InstanceChangeKind } from './changes/change-kinds.ts';
import { IN_FLIGHT, type ChangeStatus } from './changes/change-status.ts';

/**
 * The instance state machine. An instance's state is not replayed from the events that reached
 * the service (they come lost, late, duplicated and in any order); it is derived, by one pure
 * function, from facts: what the base branch holds for it (observed), its latest change and
 * that change's status, what Argo CD last said about the observed spec, and whether its wallet
 * suspended it. Whatever order the facts arrive in, the same facts give the same state.
 *
 *   requested → pending_review (PR open) → syncing (on main) → ready
 *   with rejected, degraded, failed, suspended, and for changes updating, deleting → deleted.
 */
export const INSTANCE_STATES = [
  'requested',
  'pending_review',
  'syncing',
  'ready',
  'rejected',
  'degraded',
  'failed',
  'updating',
  'deleting',
  'deleted',
  'suspended',
] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export const HEALTHS = ['unknown', 'healthy', 'degraded', 'failed', 'gone'] as const;
/** Argo CD's last word on the observed spec; `gone`: its Application no longer exists. */
export type Health = (typeof HEALTHS)[number];

export interface InstanceFacts {
  /** Whether the base branch holds the instance's directory. */
  observed: 'present' | 'absent';
  /** The directory has been on the base branch at some point. */
  everPresent: boolean;
  /** The instance's latest change (the latest request supersedes earlier ones). */
  latest: { kind: InstanceChangeKind; status: ChangeStatus } | undefined;
  health: Health;
  suspended: boolean;
  /**
   * Another instance of the org holds the name: main holds that one's directory at the path, or
   * it is the live instance of the name while main holds neither. One path, one instance.
   */
  displaced: boolean;
  /**
   * Main was read after the latest change merged (true while it has not merged): a merged
   * delete whose directory is still there once main has been read removed nothing (it was cut
   * from a main that did not hold the instance yet, or a stale merge put it back), and main,
   * not the delete, is what runs.
   */
  readBack: boolean;
  /**
   * What the latest request wants: `absent` once a delete was asked for. An instance main never
   * held is deleted without a Git change (its changes on the way are cancelled), so a change
   * alone cannot tell a deleted one from a rejected one.
   */
  wanted: 'present' | 'absent';
}

/** The facts of an instance just requested (POST /instances): its create pending, nothing on main. */
export const REQUESTED_FACTS: Readonly<InstanceFacts> = {
  observed: 'absent',
  everPresent: false,
  latest: { kind: 'instance.create', status: 'pending' },
  health: 'unknown',
  suspended: false,
  displaced: false,
  readBack: true,
  wanted: 'present',
};

/** The state these facts put the instance in. Pure and total. */
export function deriveInstanceState(facts: InstanceFacts): InstanceState {
  const inFlight = facts.latest !== undefined && IN_FLIGHT.has(facts.latest.status) ? facts.latest : undefined;
  // Main cannot hold it (the path is another instance's): whatever its changes say, it ended.
  if (facts.displaced && facts.observed === 'absent') return 'deleted';
  if (facts.observed === 'present') {
    // A delete on its way, or merged and main not read back since: the directory is leaving.
    if (inFlight?.kind === 'instance.delete' || (facts.latest?.kind === 'instance.delete' && facts.latest.status === 'merged' && !facts.readBack)) return 'deleting';
    if (inFlight?.kind === 'instance.update') return 'updating';
    if (facts.suspended) return 'suspended';
    switch (facts.health) {
      case 'healthy':
        return 'ready';
      case 'degraded':
        return 'degraded';
      case 'failed':
        return 'failed';
      default:
        return 'syncing';
    }
  }
  // Nothing of it is on the base branch.
  if (inFlight) {
    if (inFlight.kind === 'instance.delete') return 'deleting';
    return inFlight.status === 'pending' ? 'requested' : 'pending_review';
  }
  if (facts.everPresent) {
    // Removed from main: gone once Argo CD has removed its Application.
    return facts.health === 'gone' ? 'deleted' : 'deleting';
  }
  const latest = facts.latest;
  if (latest === undefined) return 'requested';
  if (latest.kind === 'instance.delete' || facts.wanted === 'absent') return 'deleted';
  switch (latest.status) {
    case 'failed':
      return 'failed';
    case 'merged':
      // Merged, and main not read back yet: the observation follows.
      return 'syncing';
    default:
      return 'rejected';
  }
}

/** States from which the instance will not come back through the service (a person may still merge an old PR). */
export const FINAL_STATES: ReadonlySet<InstanceState> = new Set(['rejected', 'deleted']);

/**
 * What moved an instance's facts. Change and observation events carry no fact of their own
 * (the caller wrote the change's status or the observation in the same transaction); Argo CD's
 * set its health; the wallet's suspends it.
 */
export type InstanceEventType =
  | 'change.requested'
  | 'change.opened'
  | 'change.merged'
  | 'change.closed'
  | 'change.reopened'
  | 'change.failed'
  | 'change.superseded'
  | 'change.cancelled'
  | 'main.observed'
  | 'git.external'
  | 'sync.healthy'
  | 'sync.degraded'
  | 'sync.failed'
  | 'app.gone'
  | 'wallet.exhausted';

/** The health an Argo CD event reports; undefined for events that are not Argo CD's. */
export function healthOf(event: InstanceEventType): Health | undefined {
  switch (event) {
    case 'sync.healthy':
      return 'healthy';
    case 'sync.degraded':
      return 'degraded';
    case 'sync.failed':
      return 'failed';
    case 'app.gone':
      return 'gone';
    default:
      return undefined;
  }
}

/**
 * The facts after `event`. Argo CD speaks about what main holds: while nothing of the instance
 * is on main, only "the Application is gone" counts (a late Healthy of a removed spec must not
 * bring it back).
 */
export function applyEventToFacts(facts: InstanceFacts, event: InstanceEventType): InstanceFacts {
  const health = healthOf(event);
  if (health !== undefined) {
    if (facts.observed === 'absent' && health !== 'gone') return facts;
    return { ...facts, health };
  }
  if (event === 'wallet.exhausted') return facts.observed === 'present' ? { ...facts, suspended: true } : facts;
  return facts;
}
