/**
 * The instance state machine: the one place that says which event moves an instance from
 * which state to which. Pure; callers persist the result and write an InstanceEvent.
 *
 *   requested → pending_review (PR open) → syncing (merged) → ready
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

export type InstanceEventType =
  /** The change that creates, updates or deletes the instance was committed and its PR opened. */
  | 'change.opened'
  /** That change reached the base branch (PR merged, or committed directly). */
  | 'change.merged'
  /** Its PR was closed without merging. */
  | 'change.closed'
  /** The change could not be committed at all (terminal error). */
  | 'change.failed'
  /** Argo CD: Synced at a revision containing the merge commit, and Healthy. */
  | 'sync.healthy'
  /** Argo CD: health Degraded (or Missing after a sync that should have created it). */
  | 'sync.degraded'
  /** Argo CD: the sync operation failed or errored. */
  | 'sync.failed'
  /** Argo CD: the instance's Application no longer exists. */
  | 'app.gone'
  /** A user asked for a new version or new parameters. */
  | 'update.requested'
  /** A user asked to deprovision. */
  | 'delete.requested'
  /** The org's wallet cannot pay for another hour. */
  | 'wallet.exhausted';

export type Transition =
  | { ok: true; to: InstanceState }
  | { ok: false; reason: 'not-allowed' | 'no-op'; detail: string };

const TERMINAL: ReadonlySet<InstanceState> = new Set(['rejected', 'deleted']);
/** States from which a user may ask for another change. */
const SETTLED: ReadonlySet<InstanceState> = new Set(['ready', 'degraded', 'failed', 'suspended']);
/** States in which a change of this instance is in flight in Git. */
const IN_GIT: ReadonlySet<InstanceState> = new Set(['requested', 'pending_review', 'updating', 'deleting']);

/**
 * Computes the next state. `deleting` is carried by the desired state: a delete change that
 * merges moves the instance to `deleting` until Argo CD reports the Application gone.
 */
export function transition(from: InstanceState, event: InstanceEventType, context: { desired?: 'present' | 'absent' } = {}): Transition {
  const to = next(from, event, context.desired ?? 'present');
  if (to === undefined) {
    return { ok: false, reason: 'not-allowed', detail: `event ${event} does not apply to an instance in state ${from}` };
  }
  if (to === from) return { ok: false, reason: 'no-op', detail: `instance is already ${from}` };
  return { ok: true, to };
}

function next(from: InstanceState, event: InstanceEventType, desired: 'present' | 'absent'): InstanceState | undefined {
  if (TERMINAL.has(from)) return undefined;
  switch (event) {
    case 'change.opened':
      return from === 'requested' ? 'pending_review' : IN_GIT.has(from) ? from : undefined;
    case 'change.merged':
      if (desired === 'absent') return IN_GIT.has(from) || from === 'syncing' ? 'deleting' : undefined;
      return IN_GIT.has(from) || from === 'syncing' ? 'syncing' : undefined;
    case 'change.closed':
      // A first change closed unmerged rejects the instance; an update closed unmerged leaves
      // what runs as it was, so the instance returns to ready.
      if (from === 'requested' || from === 'pending_review') return 'rejected';
      if (from === 'updating' || from === 'deleting') return 'ready';
      return undefined;
    case 'change.failed':
      return IN_GIT.has(from) ? 'failed' : undefined;
    case 'sync.healthy':
      if (desired === 'absent') return undefined;
      return from === 'syncing' || from === 'degraded' || from === 'ready' ? 'ready' : undefined;
    case 'sync.degraded':
      if (desired === 'absent') return undefined;
      return from === 'syncing' || from === 'ready' || from === 'degraded' ? 'degraded' : undefined;
    case 'sync.failed':
      if (desired === 'absent') return undefined;
      return from === 'syncing' || from === 'ready' || from === 'degraded' ? 'failed' : undefined;
    case 'app.gone':
      return from === 'deleting' ? 'deleted' : undefined;
    case 'update.requested':
      return SETTLED.has(from) ? 'updating' : undefined;
    case 'delete.requested':
      return SETTLED.has(from) || from === 'pending_review' || from === 'requested' ? 'deleting' : undefined;
    case 'wallet.exhausted':
      return from === 'ready' || from === 'degraded' ? 'suspended' : undefined;
  }
}
